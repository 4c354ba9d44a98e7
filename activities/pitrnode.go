package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pitr"
)

// PITRNodeInput is one step of a point-in-time restore on one member.
type PITRNodeInput struct {
	Member string   `json:"member"`
	Node   Node     `json:"node"`
	Spec   PITRSpec `json:"spec"`
}

// Step names of PITRRestore's steps on members (as journaled and shown).
const (
	StepPITRStop     = "stop"
	StepPITRAside    = "keep-aside"
	StepPITRRestore  = "restore"
	StepPITRRecover  = "start-recovery"
	StepPITRPromote  = "promote"
	StepPITRFinalize = "finalize"
	StepPITRPutBack  = "put-back"
	StepPITRBackup   = "full-backup"
	StepPITRCheck    = "pgbackrest-check"
)

const pgRunning = `runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1`

// PITRStopInput stops one member.
type PITRStopInput struct {
	PITRNodeInput
	// SwitchWAL (the leader): switch to a new WAL segment and wait for the archiver first, so
	// the archive holds every commit up to the stop and a target in the last minutes is reachable.
	SwitchWAL bool `json:"switch_wal,omitempty"`
}

// PITRStop stops the member's PostgreSQL (fast: a clean shutdown checkpoint) while HA is paused,
// so its agent leaves it stopped.
func (a *Activities) PITRStop(ctx context.Context, in PITRStopInput) (StepResult, error) {
	running := in.Spec.pgEnv() + `if ` + pgRunning + `; then echo "fact: running=1"; fi
`
	sr, err := a.runStep(ctx, in.Node, StepPITRStop, running, nil)
	if err != nil {
		return sr, err
	}
	if sr.Facts["running"] != "1" {
		sr.Notes = append(sr.Notes, "PostgreSQL is stopped")
		return sr, nil
	}
	var notes []string
	inRecovery, err := a.psql(ctx, in.Node, in.Spec.Port, "postgres", "SELECT pg_is_in_recovery();")
	if err != nil {
		return sr, err
	}
	// A standby stops at once (immediate): its data is kept aside and either discarded or put
	// back as a standby, which restarts from its last restartpoint; a fast shutdown would first
	// write a restartpoint (a second or more on a busy standby) that nothing needs. The primary
	// stops cleanly: a roll-back starts it again as the leader, without crash recovery.
	mode := "fast"
	if inRecovery == "t" {
		mode = "immediate"
	}
	if in.SwitchWAL {
		if inRecovery == "f" {
			seg, err := a.switchAndArchive(ctx, in.Node, in.Spec.Port)
			if err != nil {
				return sr, fmt.Errorf("the archive would miss the last commits: %w", err)
			}
			notes = append(notes, "archived the WAL up to "+seg)
		}
	}
	sr, err = a.runStep(ctx, in.Node, StepPITRStop, in.Spec.pgEnv()+withInputs(`if `+pgRunning+`; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m "$mode" -w -t 600 stop >/dev/null
  changed "stopped PostgreSQL ($mode)"
fi
`, shellVar{"mode", mode}), nil)
	sr.Notes = append(notes, sr.Notes...)
	return sr, err
}

// PITRKeepAside moves the member's data directory aside (never deletes it) and leaves an empty
// one: the restore fills the restore node's, the agents re-create the others'.
func (a *Activities) PITRKeepAside(ctx context.Context, in PITRNodeInput) (StepResult, error) {
	script := in.Spec.pgEnv() + dataAsideScript(asideMove{aside: in.Spec.AsidePath(), empty: true})
	return a.runStep(ctx, in.Node, StepPITRAside, script, nil)
}

// PITRRestoreInput restores the chosen backup set on the restore node.
type PITRRestoreInput struct {
	PITRNodeInput
	Backup string   `json:"backup"`
	Args   []string `json:"args"` // pgbackrest restore target options (pitr.PgBackRestOptions.Args)
	Latest bool     `json:"latest,omitempty"`
}

// PITRRestore runs `pgbackrest restore` of the backup set with the target, recovery action
// pause (so the target can be proven before anything is promoted), once per run. It heartbeats
// the bytes restored so far.
func (a *Activities) PITRRestore(ctx context.Context, in PITRRestoreInput) (StepResult, error) {
	args := append([]string(nil), in.Args...)
	if !in.Latest {
		// The end of the archive has no target to pause at: PostgreSQL promotes when replay ends.
		args = append(args, "--target-action=pause")
	}
	for _, arg := range args {
		if strings.ContainsAny(arg, "\n\r") {
			return StepResult{}, fmt.Errorf("restore option %q has a line break", arg)
		}
	}
	script := in.Spec.pgEnv() + withInputs(pitrRestoreScript,
		shellVar{"key", in.Spec.Key}, shellVar{"set", in.Backup}, shellVar{"args", strings.Join(args, "\n")})
	stop := a.progress(ctx, in.Node, "restored", `du -sb `+sshrun.ShellQuote(in.Spec.DataDir)+` 2>/dev/null | cut -f1`)
	defer stop()
	return a.runStep(ctx, in.Node, StepPITRRestore, script, nil)
}

// PITRStartRecovery starts PostgreSQL on the restored data directory, outside the agent (which is
// paused and leaves a postmaster it did not start alone), with restore_command and
// recovery.signal as pgBackRest wrote them, logging to /pg/log/pitr-<key>.log.
func (a *Activities) PITRStartRecovery(ctx context.Context, in PITRNodeInput) (StepResult, error) {
	script := in.Spec.pgEnv() + withInputs(`if [ -f "/var/lib/pigwf/pitr-$key.promoted" ]; then note "promoted already"; exit 0; fi
if `+pgRunning+`; then note "PostgreSQL is running (in recovery)"; exit 0; fi
[ -f "$PGDATA/recovery.signal" ] || fail "no recovery.signal in $PGDATA: the restore did not finish"
grep -q '^restore_command' "$PGDATA/postgresql.auto.conf" || fail "no restore_command in $PGDATA/postgresql.auto.conf: the restore did not finish"
log=/pg/log/pitr-$key.log
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$log" -o "-c logging_collector=off" -W start >/dev/null
changed "started PostgreSQL in recovery (log $log)"
`, shellVar{"key", in.Spec.Key})
	return a.runStep(ctx, in.Node, StepPITRRecover, script, nil)
}

// PITRPromote ends recovery at the proven target: the paused replay resumes, which ends
// recovery and promotes (recovery_target_action pause). Once per run: a retry finds the marker.
// The new timeline id is the fact "timeline".
func (a *Activities) PITRPromote(ctx context.Context, in PITRNodeInput) (StepResult, error) {
	script := in.Spec.pgEnv() + withInputs(`q() { runuser -u postgres -- "$PGBIN/psql" -X -A -t -q -h /var/run/postgresql -p "$PGPORT" -d postgres -c "$1"; }
marker=/var/lib/pigwf/pitr-$key.promoted
if [ -f "$marker" ]; then fact timeline "$(cat "$marker")"; note "promoted already: timeline $(cat "$marker")"; exit 0; fi
if [ "$(q 'SELECT pg_is_in_recovery()')" = t ]; then
  q "SELECT pg_wal_replay_resume()" >/dev/null
  for i in $(seq 1 600); do [ "$(q 'SELECT pg_is_in_recovery()')" = f ] && break; sleep 0.1; done
  [ "$(q 'SELECT pg_is_in_recovery()')" = f ] || fail "still in recovery 60 s after the promotion"
  changed "promoted"
else
  note "recovery had ended (end of the archive)"
fi
tl=$(q "SELECT pg_walfile_name(pg_current_wal_lsn())" | cut -c1-8)
tl=$(printf '%d' "0x$tl")
echo "$tl" > "$marker"
fact timeline "$tl"
changed "leads timeline $tl"
`, shellVar{"key", in.Spec.Key})
	return a.runStep(ctx, in.Node, StepPITRPromote, script, nil)
}

// PITRFinalizeInput finishes the promoted member.
type PITRFinalizeInput struct {
	PITRNodeInput
	Timeline uint32 `json:"timeline"`
}

// PITRFinalize archives the new timeline's history file and first WAL, stops PostgreSQL cleanly
// and removes every recovery setting pgBackRest wrote. Facts: checkpoint_lsn, timeline.
func (a *Activities) PITRFinalize(ctx context.Context, in PITRFinalizeInput) (StepResult, error) {
	vars := []shellVar{{"repo", in.Spec.RepoPath}, {"key", in.Spec.Key}, {"tl", strconv.FormatUint(uint64(in.Timeline), 10)}}
	first, err := a.runStep(ctx, in.Node, StepPITRFinalize, in.Spec.pgEnv()+withInputs(pitrHistoryScript, vars...), nil)
	if err != nil {
		return first, err
	}
	if first.Facts["running"] == "1" {
		seg, err := a.switchAndArchive(ctx, in.Node, in.Spec.Port)
		if err != nil {
			return first, err
		}
		first.Notes = append(first.Notes, "archived the new timeline's WAL up to "+seg)
	}
	sr, err := a.runStep(ctx, in.Node, StepPITRFinalize, in.Spec.pgEnv()+withInputs(pitrFinalizeScript, vars...), nil)
	sr.Changed = sr.Changed || first.Changed
	sr.Changes = append(first.Changes, sr.Changes...)
	sr.Notes = append(first.Notes, sr.Notes...)
	return sr, err
}

// PITRPutBack is the compensation of a run that failed, was rejected or timed out before its
// promotion: the member's original data directory goes back in place.
func (a *Activities) PITRPutBack(ctx context.Context, in PITRNodeInput) (StepResult, error) {
	script := in.Spec.pgEnv() + withInputs(pitrPutBackScript, shellVar{"key", in.Spec.Key})
	return a.runStep(ctx, in.Node, StepPITRPutBack, script, nil)
}

// PITRBackupInput takes the first backup of the new timeline (and, for PITRCheck, checks
// archiving) on the cluster's leader.
type PITRBackupInput struct {
	PITRNodeInput
	Timeline uint32 `json:"timeline"`
	// DCS and Members: the step runs on whichever member leads when it starts (Node when none
	// is named), so a failover after the restore does not send it to a replica.
	DCS     DCSInput     `json:"dcs"`
	Members []PITRMember `json:"members,omitempty"`
}

// onLeader points the input at the member that leads now.
func (a *Activities) onLeader(ctx context.Context, in *PITRBackupInput) error {
	if len(in.Members) == 0 {
		return nil
	}
	state, err := a.DCSStatus(ctx, in.DCS)
	if err != nil {
		return err
	}
	if !state.Reachable || state.Leader == "" {
		return fmt.Errorf("no leader to run on (etcd: %s)", orDash(state.Unreachable))
	}
	for _, m := range in.Members {
		if m.Name == state.Leader {
			in.Member, in.Node = m.Name, m.Node
			return nil
		}
	}
	return fmt.Errorf("the leader %s is not a member of the run", state.Leader)
}

// PITRBackup takes a full backup on the new timeline unless the repository holds one already
// (a retry after the worker died waits for the earlier attempt's pgbackrest first).
func (a *Activities) PITRBackup(ctx context.Context, in PITRBackupInput) (StepResult, error) {
	if err := a.onLeader(ctx, &in); err != nil {
		return StepResult{}, err
	}
	res := StepResult{Node: in.Node.Addr, Step: StepPITRBackup}
	wait := in.Spec.pgEnv() + `while pgrep -u postgres -f "pgbackrest --stanza=$PIGWF_CLUSTER --type=full --no-expire-auto backup" >/dev/null; do sleep 1; done
`
	if _, err := a.runStep(ctx, in.Node, StepPITRBackup, wait, nil); err != nil {
		return res, err
	}
	if label, err := a.fullBackupOn(ctx, in.Node, in.Spec, in.Timeline); err != nil {
		return res, err
	} else if label != "" {
		// An earlier attempt of this step took it (its worker died before reporting).
		res.Notes = append(res.Notes, fmt.Sprintf("full backup %s was taken after the promotion to timeline %d", label, in.Timeline))
		res.Facts = map[string]string{"backup": label}
		backupTaken(ctx, in.Spec.Cluster)
		return res, nil
	}
	// --no-expire-auto: with pgBackRest's default, this backup would expire the oldest full
	// backup past repo1-retention-full, and with it the WAL before the restored point, so a
	// second PITR to an earlier point (or back to the abandoned timeline) would lose its
	// backup. The next scheduled backup, or `pgbackrest expire`, applies retention.
	script := in.Spec.pgEnv() + `start=$(date +%s)
out=$(runuser -u postgres -- pgbackrest --stanza="$PIGWF_CLUSTER" --type=full --no-expire-auto backup 2>&1) || { echo "$out" | tail -n 5 >&2; exit 1; }
changed "full backup in $(( $(date +%s) - start )) s (older backups kept: retention applies at the next scheduled backup)"
`
	res, err := a.runStep(ctx, in.Node, StepPITRBackup, script, nil)
	if err != nil {
		return res, err
	}
	label, err := a.fullBackupOn(ctx, in.Node, in.Spec, in.Timeline)
	if err != nil {
		return res, err
	}
	if label == "" {
		return res, fmt.Errorf("pgbackrest backup succeeded but lists no full backup on timeline %d or later", in.Timeline)
	}
	res.Facts = map[string]string{"backup": label}
	res.Changes = append(res.Changes, "full backup "+label+" on "+in.Member)
	backupTaken(ctx, in.Spec.Cluster)
	return res, nil
}

// fullBackupOn is the label of the newest full backup that starts on timeline tl or a later one
// (a failover after the restore moves the cluster on), "" if none.
func (a *Activities) fullBackupOn(ctx context.Context, node Node, spec PITRSpec, tl uint32) (string, error) {
	bi, err := ReadBackupInfo(ctx, a.Remote, node, spec.Cluster, spec.RepoPath, 1)
	if err != nil {
		return "", err
	}
	label := ""
	for _, b := range bi.Stanza.Backup {
		seg, err := pitr.ParseSegment(b.Archive.Start)
		if err == nil && b.Type == pitr.BackupFull && !b.Error && seg.Timeline >= tl {
			label = b.Label
		}
	}
	return label, nil
}

// PITRCheck runs `pgbackrest check` on the leader: archiving from the new timeline works.
func (a *Activities) PITRCheck(ctx context.Context, in PITRBackupInput) (StepResult, error) {
	if err := a.onLeader(ctx, &in); err != nil {
		return StepResult{}, err
	}
	script := in.Spec.pgEnv() + `out=$(runuser -u postgres -- pgbackrest --stanza="$PIGWF_CLUSTER" check 2>&1) || { echo "$out" | tail -n 5 >&2; exit 1; }
note "pgbackrest check passed on $(hostname)"
`
	return a.runStep(ctx, in.Node, StepPITRCheck, script, nil)
}

// progress heartbeats "<what> N MiB" every three seconds from a command on the node that prints
// a byte count, while a long step runs; the heartbeat runStep records is replaced by this one.
func (a *Activities) progress(ctx context.Context, node Node, what, cmd string) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				out, err := a.Remote.Run(pctx, node.Target(), sshrun.Command{Script: cmd, AsUser: "root", Timeout: 10 * time.Second})
				if err != nil || out.ExitStatus != 0 {
					continue
				}
				if n, err := strconv.ParseInt(strings.TrimSpace(out.Stdout), 10, 64); err == nil {
					activity.RecordHeartbeat(ctx, fmt.Sprintf("%s %d MiB on %s", what, n>>20, node))
				}
			}
		}
	}()
	return cancel
}
