package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/pki"
)

// RenderPgBackRestConf is /etc/pgbackrest.conf for a member. Lock and log paths are per node
// (lab nodes share /tmp and /var/log). With BackupClients it also configures pgBackRest's TLS
// server (`pgbackrest server`, which BackupServer runs): a backup from a standby needs the
// leader's pgBackRest reachable, and pigwf reaches it over TLS with the node certificates of the
// deployment CA rather than with SSH keys between the nodes; the server lets in only the listed
// members' certificates, for this stanza only. The files are the ones PostgreSQL serves TLS with
// (the key root:postgres 0640, which pgBackRest accepts from a root-owned file).
func RenderPgBackRestConf(spec PGSpec) string {
	server := ""
	if len(spec.BackupClients) > 0 {
		f := pki.NodeFiles()
		server = fmt.Sprintf("tls-server-address=*\ntls-server-port=%d\ntls-server-ca-file=%s\ntls-server-cert-file=%s\ntls-server-key-file=%s\n",
			inventory.BackupServerPort, f.CA, f.Cert, f.Key)
		for _, m := range spec.BackupClients {
			server += "tls-server-auth=" + m + "=" + spec.Cluster + "\n"
		}
	}
	return fmt.Sprintf(`# managed by pigwf pg-cluster-create
[global]
repo1-path=%s
repo1-retention-full=%d
log-path=%s
lock-path=/pg/tmp/pgbackrest
spool-path=/pg/spool
start-fast=y
process-max=2
log-level-console=warn
log-level-file=info
%s
[%s]
pg1-path=%s
pg1-port=%d
pg1-socket-path=%s`, spec.BackupRepoPath, spec.BackupRetention, backupLogPath, server, spec.Cluster, spec.DataDir, spec.Port, pgSocketDir)
}

// Where pgBackRest logs and where PostgreSQL's socket is, on every member.
const (
	backupLogPath = "/pg/log/pgbackrest"
	pgSocketDir   = "/var/run/postgresql"
)

// StandbyBackupOptions are the options of a backup from a standby (pgBackRest's backup-standby)
// that name the leader: pg1 is the standby itself (the configuration's), pg2 the leader's
// pgBackRest TLS server, reached by its nodename (the name its certificate holds, which
// pgBackRest checks: it does not match an IP address against the certificate; NodeInit's
// /etc/hosts block resolves it). They are given on the command line, not in the file, because the
// leader changes: each backup names the one the agents report then. The client certificate is
// the standby's own node certificate.
func StandbyBackupOptions(spec PGSpec, leader string) []string {
	f := pki.NodeFiles()
	return []string{
		"--backup-standby",
		"--pg2-host=" + leader,
		"--pg2-host-type=tls",
		fmt.Sprintf("--pg2-host-port=%d", inventory.BackupServerPort),
		"--pg2-host-ca-file=" + f.CA,
		"--pg2-host-cert-file=" + f.Cert,
		"--pg2-host-key-file=" + f.Key,
		"--pg2-path=" + spec.DataDir,
		fmt.Sprintf("--pg2-port=%d", spec.Port),
		"--pg2-socket-path=" + pgSocketDir,
	}
}

// BackupConfig writes pgbackrest.conf and makes the repository directory.
func (a *Activities) BackupConfig(ctx context.Context, in PgNodeInput) (StepResult, error) {
	return a.runStep(ctx, in.Node, StepBackupConf, backupConfScript(in.Spec), nil)
}

// backupConfScript writes pgbackrest.conf (setting confchanged=1 when it did) and makes the
// repository, lock, log and spool directories: BackupConfig's script, and the first part of
// BackupServer's.
func backupConfScript(spec PGSpec) string {
	return fmt.Sprintf(`want=%s
repo=%s
confchanged=0
if [ "$(cat /etc/pgbackrest.conf 2>/dev/null)" != "$want" ]; then
  printf '%%s\n' "$want" > /etc/pgbackrest.conf; chown postgres:postgres /etc/pgbackrest.conf; chmod 640 /etc/pgbackrest.conf
  changed "wrote /etc/pgbackrest.conf"; confchanged=1
fi
for d in "$repo" /pg/tmp/pgbackrest /pg/log/pgbackrest /pg/spool; do
  if [ ! -d "$d" ]; then mkdir -p "$d"; chown postgres:postgres "$d"; chmod 750 "$d"; changed "created $d"; fi
done
[ "$(stat -c %%U "$repo")" = postgres ] || { chown postgres:postgres "$repo"; changed "owner of $repo set to postgres"; }
`, sshrun.ShellQuote(RenderPgBackRestConf(spec)), sshrun.ShellQuote(spec.BackupRepoPath))
}

// BackupStanza creates the cluster's stanza on the primary when it has none.
func (a *Activities) BackupStanza(ctx context.Context, in PgNodeInput) (StepResult, error) {
	script := fmt.Sprintf(`stanza=%s
pgb() { runuser -u postgres -- pgbackrest --stanza="$stanza" "$@"; }
if info=$(pgb --output=json info 2>/dev/null) && echo "$info" | grep -q '"status":{"code":0' ; then note "stanza $stanza exists"; exit 0; fi
out=$(pgb stanza-create 2>&1) || { echo "$out" >&2; exit 1; }
changed "created pgBackRest stanza $stanza"
out=$(pgb check 2>&1) && note "archiving works (pgbackrest check)" || { echo "$out" >&2; exit 1; }
`, sshrun.ShellQuote(in.Spec.Cluster))
	return a.runStep(ctx, in.Node, StepStanza, script, nil)
}

// BackupFull takes the first full backup, unless the repository already holds one.
func (a *Activities) BackupFull(ctx context.Context, in PgNodeInput) (StepResult, error) {
	script := fmt.Sprintf(`stanza=%s
pgb() { runuser -u postgres -- pgbackrest --stanza="$stanza" "$@"; }
count() { pgb --output=json info 2>/dev/null | grep -o '"type":"full"' | wc -l; }
# A retry after the worker died finds the earlier attempt's backup still running (sshd does not
# stop a session's command when its connection drops) and holding pgBackRest's lock: wait for it,
# then count again, so the step neither fails on the lock nor takes a second backup.
while pgrep -u postgres -fx "pgbackrest --stanza=$stanza --type=full backup" >/dev/null; do
  sleep 1
done
n=$(count)
if [ "$n" -gt 0 ]; then note "the repository holds $n full backup(s)"; exit 0; fi
start=$(date +%%s)
out=$(pgb --type=full backup 2>&1) || { echo "$out" | tail -n 5 >&2; exit 1; }
label=$(pgb --output=json info | grep -o '"label":"[^"]*F"' | tail -n1 | cut -d'"' -f4)
fact backup "$label"
changed "full backup $label in $(( $(date +%%s) - start )) s"
`, sshrun.ShellQuote(in.Spec.Cluster))
	res, err := a.runStep(ctx, in.Node, StepFullBackup, script, nil)
	if err == nil && res.Changed {
		backupTaken(ctx, in.Spec.Cluster)
	}
	return res, err
}

// backupTaken records that a full backup of cluster, taken by a runbook, has just succeeded: the
// gauge the backup-age alert reads (deploy/monitoring). Only a backup the step took sets it; one
// the repository already held has an age this worker does not know.
func backupTaken(ctx context.Context, cluster string) {
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{metrics.LabelCluster: cluster}).
		Gauge(metrics.BackupLastSuccess).Update(float64(time.Now().Unix()))
}

// VerifyInput checks a finished cluster.
type VerifyInput struct {
	DCS      DCSInput `json:"dcs"`
	Primary  string   `json:"primary"`
	APIURL   string   `json:"api_url"` // the primary's agent
	Replicas []string `json:"replicas"`
}

// Verify confirms what the runbook built: the DCS leader is the primary, the agent there takes
// writes, and its /cluster (live from pg_stat_replication) shows every replica streaming.
func (a *Activities) Verify(ctx context.Context, in VerifyInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepVerify}
	client, err := a.agentClient(3 * time.Second)
	if err != nil {
		return res, err
	}
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		problems = nil
		if state, err := a.DCSStatus(ctx, in.DCS); err != nil || !state.Reachable {
			problems = append(problems, fmt.Sprintf("etcd: %v %s", err, state.Unreachable))
		} else if state.Leader != in.Primary {
			problems = append(problems, fmt.Sprintf("the DCS leader is %q, not %s", state.Leader, in.Primary))
		}
		view, err := clusterView(ctx, client, []MemberAPI{{Name: in.Primary, APIURL: in.APIURL}}, in.Primary)
		if err != nil {
			problems = append(problems, "agent API: "+err.Error())
		}
		states := map[string]string{}
		for _, m := range view.Members {
			states[m.Name] = string(m.Role) + "/" + m.State
		}
		for _, r := range in.Replicas {
			if !strings.HasSuffix(states[r], "/streaming") {
				problems = append(problems, fmt.Sprintf("%s is %q, not streaming", r, states[r]))
			}
		}
		if len(problems) == 0 {
			var parts []string
			for _, m := range view.Members {
				parts = append(parts, m.Name+" "+string(m.Role)+"/"+m.State)
			}
			res.Notes = append(res.Notes, "healthy: "+strings.Join(parts, ", "))
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("cluster %s is not healthy: %s", in.DCS.Cluster, strings.Join(problems, "; "))
		}
		// Long steps heartbeat: the step's heartbeat timeout is shorter than this wait.
		activity.RecordHeartbeat(ctx, "waiting for a healthy cluster: "+strings.Join(problems, "; "))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
