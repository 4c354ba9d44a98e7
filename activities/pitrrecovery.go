package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pitr"
)

// Error types of a restore that cannot reach or prove its target (non-retryable: the run puts
// the original data directories back).
const (
	ErrPITRTargetNotReached = "PITRTargetNotReached"
	ErrPITRNotProven        = "PITRTargetNotProven"
)

// PITRReachInput waits for recovery to stop at the target.
type PITRReachInput struct {
	PITRNodeInput
	Target pitr.Target `json:"target"`
	// Stall fails the step when replay makes no progress for this long (default 5 minutes).
	Stall time.Duration `json:"stall,omitempty"`
}

// RecoveryProof is what PostgreSQL itself says about where replay stopped.
type RecoveryProof struct {
	StopLine   string    `json:"stop_line,omitempty"`  // "recovery stopping before commit of transaction 745, time ..."
	ReplayLSN  string    `json:"replay_lsn"`           // pg_last_wal_replay_lsn(), or the promoted primary's position
	LastCommit time.Time `json:"last_commit,omitzero"` // pg_last_xact_replay_timestamp()
	Paused     bool      `json:"paused"`               // replay paused at the target, waiting for promotion
	Promoted   bool      `json:"promoted"`             // recovery ended by itself (the end of the archive)
	LogLines   []string  `json:"log_lines,omitempty"`  // the recovery log lines that prove it
}

// Summary is the proof in one line, for the run's page and the inspect approval.
func (p RecoveryProof) Summary() string {
	last := "no transaction replayed"
	if !p.LastCommit.IsZero() {
		last = "last replayed commit at " + pitr.FormatTime(p.LastCommit)
	}
	if p.Promoted {
		return fmt.Sprintf("replayed to the end of the archive at %s; %s", p.ReplayLSN, last)
	}
	return fmt.Sprintf("%s; paused at %s; %s", strings.TrimSpace(afterLOG(p.StopLine)), p.ReplayLSN, last)
}

func afterLOG(line string) string {
	if _, rest, ok := strings.Cut(line, "LOG:"); ok {
		return rest
	}
	return line
}

// recoveryState is one look at the recovering PostgreSQL and its log.
type recoveryState struct {
	running, sqlOK, inRecovery, paused bool
	replayLSN                          string
	lastCommit                         time.Time
	log                                []string
}

const recoveryObserveScript = `log=/pg/log/pitr-$key.log
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  echo running
  runuser -u postgres -- "$PGBIN/psql" -X -A -t -q -F ' ' -h /var/run/postgresql -p "$PGPORT" -d postgres 2>/dev/null <<'SQL' | sed 's/^/sql: /' || true
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE 'not' END,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
       coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '-');
SQL
fi
grep -E 'recovery stopping|pausing at the end of recovery|recovery ended before configured recovery target|last completed transaction was at log time|selected new timeline ID|archive recovery complete|FATAL|PANIC' "$log" 2>/dev/null | tail -n 40 | sed 's/^/log: /' || true
`

func (a *Activities) observeRecovery(ctx context.Context, in PITRNodeInput) (recoveryState, error) {
	var st recoveryState
	script := in.Spec.pgEnv() + withInputs(recoveryObserveScript, shellVar{"key", in.Spec.Key})
	out, err := a.Remote.Run(ctx, in.Node.Target(), sshrun.Command{Script: script, AsUser: "root", Timeout: 30 * time.Second})
	if err != nil {
		return st, a.classify(in.Node, "observe recovery", err)
	}
	if err := out.Err(); err != nil {
		return st, fmt.Errorf("observe recovery on %s: %w", in.Node, err)
	}
	for _, line := range strings.Split(out.Stdout, "\n") {
		switch {
		case line == "running":
			st.running = true
		case strings.HasPrefix(line, "sql: "):
			f := strings.Fields(strings.TrimPrefix(line, "sql: "))
			if len(f) == 4 {
				st.sqlOK = true
				st.inRecovery, st.paused, st.replayLSN = f[0] == "t", f[1] == "paused", f[2]
				if f[3] != "-" {
					st.lastCommit, _ = time.Parse(time.RFC3339Nano, f[3])
				}
			}
		case strings.HasPrefix(line, "log: "):
			st.log = append(st.log, strings.TrimPrefix(line, "log: "))
		}
	}
	return st, nil
}

// PITRReachTarget waits until PostgreSQL's replay stops at the target and proves it from
// PostgreSQL itself: replay paused, the "recovery stopping ..." line matching the target, and
// for a time target the last replayed commit at or before it (for --latest: recovery ended by
// itself). A target the archive never reaches fails fast: PostgreSQL stops with "recovery ended
// before configured recovery target was reached" as soon as replay runs out of WAL. Heartbeats
// carry the replay position.
func (a *Activities) PITRReachTarget(ctx context.Context, in PITRReachInput) (RecoveryProof, error) {
	stall := in.Stall
	if stall <= 0 {
		stall = 5 * time.Minute
	}
	lastLSN, lastMove := "", time.Now()
	notRunningSince := time.Time{}
	for {
		st, err := a.observeRecovery(ctx, in.PITRNodeInput)
		if err != nil {
			var app *temporal.ApplicationError
			if errors.As(err, &app) {
				return RecoveryProof{}, err
			}
			a.logger().Warn("observe recovery", "node", in.Node.String(), "err", err)
		}
		proof := RecoveryProof{ReplayLSN: st.replayLSN, LastCommit: st.lastCommit, Paused: st.paused, LogLines: st.log}
		for _, l := range st.log {
			if strings.Contains(l, "recovery ended before configured recovery target was reached") {
				return proof, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"%s was not reached: replay ran out of archived WAL at %s (%s); PostgreSQL on %s stopped: %q",
					in.Target, orDash(st.replayLSN), lastCommitText(st.lastCommit), in.Member, afterLOG(l)), ErrPITRTargetNotReached, nil, proof)
			}
		}
		stop, found := pitr.ParseStop(st.log)
		if found {
			proof.StopLine = stop.Line
		}
		switch {
		case err != nil:
		case in.Target.Kind == pitr.KindLatest && st.sqlOK && !st.inRecovery:
			proof.Promoted = true
			return proof, nil
		case st.sqlOK && !st.inRecovery:
			return proof, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"PostgreSQL on %s ended recovery without pausing at %s: refusing to go on unproven", in.Member, in.Target), ErrPITRNotProven, nil, proof)
		case st.sqlOK && st.paused && found:
			if err := in.Target.Reached(stop, st.lastCommit); err != nil {
				return proof, temporal.NewNonRetryableApplicationError(err.Error(), ErrPITRNotProven, nil, proof)
			}
			return proof, nil
		case !st.running:
			if notRunningSince.IsZero() {
				notRunningSince = time.Now()
			}
			if time.Since(notRunningSince) > 10*time.Second {
				return proof, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"PostgreSQL on %s is not running (recovery log /pg/log/pitr-%s.log): %s", in.Member, in.Spec.Key, strings.Join(tail(st.log, 3), " | ")),
					ErrPITRTargetNotReached, nil, proof)
			}
		}
		if st.running {
			notRunningSince = time.Time{}
		}
		if st.replayLSN != lastLSN {
			lastLSN, lastMove = st.replayLSN, time.Now()
		} else if time.Since(lastMove) > stall {
			return proof, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"replay on %s made no progress for %s at %s without reaching %s", in.Member, stall, orDash(st.replayLSN), in.Target), ErrPITRTargetNotReached, nil, proof)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, fmt.Sprintf("replayed to %s, %s", orDash(st.replayLSN), lastCommitText(st.lastCommit)))
		}
		select {
		case <-ctx.Done():
			return proof, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func lastCommitText(t time.Time) string {
	if t.IsZero() {
		return "no transaction replayed yet"
	}
	return "last replayed commit at " + pitr.FormatTime(t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
