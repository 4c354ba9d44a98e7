package activities

// PgBackup's steps on a member: the backup itself (pgBackRest, on the leader or, with
// backup-standby, on a streaming replica), the leader's pgBackRest TLS server that a backup from
// a standby needs, and the expiry by the inventory's retention. The repository is read through
// ReadBackupInfo, the one reader `pigwf backup list` and PITRRestore use too.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
)

// Step names of PgBackup's member steps, as their StepResults report them.
const (
	StepBackup       = "backup"
	StepBackupServer = "backup-server"
	StepBackupExpire = "expire"
)

// ErrBackupFailed: pgBackRest refused or failed the backup (or the expiry); a retry of the same
// attempt would fail the same way. The message carries pgBackRest's own error lines.
const ErrBackupFailed = "BackupFailed"

// BackupAnnotation is the pgBackRest annotation (backup --annotation, shown by info --output=json)
// that names the run a backup was taken for: the key of PgBackup's idempotence.
const BackupAnnotation = "pigwf-run"

// BackupInput takes one backup on Node.
type BackupInput struct {
	Node Node   `json:"node"`
	Spec PGSpec `json:"spec"`
	Type string `json:"type"` // full, diff or incr
	// Key names the run (its run ID): the backup's BackupAnnotation, so that a retried attempt
	// finds the backup an earlier one took.
	Key string `json:"key"`
	// Leader is the leader's nodename when Node is a standby (pgBackRest's backup-standby, which
	// starts and stops the backup on the leader); "" when Node is the leader.
	Leader string `json:"leader,omitempty"`
}

// backupKeyRE: a run ID as Temporal makes them (a UUID), the only key BackupInput takes: it goes
// into a pgrep pattern and an annotation.
var backupKeyRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// Validate checks the member, the cluster's settings, the type, the key and the leader's name.
func (in BackupInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.pgSpec("spec", in.Spec)
	if !slices.Contains([]pitr.BackupType{pitr.BackupFull, pitr.BackupDiff, pitr.BackupIncr}, pitr.BackupType(in.Type)) {
		c.add("type", fmt.Sprintf("%q is not a backup type", in.Type), "use full, diff or incr")
	}
	if !backupKeyRE.MatchString(in.Key) {
		c.add("key", fmt.Sprintf("%q is not a run ID", in.Key), "give the run's ID (letters, digits and '-')")
	}
	c.optional("leader", "nodename", in.Leader)
	return c.err()
}

// backupProgressEvery is how often Backup reads pgBackRest's log for its heartbeats.
var backupProgressEvery = 5 * time.Second

// Backup takes one pgBackRest backup of the cluster's stanza on in.Node, annotated with in.Key,
// without expiring anything (BackupExpire does, next). Unchanged when the repository already
// holds the backup of this run (a retried attempt). Heartbeats carry the share copied so far, from
// pgBackRest's log. A type pgBackRest cannot take (diff or incr with no prior full backup of this
// database) becomes a full backup, pgBackRest's own rule: the result says so. pgBackRest's
// failure (a failover mid-backup, the leader unreachable) fails the step at once, non-retryable
// (ErrBackupFailed), with pgBackRest's error lines; a lost connection is retried.
func (a *Activities) Backup(ctx context.Context, in BackupInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: StepBackup}
	stanza := in.Spec.Cluster
	before, err := a.readRepository(ctx, in.Node, in.Spec)
	if err != nil {
		return res, err
	}
	if b, ok := annotated(before.Stanza, in.Key); ok {
		res.Notes = []string{fmt.Sprintf("%s backup %s was taken by an earlier attempt of this run", b.Type, b.Label)}
		res.Facts = backupFacts(b, in.Type)
		return res, nil
	}
	var opts []string
	if in.Leader != "" {
		opts = StandbyBackupOptions(in.Spec, in.Leader)
	}
	quoted := make([]string, len(opts))
	for i, o := range opts {
		quoted[i] = sshrun.ShellQuote(o)
	}
	script := withInputs(pgBackupScript, shellVar{"stanza", stanza}, shellVar{"type", in.Type}, shellVar{"run", in.Key},
		shellVar{"opts", strings.Join(quoted, " ")})
	progress := a.watchBackupProgress(ctx, in.Node, stanza)
	step, err := a.runStepReporting(ctx, in.Node, StepBackup, script, nil, progress.last)
	progress.stop()
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == ErrConflict {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("pgBackRest's %s backup of %s on %s failed: %s",
				in.Type, stanza, in.Node, pgBackRestError(err)), ErrBackupFailed, nil)
		}
		return res, err
	}
	after, err := a.readRepository(ctx, in.Node, in.Spec)
	if err != nil {
		return res, err
	}
	b, ok := annotated(after.Stanza, in.Key)
	if !ok {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"pgBackRest ended the backup of %s on %s without an error, but the repository holds no backup annotated %s=%s: see %s/%s-backup.log there",
			stanza, in.Node, BackupAnnotation, in.Key, backupLogPath, stanza), ErrBackupFailed, nil)
	}
	res.Facts = backupFacts(b, in.Type)
	if !step.Changed { // an earlier attempt's backup, found once its pgbackrest ended
		res.Notes = append(step.Notes, fmt.Sprintf("%s backup %s", b.Type, b.Label))
		return res, nil
	}
	res.Changed = true
	from := ""
	if in.Leader != "" {
		from = " from this standby (started and stopped on " + in.Leader + ")"
	}
	res.Changes = []string{fmt.Sprintf("%s backup %s%s: %s of %s in the repository, in %s", b.Type, b.Label, from,
		mib(b.Info.Repository.Delta), mib(b.Info.Size), b.StopTime().Sub(b.StartTime()))}
	if string(b.Type) != in.Type {
		res.Notes = append(res.Notes, typeChanged(in.Type, b, before.Stanza))
	}
	if b.Type == pitr.BackupFull {
		backupTaken(ctx, in.Spec.Cluster)
	}
	a.logger().Info("step done", "node", in.Node.String(), "step", StepBackup, "changed", true, "summary", res.Summary())
	return res, nil
}

// readRepository is the stanza as the member's pgbackrest info reads it; a missing stanza is
// permanent (pg-cluster-create makes it), anything else (SSH) is retried.
func (a *Activities) readRepository(ctx context.Context, node Node, spec PGSpec) (BackupInfo, error) {
	stop := heartbeat(ctx, node, "pgbackrest info")
	bi, err := ReadBackupInfo(ctx, a.Remote, node, spec.Cluster, spec.BackupRepoPath, 0)
	stop()
	if errors.Is(err, ErrNoStanza) {
		return bi, temporal.NewNonRetryableApplicationError(err.Error(), ErrBackupFailed, nil)
	}
	return bi, err
}

// annotated is the backup of the stanza annotated with key.
func annotated(s pitr.Stanza, key string) (pitr.Backup, bool) {
	for _, b := range s.Backup {
		if b.Annotation[BackupAnnotation] == key {
			return b, true
		}
	}
	return pitr.Backup{}, false
}

// backupFacts are what the run records of a backup: its label, the type taken and the one asked for.
func backupFacts(b pitr.Backup, requested string) map[string]string {
	return map[string]string{"label": b.Label, "type": string(b.Type), "requested": requested}
}

// typeChanged says why the backup taken is not of the type asked for: pgBackRest takes a full
// backup when no full one of the current database is there to refer to.
func typeChanged(requested string, b pitr.Backup, before pitr.Stanza) string {
	db, _ := before.CurrentDB()
	for _, p := range before.Backup {
		if p.Type == pitr.BackupFull && !p.Error && p.Database.ID == db.ID {
			return fmt.Sprintf("%s was asked for; pgBackRest took a %s backup instead (its log, %s/%s-backup.log, says why)", requested, b.Type, backupLogPath, before.Name)
		}
	}
	return fmt.Sprintf("%s was asked for, but the repository held no full backup of this database to refer to: pgBackRest took a %s backup instead", requested, b.Type)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// pgBackRestError is what a failed backup script said on stderr (pgBackRest's ERROR, WARN and
// HINT lines, which name files and settings, never data), or the error itself.
func pgBackRestError(err error) string {
	var ee *sshrun.ExitError
	if errors.As(err, &ee) && strings.TrimSpace(ee.Stderr) != "" {
		return strings.Join(strings.Fields(ee.Stderr), " ")
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// backupPercentRE: the share of the backup done, as pgBackRest's detail lines give it after each
// file copied: "P01 DETAIL: backup file /pg/data/base/1/1259 (112KB, 47.31%) checksum ...".
var backupPercentRE = regexp.MustCompile(`\((?:[^(),]*, )?([0-9]{1,3}(?:\.[0-9]+)?)%\)`)

// BackupProgress is the share of the running backup done, from the tail of pgBackRest's
// backup log (its last "backup command begin" onwards): "47.31%", "" when no file line follows
// the last begin yet.
func BackupProgress(logTail string) string {
	last := ""
	for _, line := range strings.Split(logTail, "\n") {
		if strings.Contains(line, " backup command begin ") {
			last = ""
			continue
		}
		if m := backupPercentRE.FindStringSubmatch(line); m != nil {
			last = m[1] + "%"
		}
	}
	return last
}

// backupWatch reads a running backup's progress until stopped.
type backupWatch struct {
	mu   sync.Mutex
	pct  string
	done chan struct{}
	wg   sync.WaitGroup
}

func (w *backupWatch) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pct == "" {
		return ""
	}
	return w.pct + " copied"
}

func (w *backupWatch) stop() { close(w.done); w.wg.Wait() }

// watchBackupProgress reads the tail of the stanza's backup log on node every
// backupProgressEvery, over the runner's pooled connection, for the heartbeats. A read that
// fails leaves the last share known: progress is for people, never a reason to fail.
func (a *Activities) watchBackupProgress(ctx context.Context, node Node, stanza string) *backupWatch {
	w := &backupWatch{done: make(chan struct{})}
	file := backupLogPath + "/" + stanza + "-backup.log"
	cmd := sshrun.Command{Script: "tail -n 2000 " + sshrun.ShellQuote(file) + " 2>/dev/null || true", AsUser: "root", Timeout: 10 * time.Second}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(backupProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if out, err := a.Remote.Run(ctx, node.Target(), cmd); err == nil && out.ExitStatus == 0 {
					if p := BackupProgress(out.Stdout); p != "" {
						w.mu.Lock()
						w.pct = p
						w.mu.Unlock()
					}
				}
			}
		}
	}()
	return w
}

// BackupServer writes pgbackrest.conf (with its TLS server, PGSpec.BackupClients) on the leader and
// runs `pgbackrest server` there, listening on inventory.BackupServerPort: what a backup from a
// standby needs of the leader. A changed configuration restarts the server.
func (a *Activities) BackupServer(ctx context.Context, in PgNodeInput) (StepResult, error) {
	if len(in.Spec.BackupClients) == 0 {
		return StepResult{Node: in.Node.Addr, Step: StepBackupServer}, temporal.NewNonRetryableApplicationError(
			"backup-server: the spec names no backup clients, so pgbackrest.conf would have no TLS server: set pg_backup_source: replica in the inventory (starter.PgBackupInput sets them)",
			ErrConfig, nil)
	}
	script := backupConfScript(in.Spec) + withInputs(backupServerScript, shellVar{"port", strconv.Itoa(inventory.BackupServerPort)})
	return a.runStep(ctx, in.Node, StepBackupServer, script, nil)
}

// BackupExpire expires the stanza's backups past the inventory's retention (pgbackrest expire
// with repo1-retention-full given on the command line, so the inventory's value counts even where
// an older pgbackrest.conf says otherwise) and the archived WAL only they needed. Changed when it
// removed a backup, which it names.
func (a *Activities) BackupExpire(ctx context.Context, in PgNodeInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: StepBackupExpire}
	before, err := a.readRepository(ctx, in.Node, in.Spec)
	if err != nil {
		return res, err
	}
	script := withInputs(`if ! out=$(runuser -u postgres -- pgbackrest --stanza="$stanza" --repo1-retention-full="$keep" --log-level-console=warn expire 2>&1); then
  printf '%s\n' "$out" | grep -E '^(ERROR|WARN): |^ +HINT: ' | tail -n 6 >&2
  exit 64
fi
`, shellVar{"stanza", in.Spec.Cluster}, shellVar{"keep", strconv.Itoa(in.Spec.BackupRetention)})
	if _, err := a.runStep(ctx, in.Node, StepBackupExpire, script, nil); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == ErrConflict {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("pgbackrest expire of %s on %s failed: %s", in.Spec.Cluster, in.Node, pgBackRestError(err)), ErrBackupFailed, nil)
		}
		return res, err
	}
	after, err := a.readRepository(ctx, in.Node, in.Spec)
	if err != nil {
		return res, err
	}
	var gone, kept []string
	for _, b := range before.Stanza.Backup {
		if slices.ContainsFunc(after.Stanza.Backup, func(x pitr.Backup) bool { return x.Label == b.Label }) {
			kept = append(kept, b.Label)
		} else {
			gone = append(gone, b.Label)
		}
	}
	rule := fmt.Sprintf("retention: %d full", in.Spec.BackupRetention)
	if len(gone) > 0 {
		res.Changed = true
		res.Changes = []string{fmt.Sprintf("expired %s (%s)", strings.Join(gone, ", "), rule)}
		res.Facts = map[string]string{"expired": strings.Join(gone, ",")}
	} else {
		res.Notes = []string{fmt.Sprintf("nothing past retention (%s; %d backup(s) kept)", rule, len(kept))}
	}
	return res, nil
}
