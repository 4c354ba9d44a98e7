package haagent

import (
	"fmt"
	"slices"
	"strings"
)

func (d *decider) holder() (Action, string) {
	if !d.l.DCSReachable {
		return Action{Kind: ActionRenewLeader}, fmt.Sprintf(
			"etcd unreachable: retrying the renewal; I fence my writes in %s unless it succeeds", ms(d.deadline()-d.now))
	}
	switch {
	case d.l.Postgres == PGCrashed || d.l.Postgres == PGStopped || d.l.Postgres == PGUnknown:
		return d.holderPostgresDown()
	case d.l.Postgres == PGStarting:
		return d.holderPostgresStarting()
	case d.l.InRecovery:
		return d.holderPromote()
	}
	if in := d.v.Initialize; (in == nil || in.Sysid == "") && d.l.Sysid != "" {
		return Action{Kind: ActionWriteInitialize, Sysid: d.l.Sysid, KeepLock: true}, fmt.Sprintf(
			"writing the initialize key: cluster system identifier %s", d.l.Sysid)
	}
	if d.v.Failover != nil {
		if a, why, ok := d.holderFailover(); ok {
			return a, why
		}
	}
	if d.cfg.FailsafeMode {
		want := d.v.MemberNames(d.l.Name)
		if !slices.Equal(want, d.v.FailsafeMembers) {
			return Action{Kind: ActionSetFailsafeMembers, Members: want, KeepLock: true}, fmt.Sprintf(
				"writing the failsafe key: members %s", strings.Join(want, ", "))
		}
	}
	if a, why, ok := d.syncStandbys(); ok {
		return a, why
	}
	return Action{Kind: ActionRenewLeader}, fmt.Sprintf("no action: I am %s, the leader with the lock", d.l.Name)
}

// holderPromote: two-phase promotion after acquiring the lock.
func (d *decider) holderPromote() (Action, string) {
	if !d.l.WALReceiverStopped {
		return Action{Kind: ActionStopWALReceiver, KeepLock: true},
			"promoting, phase 1: stopping my WAL receiver so the old primary can get no more acknowledgements from me"
	}
	// Phase two does not wait for replay here: on a promote request the
	// startup process first replays every WAL record already in pg_wal
	// (all that the stopped receiver flushed), and only then ends recovery.
	// Waiting for replayed >= received instead can hang forever: the
	// received LSN may end inside a record the dead primary never finished
	// sending, which no replay can reach.
	if !d.l.ReplayCaughtUp() {
		return Action{Kind: ActionPromote, KeepLock: true}, fmt.Sprintf(
			"promoting, phase 2: WAL receiver stopped; promoting PostgreSQL, which replays everything it received (replayed %s, received %s) before it ends recovery",
			d.l.ReplayedLSN, d.l.ReceivedLSN)
	}
	return Action{Kind: ActionPromote, KeepLock: true}, fmt.Sprintf(
		"promoting, phase 2: replay caught up at %s; promoting PostgreSQL", d.l.ReplayedLSN)
}

// holderPostgresDown: the leader's PostgreSQL is stopped or crashed.
// Restart in place when that is quickest (or nobody can take over),
// otherwise release at once: deleting the key lets a replica take over
// without waiting for staleness, and is safe because nothing here can
// acknowledge a write.
func (d *decider) holderPostgresDown() (Action, string) {
	release := Action{Kind: ActionReleaseLeader, ExpectedRevision: d.l.Lease.Revision}
	if d.l.Postgres == PGStopped && d.v.Failover != nil && d.failoverIsForMe() {
		if to := d.v.Failover.To; to != "" {
			if why := d.successorProblem(to, false); why == "" {
				return release, fmt.Sprintf("switchover: PostgreSQL stopped cleanly; releasing the leader lock to %s", to)
			}
		} else if succ, _ := d.successors(false); len(succ) > 0 {
			return release, fmt.Sprintf("switchover: PostgreSQL stopped cleanly; releasing the leader lock to the healthiest of %s", strings.Join(succ, ", "))
		}
	}
	if d.l.InRecovery {
		// standby.signal is still there: I took the lock but my promotion
		// never completed. Started as a primary, PostgreSQL would run crash
		// recovery on the control file's (old) timeline only and ignore the
		// WAL received on the newer one, losing acknowledged commits.
		// Started as a standby it replays all of it; then phase 2 promotes.
		return Action{Kind: ActionRestartPostgres, KeepLock: true}, fmt.Sprintf(
			"resuming my promotion: PostgreSQL is %s and my promotion never completed (standby.signal is still there), so it restarts as a standby without upstream that replays every WAL record it received; as a primary it would recover only its old timeline and drop acknowledged commits",
			orUnknown(string(d.l.Postgres)))
	}
	restart := Action{Kind: ActionRestartPostgres, AsPrimary: true, KeepLock: true}
	if d.l.PostgresDownAtAgentStart && d.l.CrashRestarts == 0 {
		// The agent died (and PostgreSQL with it) and the supervisor
		// restarted it: a failover would trade a short crash recovery for
		// a timeline switch and a rewind. The in-place restart stays
		// bounded by agent_restart_budget_ms (holderPostgresStarting).
		return restart, "restarting PostgreSQL in place as the primary: it was already down when this agent started (it dies with its agent, which was restarted), so crash recovery here is quicker than a failover"
	}
	what := "crashed"
	if d.l.Postgres == PGStopped {
		what = "is stopped"
	}
	succ, whyNot := d.successors(false)
	if len(succ) == 0 {
		if d.l.CrashRestarts > 0 {
			return restart, fmt.Sprintf("restarting PostgreSQL in place as the primary again (attempt %d): it %s and no replica can take over (%s)",
				d.l.CrashRestarts+1, what, whyNot)
		}
		return restart, fmt.Sprintf("restarting PostgreSQL in place as the primary: it %s and no replica can take over (%s)", what, whyNot)
	}
	budget := d.cfg.CrashRestartBudget()
	if d.l.CrashRestarts == 0 {
		if d.l.Postgres == PGStopped {
			return restart, "restarting PostgreSQL in place as the primary: it is stopped cleanly, so it starts without crash recovery"
		}
		if est := d.l.CrashRecoveryEstimate; est > 0 && est <= budget {
			return restart, fmt.Sprintf("restarting PostgreSQL in place as the primary: it crashed and expected crash recovery %s is within crash_restart_budget_ms %s",
				ms(est), ms(budget))
		}
		if est := d.l.CrashRecoveryEstimate; est > 0 {
			return release, fmt.Sprintf("releasing the leader lock at once: PostgreSQL crashed and expected crash recovery %s exceeds crash_restart_budget_ms %s, so %s can take over sooner",
				ms(est), ms(budget), strings.Join(succ, ", "))
		}
		return release, fmt.Sprintf("releasing the leader lock at once: PostgreSQL crashed and its crash recovery time is unknown, so %s can take over",
			strings.Join(succ, ", "))
	}
	return release, fmt.Sprintf("releasing the leader lock at once: PostgreSQL %s again after an in-place restart, so %s can take over",
		what, strings.Join(succ, ", "))
}

func (d *decider) holderPostgresStarting() (Action, string) {
	elapsed, budget, field := d.now-d.l.CrashedAt, d.cfg.CrashRestartBudget(), "crash_restart_budget_ms"
	if d.l.PostgresDownAtAgentStart {
		budget, field = d.cfg.AgentRestartBudget(), "agent_restart_budget_ms"
	}
	succ, _ := d.successors(false)
	if d.l.InRecovery {
		// Resuming an unfinished promotion: a starting standby takes no
		// writes, so there is nothing to fence; past the budget, step aside.
		if elapsed <= budget || len(succ) == 0 {
			return Action{Kind: ActionRenewLeader}, fmt.Sprintf(
				"resuming my promotion: PostgreSQL is starting as a standby (%s since the outage began, %s %s); keeping the leader lock",
				ms(elapsed), field, ms(budget))
		}
		return Action{Kind: ActionReleaseLeader, ExpectedRevision: d.l.Lease.Revision}, fmt.Sprintf(
			"releasing the leader lock: resuming my promotion has taken %s (> %s %s) and %s can take over",
			ms(elapsed), field, ms(budget), strings.Join(succ, ", "))
	}
	if elapsed <= budget || len(succ) == 0 {
		return Action{Kind: ActionRenewLeader}, fmt.Sprintf(
			"PostgreSQL is starting (%s since the outage began, %s %s); keeping the leader lock", ms(elapsed), field, ms(budget))
	}
	return Action{Kind: ActionFenceWrites, KeepLock: true}, fmt.Sprintf(
		"stopping the in-place restart: it has taken %s (> %s %s) and %s can take over",
		ms(elapsed), field, ms(budget), strings.Join(succ, ", "))
}
