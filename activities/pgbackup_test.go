package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pitr"
)

var backupSpec = PGSpec{Cluster: "pg-test", Port: 5432, DataDir: "/pg/data", BackupRepoPath: "/pg/backup", BackupRetention: 2}

// Without backup clients the configuration is the one pg-cluster-create always wrote (a node
// whose file is current stays unchanged); with them, pgBackRest's TLS server on every interface,
// the node's certificate files, and exactly the listed members let in, for this stanza only.
func TestRenderPgBackRestConfServer(t *testing.T) {
	plain := RenderPgBackRestConf(backupSpec)
	if strings.Contains(plain, "tls-") {
		t.Errorf("a server without backup clients:\n%s", plain)
	}
	if !strings.Contains(plain, "log-level-file=info\n\n[pg-test]\npg1-path=/pg/data\npg1-port=5432\npg1-socket-path=/var/run/postgresql") {
		t.Errorf("the stanza section moved:\n%s", plain)
	}
	spec := backupSpec
	spec.BackupClients = []string{"pg-test-1", "pg-test-2"}
	conf := RenderPgBackRestConf(spec)
	global, stanza, ok := strings.Cut(conf, "[pg-test]")
	if !ok {
		t.Fatalf("no stanza section:\n%s", conf)
	}
	for _, want := range []string{"tls-server-address=*\n", "tls-server-port=8432\n", "tls-server-ca-file=/etc/pki/ca.crt\n",
		"tls-server-cert-file=/etc/pki/pigwf/node.crt\n", "tls-server-key-file=/etc/pki/pigwf/node.key\n",
		"tls-server-auth=pg-test-1=pg-test\ntls-server-auth=pg-test-2=pg-test\n"} {
		if !strings.Contains(global, want) {
			t.Errorf("[global] lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "tls-server-auth=") != 2 || strings.Contains(stanza, "tls-") || strings.Contains(conf, "pg2-") {
		t.Errorf("the server's settings are not exactly in [global], or the leader is named in the file:\n%s", conf)
	}
	if strings.Replace(conf, global, "", 1) != strings.Replace(plain, strings.SplitN(plain, "[pg-test]", 2)[0], "", 1) {
		t.Errorf("the stanza section differs with a server:\n%s", conf)
	}
}

func TestStandbyBackupOptions(t *testing.T) {
	got := strings.Join(StandbyBackupOptions(backupSpec, "pg-test-1"), " ")
	want := "--backup-standby --pg2-host=pg-test-1 --pg2-host-type=tls --pg2-host-port=8432 --pg2-host-ca-file=/etc/pki/ca.crt " +
		"--pg2-host-cert-file=/etc/pki/pigwf/node.crt --pg2-host-key-file=/etc/pki/pigwf/node.key --pg2-path=/pg/data --pg2-port=5432 --pg2-socket-path=/var/run/postgresql"
	if got != want {
		t.Errorf("options\n got %s\nwant %s", got, want)
	}
}

func TestBackupProgress(t *testing.T) {
	cases := []struct{ log, want string }{
		{"", ""},
		{"2026-11-30 10:00:00.000 P00   INFO: backup command begin 2.45: --stanza=pg-test\n", ""},
		{"P00   INFO: backup command begin 2.45\nP01 DETAIL: backup file /pg/data/base/1/1259 (112KB, 47.31%) checksum 0a1b\n" +
			"P01 DETAIL: backup file /pg/data/base/1/1249 (456KB, 52.9%) checksum 0a1c\n", "52.9%"},
		// a finished backup's lines, then this one's begin: nothing of this one yet
		{"P01 DETAIL: backup file /pg/data/global/pg_control (8KB, 100.00%) checksum x\nP00   INFO: backup command end: completed successfully\n" +
			"P00   INFO: backup command begin 2.45: --type=incr\n", ""},
		{"P01 DETAIL: match file from prior backup /pg/data/PG_VERSION (3B, 0.01%) checksum x\n", "0.01%"},
		{"P00   INFO: backup command begin\nP01 DETAIL: backup file /pg/data/x (0B, 100%)\n", "100%"},
	}
	for _, c := range cases {
		if got := BackupProgress(c.log); got != c.want {
			t.Errorf("%q: %q, want %q", c.log, got, c.want)
		}
	}
}

// fakeRepo plays a member's pgBackRest over fakeRemote: info prints its backups, a backup script
// either adds one (annotated with the script's run) or fails as pgBackRest does mid-backup.
type fakeRepo struct {
	mu      sync.Mutex
	backups []pitr.Backup
	// failNext: the next backup fails with these stderr lines (pgBackRest's error), exit 64.
	failNext string
	// dropNext: the connection drops while the next backup script runs; the backup is taken.
	dropNext bool
	ran      []string // the backup scripts run
}

// The inputs a step script assigns (withInputs: a plain word unquoted, anything else quoted).
var (
	backupStep   = regexp.MustCompile(`(?m)^PIGWF_STEP='?backup'?$`)
	expireStep   = regexp.MustCompile(`(?m)^PIGWF_STEP='?expire'?$`)
	runInScript  = regexp.MustCompile(`(?m)^run='?([^'\n]*)'?$`)
	typeInScript = regexp.MustCompile(`(?m)^type='?([^'\n]*)'?$`)
)

func (r *fakeRepo) remote() *fakeRemote {
	return &fakeRemote{
		fail: func(_ int, cmd sshrun.Command) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.dropNext && backupStep.MatchString(cmd.Script) {
				r.dropNext = false
				r.ran = append(r.ran, cmd.Script)
				r.take(cmd.Script)
				return io.ErrUnexpectedEOF
			}
			return nil
		},
		reply: func(_ int, cmd sshrun.Command) sshrun.Result {
			r.mu.Lock()
			defer r.mu.Unlock()
			switch {
			case strings.HasSuffix(cmd.Script, "--output=json info"):
				s := pitr.Stanza{Name: "pg-test", Status: pitr.Status{Message: "ok"}, DB: []pitr.StanzaDB{{ID: 1, Version: "15", SystemID: 7}}, Backup: r.backups}
				doc, _ := json.Marshal(pitr.Info{s})
				return sshrun.Result{Stdout: string(doc)}
			case backupStep.MatchString(cmd.Script):
				r.ran = append(r.ran, cmd.Script)
				if r.failNext != "" {
					msg := r.failNext
					r.failNext = ""
					return sshrun.Result{ExitStatus: 64, Stderr: msg}
				}
				r.take(cmd.Script)
				return sshrun.Result{Stdout: "changed: pgbackrest backup\n"}
			}
			return sshrun.Result{}
		},
	}
}

// take adds the backup a script asks for, as pgBackRest would: a full one when no full backup is
// there to refer to.
func (r *fakeRepo) take(script string) {
	typ := pitr.BackupType(typeInScript.FindStringSubmatch(script)[1])
	hasFull := false
	for _, b := range r.backups {
		hasFull = hasFull || b.Type == pitr.BackupFull
	}
	if !hasFull {
		typ = pitr.BackupFull
	}
	b := pitr.Backup{Label: fmt.Sprintf("20261130-10000%d%s", len(r.backups), strings.ToUpper(string(typ[:1]))), Type: typ,
		Annotation: map[string]string{BackupAnnotation: runInScript.FindStringSubmatch(script)[1]}}
	b.Database.ID = 1
	b.Timestamp.Start, b.Timestamp.Stop = 1000, 1042
	r.backups = append(r.backups, b)
}

func backupEnv(repo *fakeRepo) (*testsuite.TestActivityEnvironment, *Activities, *fakeRemote) {
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	fr := repo.remote()
	a := &Activities{Remote: fr}
	env.RegisterActivity(a)
	return env, a, fr
}

func runBackup(t *testing.T, env *testsuite.TestActivityEnvironment, a *Activities, in BackupInput) (StepResult, error) {
	t.Helper()
	v, err := env.ExecuteActivity(a.Backup, in)
	var res StepResult
	if err == nil {
		if gerr := v.Get(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, err
}

// A failover in the middle of a backup: pgBackRest fails, and the step fails at once,
// non-retryable, with pgBackRest's own words; no backup is recorded. The next run (another key)
// takes its backup.
func TestBackupFailureIsFinalAndTheNextRunSucceeds(t *testing.T) {
	repo := &fakeRepo{}
	env, a, _ := backupEnv(repo)
	if _, err := runBackup(t, env, a, BackupInput{Node: goodNode, Spec: backupSpec, Type: "full", Key: "run-1"}); err != nil {
		t.Fatal(err)
	}
	repo.failNext = "ERROR: [056]: unable to find primary cluster - cannot proceed\n       HINT: are all available clusters in recovery?"
	_, err := runBackup(t, env, a, BackupInput{Node: goodNode, Spec: backupSpec, Type: "incr", Key: "run-2"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrBackupFailed || !app.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable %s", err, ErrBackupFailed)
	}
	for _, want := range []string{"pgBackRest's incr backup of pg-test on pg-test-1 (10.0.0.1) failed", "ERROR: [056]: unable to find primary cluster - cannot proceed HINT: are all available clusters in recovery?"} {
		if !strings.Contains(app.Message(), want) {
			t.Errorf("message %q lacks %q", app.Message(), want)
		}
	}
	if len(repo.backups) != 1 {
		t.Fatalf("backups after the failure: %+v", repo.backups)
	}
	res, err := runBackup(t, env, a, BackupInput{Node: goodNode, Spec: backupSpec, Type: "incr", Key: "run-3"})
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if !res.Changed || res.Facts["type"] != "incr" || res.Facts["label"] != "20261130-100001I" || len(res.Notes) != 0 {
		t.Errorf("the next run's result: %+v", res)
	}
}

// A dropped connection is retried (not final); the retry finds the backup the first attempt
// took, by its annotation, and takes none.
func TestBackupRetryFindsTheEarlierAttemptsBackup(t *testing.T) {
	repo := &fakeRepo{dropNext: true}
	env, a, _ := backupEnv(repo)
	in := BackupInput{Node: goodNode, Spec: backupSpec, Type: "full", Key: "run-1"}
	_, err := runBackup(t, env, a, in)
	var app *temporal.ApplicationError
	if err == nil || (errors.As(err, &app) && app.NonRetryable()) {
		t.Fatalf("a dropped connection: err = %v, want a retryable error", err)
	}
	res, err := runBackup(t, env, a, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || len(repo.ran) != 1 || len(repo.backups) != 1 || res.Facts["label"] != repo.backups[0].Label ||
		!strings.Contains(res.Summary(), "taken by an earlier attempt of this run") {
		t.Errorf("the retry: %+v; scripts run %d, backups %d", res, len(repo.ran), len(repo.backups))
	}
}

// incr with no full backup in the repository: pgBackRest takes a full one, and the step says so.
func TestBackupReportsAFullInsteadOfIncr(t *testing.T) {
	repo := &fakeRepo{}
	env, a, _ := backupEnv(repo)
	res, err := runBackup(t, env, a, BackupInput{Node: goodNode, Spec: backupSpec, Type: "incr", Key: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Facts["type"] != "full" || res.Facts["requested"] != "incr" || len(res.Notes) != 1 ||
		!strings.Contains(res.Notes[0], "incr was asked for, but the repository held no full backup of this database to refer to: pgBackRest took a full backup instead") {
		t.Errorf("result %+v", res)
	}
}

// From a standby the script carries backup-standby and the leader as pg2, each option one quoted
// word; from the leader, none of it.
func TestBackupFromAStandbyNamesTheLeader(t *testing.T) {
	for _, leader := range []string{"", "pg-test-1"} {
		repo := &fakeRepo{}
		env, a, _ := backupEnv(repo)
		node := goodNode
		node.Name = "pg-test-2"
		if _, err := runBackup(t, env, a, BackupInput{Node: node, Spec: backupSpec, Type: "full", Key: "run-1", Leader: leader}); err != nil {
			t.Fatal(err)
		}
		script := repo.ran[0]
		if has := strings.Contains(script, "\nopts='--backup-standby --pg2-host=pg-test-1 --pg2-host-type=tls --pg2-host-port=8432 "); has != (leader != "") {
			t.Errorf("leader %q: standby options in the script %v:\n%s", leader, has, script)
		}
	}
}

func TestBackupInputValidate(t *testing.T) {
	good := BackupInput{Node: goodNode, Spec: backupSpec, Type: "diff", Key: "0196b2c4-8d3e-7b1a-9f2e-4c5d6e7f8a9b", Leader: "pg-test-1"}
	good.Spec.BinDir, good.Spec.ReplicationUser, good.Spec.AdminUser = "/usr/lib/postgresql/15/bin", "replicator", "dbuser_dba"
	if err := good.Validate(); err != nil {
		t.Fatalf("a good input refused: %v", err)
	}
	for field, craft := range map[string]func(*BackupInput){
		"type":                   func(in *BackupInput) { in.Type = "full --repo1-path=/tmp" },
		"key":                    func(in *BackupInput) { in.Key = "x.*|y" },
		"leader":                 func(in *BackupInput) { in.Leader = "pg-test-1 --pg2-host-type=ssh" },
		"spec.backup_clients[0]": func(in *BackupInput) { in.Spec.BackupClients = []string{"a=*"} },
	} {
		in := good
		craft(&in)
		err := in.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), field+": ") {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// Expiry passes the inventory's retention on the command line and names what it removed.
func TestBackupExpireNamesWhatWent(t *testing.T) {
	backups := []pitr.Backup{{Label: "A", Type: pitr.BackupFull}, {Label: "B", Type: pitr.BackupFull}, {Label: "C", Type: pitr.BackupFull}}
	infos := 0
	fr := &fakeRemote{reply: func(_ int, cmd sshrun.Command) sshrun.Result {
		if strings.HasSuffix(cmd.Script, "--output=json info") {
			infos++
			list := backups
			if infos > 1 {
				list = backups[1:]
			}
			doc, _ := json.Marshal(pitr.Info{{Name: "pg-test", DB: []pitr.StanzaDB{{ID: 1, Version: "15"}}, Backup: list}})
			return sshrun.Result{Stdout: string(doc)}
		}
		return sshrun.Result{}
	}}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	a := &Activities{Remote: fr}
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.BackupExpire, PgNodeInput{Node: goodNode, Spec: backupSpec})
	if err != nil {
		t.Fatal(err)
	}
	var res StepResult
	_ = v.Get(&res)
	if !res.Changed || res.Summary() != "changed: expired A (retention: 2 full)" {
		t.Errorf("result %+v", res)
	}
	var expire string
	for _, c := range fr.commands() {
		if expireStep.MatchString(c.Script) {
			expire = c.Script
		}
	}
	if !strings.Contains(expire, "keep=2\n") || !strings.Contains(expire, `--repo1-retention-full="$keep"`) {
		t.Errorf("the expire script does not pass the retention:\n%s", expire)
	}
}

// Another open run on the cluster refuses this one, naming it; the run itself does not count.
func TestClusterExclusive(t *testing.T) {
	self := ClusterRun{WorkflowID: "pg-backup/pg-test/scheduled-2026-11-30T10:00:00Z", RunID: "r1"}
	other := ClusterRun{WorkflowID: "pitr-restore/pg-test", RunID: "r0"}
	for _, c := range []struct {
		open []ClusterRun
		busy bool
	}{{nil, false}, {[]ClusterRun{self}, false}, {[]ClusterRun{self, other}, true}, {[]ClusterRun{other}, true}} {
		env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
		a := &Activities{OpenRunsOn: func(_ context.Context, cluster string) ([]ClusterRun, error) {
			if cluster != "pg-test" {
				t.Errorf("listed %s", cluster)
			}
			return c.open, nil
		}}
		env.RegisterActivity(a)
		_, err := env.ExecuteActivity(a.ClusterExclusive, ExclusiveInput{Cluster: "pg-test", WorkflowID: self.WorkflowID, RunID: self.RunID})
		var app *temporal.ApplicationError
		busy := errors.As(err, &app) && app.Type() == ErrClusterBusy && app.NonRetryable()
		if busy != c.busy || (err != nil && !busy) {
			t.Errorf("open %v: err %v, want busy %v", c.open, err, c.busy)
		}
		if busy && (!strings.Contains(app.Message(), "pitr-restore/pg-test (run r0") || !strings.Contains(app.Message(), "`pigwf status pitr-restore/pg-test`")) {
			t.Errorf("the refusal does not name the other run: %s", app.Message())
		}
	}
}
