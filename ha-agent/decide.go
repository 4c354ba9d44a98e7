package haagent

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Decide is the single place where HA decisions are made. It is pure: it
// reads the observed cluster, the local node and the current time on this
// agent's monotonic clock, and returns one action plus a sentence for the
// log saying why. The executor performs the action and calls Decide again
// on the next loop iteration (or at once, when a watch event or the fence
// timer fires); long-running actions run asynchronously and show up as
// local.Busy.
//
// Order matters and is the order of the checks below:
//  1. fence: a primary without a valid lease stops taking writes, before
//     anything else (even in pause: a resume it cannot see would let the
//     others race);
//  2. pause: change nothing (the holder keeps its lock);
//  3. a long-running action in progress;
//  4. empty data directory: initialize race or clone;
//  5. system identifier mismatch: refuse to join;
//  6. I hold the lease: renew, promote, restart, switch over, manage sync;
//  7. I run as a primary without the lock: demote, or fence;
//  8. the key names me but I hold no lease: take it back by CAS;
//  9. a live leader: follow it (rewind / re-clone when diverged);
//  10. no live leader: race, if I am the healthiest.
func Decide(view ClusterView, local LocalState, now time.Duration) (Action, string) {
	d := decider{v: view, l: local, now: now, cfg: view.Config}
	return d.decide()
}

// HoldsLeadership reports whether this node is the leader right now and
// may take writes: its PostgreSQL runs as a primary, the leader key still
// carries its lease, and either the lease has not expired or, with etcd
// unreachable in failsafe mode, every member of the failsafe key confirmed
// it (exactly when Decide's fence would not fire). The REST API's /primary
// check must answer from this, so a load balancer never routes writes to a
// node past its fence deadline.
func HoldsLeadership(view ClusterView, local LocalState, now time.Duration) bool {
	d := decider{v: view, l: local, now: now, cfg: view.Config}
	if !local.AcceptingWrites() || !view.LeaseIsMine(local.Name, local.Lease) {
		return false
	}
	if d.holdsLease() {
		return true
	}
	_, _, keep, _ := d.failsafe()
	return keep
}

type decider struct {
	v   ClusterView
	l   LocalState
	now time.Duration
	cfg Config
}

func (d *decider) decide() (Action, string) {
	if d.l.Name == "" {
		return Action{}, "no action: this agent has no member name"
	}
	if a, why, ok := d.fence(); ok {
		return a, why
	}
	if d.v.Paused {
		return d.paused()
	}
	if d.l.Busy != BusyNone {
		if d.holdsLease() {
			return Action{Kind: ActionRenewLeader}, fmt.Sprintf("renewing the leader lock while %s runs", d.l.Busy)
		}
		return Action{}, fmt.Sprintf("no action: waiting for %s to finish", d.l.Busy)
	}
	if d.l.DataDirEmpty {
		return d.emptyDataDir()
	}
	if in := d.v.Initialize; in != nil && in.Sysid != "" && d.l.Sysid != "" && d.l.Sysid != in.Sysid {
		return Action{Kind: ActionRefuseToJoin}, fmt.Sprintf(
			"refusing to join: my data directory has system identifier %s but the cluster's initialize key says %s",
			d.l.Sysid, in.Sysid)
	}
	if d.holdsLease() {
		return d.holder()
	}
	if d.l.AcceptingWrites() {
		return d.primaryWithoutLease()
	}
	if lr := d.v.Leader; lr != nil && lr.Holder == d.l.Name {
		if !d.l.DCSReachable {
			return Action{}, "no action: the leader key names me but etcd is unreachable"
		}
		return Action{Kind: ActionAcquireLeader, ExpectedRevision: lr.ModRevision, Term: lr.Term + 1}, fmt.Sprintf(
			"taking back the leader lock that still names me (revision %d): this agent holds no lease for it and no other member has taken it",
			lr.ModRevision)
	}
	if d.v.Leader != nil && !d.v.LeaderStale(d.now) {
		return d.follow()
	}
	return d.race()
}

// --- leadership timing ---------------------------------------------------

func (d *decider) deadline() time.Duration { return d.cfg.HolderDeadline(d.l.Lease.SentAt) }

// holdsLease: I am the leader right now by my own clock.
func (d *decider) holdsLease() bool {
	return d.v.LeaseIsMine(d.l.Name, d.l.Lease) && d.now < d.deadline()
}

// fence handles a lease that expired or was lost while PostgreSQL may
// take writes. Failsafe mode may extend an expired lease while etcd is
// unreachable.
func (d *decider) fence() (Action, string, bool) {
	if d.l.Lease == nil || !d.l.MayAcceptWrites() || d.holdsLease() {
		return Action{}, "", false
	}
	if !d.v.LeaseIsMine(d.l.Name, d.l.Lease) {
		lost := "deleted"
		if lr := d.v.Leader; lr != nil && lr.Holder != d.l.Name {
			lost = fmt.Sprintf("taken by %s (revision %d)", lr.Holder, lr.ModRevision)
		} else if lr != nil {
			lost = fmt.Sprintf("rewritten at revision %d after my lease at revision %d", lr.ModRevision, d.l.Lease.Revision)
		}
		return Action{Kind: ActionFenceWrites}, fmt.Sprintf(
			"fencing: my leader key was %s, so another member may take over at once", lost), true
	}
	a, why, keep, note := d.failsafe()
	if keep {
		return a, why, true
	}
	why = fmt.Sprintf("fencing: could not renew the leader lock before my deadline (last successful renew sent %s ago, deadline %s after it)",
		ms(d.now-d.l.Lease.SentAt), ms(d.cfg.holderWindow()))
	if d.v.Paused {
		why += "; fencing even though paused, because a resume I cannot see would let others take over"
	}
	return Action{Kind: ActionFenceWrites}, why + note, true
}

// failsafe: with etcd unreachable, an expired lease is extended only while
// every member of the failsafe key confirmed me over the REST API; the
// extension is timed from the SEND time of the oldest confirmation request.
func (d *decider) failsafe() (a Action, why string, keep bool, note string) {
	if !d.cfg.FailsafeMode || d.l.DCSReachable {
		return Action{}, "", false, ""
	}
	if d.v.FailsafeMembers == nil {
		return Action{}, "", false, "; failsafe mode cannot help: no failsafe key was written"
	}
	proof := d.v.FailsafeProof(d.l.Name, d.l.FailsafeAcks)
	if len(proof.Missing) > 0 {
		return Action{}, "", false, fmt.Sprintf("; failsafe needs every member to confirm me and %s did not", strings.Join(proof.Missing, ", "))
	}
	if len(proof.Confirmed) == 0 {
		return Action{Kind: ActionRenewLeader}, "failsafe: etcd unreachable, but no other member is in the failsafe key, so none can take over; keeping writes", true, ""
	}
	fsDeadline, _ := proof.Deadline(d.cfg)
	if d.now >= fsDeadline {
		return Action{}, "", false, fmt.Sprintf("; the failsafe confirmations expired %s ago", ms(d.now-fsDeadline))
	}
	return Action{Kind: ActionRenewLeader}, fmt.Sprintf(
		"failsafe: etcd unreachable, but every member (%s) confirmed me as leader over the REST API; keeping writes for %s more",
		strings.Join(proof.Confirmed, ", "), ms(fsDeadline-d.now)), true, ""
}

// --- pause, bootstrap ----------------------------------------------------

func (d *decider) paused() (Action, string) {
	if d.holdsLease() {
		if d.l.AcceptingWrites() {
			return Action{Kind: ActionRenewLeader}, "paused: renewing my leader lock and changing nothing else"
		}
		if d.l.DCSReachable {
			return Action{Kind: ActionReleaseLeader, ExpectedRevision: d.l.Lease.Revision},
				"paused: releasing the leader lock because PostgreSQL is not running as a primary; changing nothing else"
		}
	}
	return Action{}, "paused: maintenance mode, changing nothing"
}

func (d *decider) emptyDataDir() (Action, string) {
	if !d.l.DCSReachable {
		return Action{}, "no action: my data directory is empty and etcd is unreachable"
	}
	in, lr := d.v.Initialize, d.v.Leader
	if in == nil && lr == nil {
		if d.l.Tags.NoFailover {
			return Action{}, "no action: my data directory is empty and I am tagged nofailover, so I may not bootstrap; waiting for a leader to clone from"
		}
		return Action{Kind: ActionClaimInitialize},
			"initialize race: no initialize key and no leader; claiming the initialize key to bootstrap a new cluster"
	}
	if in != nil && in.Sysid == "" && in.ClaimedBy == d.l.Name && lr == nil {
		return Action{Kind: ActionBootstrap}, "bootstrapping a new cluster: I won the initialize race"
	}
	if lr != nil && !d.v.LeaderStale(d.now) && lr.Holder != d.l.Name {
		if m, ok := d.v.Members[lr.Holder]; ok && m.State == PGRunning {
			return Action{Kind: ActionCloneFromLeader, Leader: lr.Holder}, fmt.Sprintf(
				"cloning from leader %s: my data directory is empty", lr.Holder)
		}
		return Action{}, fmt.Sprintf("no action: my data directory is empty and leader %s is not running yet", lr.Holder)
	}
	if in != nil && in.Sysid == "" && in.ClaimedBy != d.l.Name {
		return Action{}, fmt.Sprintf("no action: my data directory is empty; %s is bootstrapping the cluster", in.ClaimedBy)
	}
	return Action{}, "no action: my data directory is empty and there is no live leader to clone from"
}

// --- I hold the lease ----------------------------------------------------

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

// failoverIsForMe: the request asks the current leader (me) to step down.
func (d *decider) failoverIsForMe() bool {
	f := d.v.Failover
	return (f.From == "" || f.From == d.l.Name) && f.To != d.l.Name && (f.From != "" || f.To != "")
}

// holderFailover: the leader acts on a manual failover/switchover request
// by demoting cleanly first; the release follows once PostgreSQL stopped.
func (d *decider) holderFailover() (Action, string, bool) {
	f := d.v.Failover
	clear := Action{Kind: ActionClearFailoverRequest, FailoverRev: f.ModRevision, KeepLock: true}
	switch {
	case f.From == "" && f.To == "":
		return clear, "clearing the failover request: it names neither a leader nor a candidate", true
	case f.To == d.l.Name:
		return clear, fmt.Sprintf("clearing the failover request: I (%s) am the requested candidate and already the leader", d.l.Name), true
	case f.From != "" && f.From != d.l.Name:
		return clear, fmt.Sprintf("clearing the failover request: it asks to move leadership away from %s, but I (%s) am the leader", f.From, d.l.Name), true
	}
	if !f.ScheduledAt.IsZero() && d.l.WallClock.Before(f.ScheduledAt) {
		return Action{Kind: ActionRenewLeader}, fmt.Sprintf(
			"no action: switchover scheduled at %s; keeping the leader lock until then", f.ScheduledAt.UTC().Format(time.RFC3339)), true
	}
	demote := Action{Kind: ActionDemote, Clean: true, KeepLock: true, Leader: f.To}
	if f.To != "" {
		if why := d.successorProblem(f.To, true); why != "" {
			return clear, fmt.Sprintf("rejecting the switchover to %s: %s", f.To, why), true
		}
		return demote, fmt.Sprintf("switchover: demoting cleanly (fast shutdown) so %s can take over", f.To), true
	}
	succ, whyNot := d.successors(true)
	if len(succ) == 0 {
		return clear, fmt.Sprintf("rejecting the switchover: no member can take over (%s)", whyNot), true
	}
	return demote, fmt.Sprintf("switchover: demoting cleanly (fast shutdown) so the healthiest of %s can take over", strings.Join(succ, ", ")), true
}

// successorProblem says why a member could not take over from me ("" = it can).
// streaming: require it streaming from my PostgreSQL (known only while mine runs).
func (d *decider) successorProblem(name string, streaming bool) string {
	m, ok := d.v.Members[name]
	switch {
	case !ok:
		return "it is not a registered member"
	case m.Tags.NoFailover:
		return "it is tagged nofailover"
	case d.now-m.ObservedAt > d.cfg.MemberReportFresh():
		return fmt.Sprintf("its report is %s old", ms(d.now-m.ObservedAt))
	case m.State != PGRunning:
		return fmt.Sprintf("its PostgreSQL is %s", orUnknown(string(m.State)))
	case m.Role != RoleReplica:
		return "it is not a replica"
	}
	if d.cfg.SynchronousMode {
		if s := d.v.Sync; s == nil || s.Leader != d.l.Name || !slices.Contains(s.Standbys, name) {
			return "it is not a synchronous standby"
		}
	} else if lag := LagBytes(d.l.FlushLSN, m.WALPosition()); lag > d.cfg.MaximumLagOnFailover {
		return fmt.Sprintf("it lags %d bytes (maximum_lag_on_failover is %d)", lag, d.cfg.MaximumLagOnFailover)
	}
	if streaming && m.ReplicationState != ReplicationStreaming {
		return "it is not streaming from me"
	}
	if !streaming && m.Upstream != d.l.Name {
		return "it does not follow me"
	}
	return ""
}

// successors lists the members that could take over from me, and a summary of why the others cannot.
func (d *decider) successors(streaming bool) ([]string, string) {
	var ok, why []string
	for _, name := range d.v.OtherMemberNames(d.l.Name) {
		if p := d.successorProblem(name, streaming); p != "" {
			why = append(why, name+": "+p)
		} else {
			ok = append(ok, name)
		}
	}
	if len(why) == 0 && len(ok) == 0 {
		why = append(why, "no other member")
	}
	return ok, strings.Join(why, "; ")
}

// syncStandbys keeps the sync key and synchronous_standby_names in line
// with the streaming replicas PostgreSQL reports. The executor must keep
// the invariant "every standby in the sync key holds every acknowledged
// commit": when adding, change synchronous_standby_names first and write
// the key only after PostgreSQL reports the standby sync and caught up;
// when removing, write the key first.
func (d *decider) syncStandbys() (Action, string, bool) {
	s := d.v.Sync
	mine := s != nil && s.Leader == d.l.Name
	var current []string
	if mine {
		current = slices.Sorted(slices.Values(s.Standbys))
	}
	if !d.cfg.SynchronousMode {
		if s != nil && len(s.Standbys) > 0 {
			return Action{Kind: ActionSetSyncStandbys, KeepLock: true}, fmt.Sprintf(
				"synchronous_mode is off: clearing the synchronous standbys (%s)", strings.Join(s.Standbys, ", ")), true
		}
		return Action{}, "", false
	}
	want := d.desiredSyncStandbys(current)
	if mine && slices.Equal(want, current) {
		return Action{}, "", false
	}
	was := "none"
	if len(current) > 0 {
		was = strings.Join(current, ", ")
	}
	a := Action{Kind: ActionSetSyncStandbys, Members: want, KeepLock: true}
	switch {
	case len(want) > 0:
		return a, fmt.Sprintf("setting synchronous standbys to %s (was: %s)", strings.Join(want, ", "), was), true
	case d.cfg.SynchronousModeStrict:
		return a, fmt.Sprintf("synchronous_mode_strict: no streaming standby can be synchronous; commits wait until one connects (was: %s)", was), true
	default:
		return a, fmt.Sprintf("no streaming standby can be synchronous; running asynchronously, with no automatic failover until one is (was: %s)", was), true
	}
}

// desiredSyncStandbys prefers the current synchronous standbys (no
// flapping), then those PostgreSQL already reports sync, then the most
// advanced, then by name.
func (d *decider) desiredSyncStandbys(current []string) []string {
	var cands []Member
	for _, name := range d.v.OtherMemberNames(d.l.Name) {
		m := d.v.Members[name]
		if m.State == PGRunning && m.Role == RoleReplica && !m.Tags.NoSync && m.ReplicationState == ReplicationStreaming {
			cands = append(cands, m)
		}
	}
	rank := func(m Member) int {
		switch {
		case slices.Contains(current, m.Name):
			return 0
		case m.SyncState.Synchronous():
			return 1
		}
		return 2
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if ri, rj := rank(cands[i]), rank(cands[j]); ri != rj {
			return ri < rj
		}
		if pi, pj := cands[i].WALPosition(), cands[j].WALPosition(); pi != pj {
			return pi > pj
		}
		return cands[i].Name < cands[j].Name
	})
	var want []string
	for i := 0; i < len(cands) && i < d.cfg.SynchronousNodeCount; i++ {
		want = append(want, cands[i].Name)
	}
	slices.Sort(want)
	return want
}

// --- no lease ------------------------------------------------------------

// primaryWithoutLease: my PostgreSQL takes writes but I hold no lease.
func (d *decider) primaryWithoutLease() (Action, string) {
	if lr := d.v.Leader; lr != nil {
		if lr.Holder == d.l.Name {
			return Action{Kind: ActionFenceWrites},
				"fencing: the leader key names me but this agent holds no lease for it (restarted?), so I cannot prove no other member was promoted"
		}
		return Action{Kind: ActionDemote, Leader: lr.Holder}, fmt.Sprintf(
			"demoting: %s holds the leader lock and I am running as a primary without it", lr.Holder)
	}
	if in := d.v.Initialize; in != nil && in.ClaimedBy == d.l.Name && (in.Sysid == "" || in.Sysid == d.l.Sysid) && !d.v.everLed() {
		if !d.l.DCSReachable {
			return Action{}, "no action: I just bootstrapped the cluster but etcd is unreachable"
		}
		return Action{Kind: ActionAcquireLeader, Term: 1}, "taking the leader lock: I just bootstrapped the cluster"
	}
	return Action{Kind: ActionFenceWrites}, "fencing: I am running as a primary without the leader lock"
}

// follow: a live leader exists and it is not me.
func (d *decider) follow() (Action, string) {
	leader := d.v.Leader.Holder
	if d.l.Diverged {
		switch {
		case !d.cfg.UsePgRewind:
			return Action{Kind: ActionReclone, Leader: leader}, fmt.Sprintf(
				"re-cloning from leader %s: my WAL diverged from its timeline and use_pg_rewind is off", leader)
		case d.l.RewindFailed:
			return Action{Kind: ActionReclone, Leader: leader}, fmt.Sprintf(
				"re-cloning from leader %s: pg_rewind failed (%s)", leader, orUnknown(d.l.RewindError))
		}
		return Action{Kind: ActionRewind, Leader: leader}, fmt.Sprintf(
			"rewinding from leader %s: my WAL diverged from its timeline (mine %d, leader's %d)", leader, d.l.Timeline, d.v.Leader.Timeline)
	}
	switch d.l.Postgres {
	case PGCrashed:
		return Action{Kind: ActionRestartPostgres, Leader: leader}, fmt.Sprintf(
			"restarting crashed PostgreSQL as a replica of leader %s", leader)
	case PGStopped, PGUnknown:
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("starting PostgreSQL as a replica of leader %s", leader)
	case PGStarting:
		if d.l.InRecovery && d.l.Upstream != leader {
			// A standby may need WAL from the leader to become consistent at
			// all (it was rewound against a member that lost the lock since):
			// waiting for it to finish starting could wait forever.
			from := "no upstream"
			if d.l.Upstream != "" {
				from = d.l.Upstream
			}
			return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf(
				"switching upstream from %s to leader %s while PostgreSQL is still starting: it may need the leader's WAL to become consistent", from, leader)
		}
		return Action{}, fmt.Sprintf("no action: waiting for PostgreSQL to finish starting (leader %s)", leader)
	}
	if d.l.Upstream != leader {
		if d.l.Upstream == "" {
			return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("following leader %s: I had no upstream", leader)
		}
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("switching upstream from %s to leader %s", d.l.Upstream, leader)
	}
	if d.l.WALReceiverStopped {
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf(
			"resuming WAL streaming from leader %s: my WAL receiver was stopped for a promotion that did not happen", leader)
	}
	if f := d.v.Failover; f != nil && f.To == d.l.Name {
		return Action{}, fmt.Sprintf("no action: a switchover to me was requested; waiting for leader %s to demote and release the lock", leader)
	}
	return Action{}, fmt.Sprintf("no action: I am %s, a replica following leader %s", d.l.Name, leader)
}

// --- the leader race -----------------------------------------------------

// candidate is a member judged for promotion, from my own state or from a
// fresh report/probe of another member.
type candidate struct {
	name       string
	noFailover bool
	timeline   uint32
	wal        LSN
}

func (d *decider) race() (Action, string) {
	lr, last := d.v.Leader, d.v.lastLeader()
	var situation string
	switch {
	case lr != nil:
		situation = fmt.Sprintf("leader %s is stale for %s (> %s)", lr.Holder, ms(d.now-lr.ObservedAt), ms(d.cfg.StaleAfter()))
	case last != nil:
		situation = fmt.Sprintf("the leader lock is free (last held by %s)", last.Holder)
	default:
		situation = "there is no leader"
	}
	if !d.l.DCSReachable {
		return Action{}, fmt.Sprintf("not promoting: etcd is unreachable, so I cannot take the leader lock (%s)", situation)
	}
	if in := d.v.Initialize; in != nil && in.ClaimedBy != "" && !d.v.everLed() {
		return d.firstLeader(in)
	}
	switch d.l.Postgres {
	case PGCrashed, PGStopped, PGUnknown:
		return Action{Kind: ActionRestartPostgres}, fmt.Sprintf(
			"starting PostgreSQL as a standby without upstream so I can take part in the leader race: %s", situation)
	case PGStarting:
		return Action{}, fmt.Sprintf("not promoting: my PostgreSQL is still starting (%s)", situation)
	}
	if d.l.Tags.NoFailover {
		return Action{}, fmt.Sprintf("not promoting: I am tagged nofailover (%s)", situation)
	}
	if p := d.l.FailsafePromise; p.ForbidsAcquire(d.l.Name, d.now) {
		return Action{}, fmt.Sprintf("not promoting: I confirmed %s as leader in failsafe mode for %s more (%s)", p.Leader, ms(p.Until-d.now), situation)
	}
	if d.cfg.FailsafeMode && d.v.FailsafeMembers != nil && !slices.Contains(d.v.FailsafeMembers, d.l.Name) {
		return Action{}, fmt.Sprintf("not promoting: failsafe_mode is on and I am not in the failsafe key (%s)", situation)
	}
	me := candidate{name: d.l.Name, timeline: d.l.Timeline, wal: d.l.WALPosition()}
	acquire := Action{Kind: ActionAcquireLeader, Term: 1}
	if lr != nil {
		acquire.ExpectedRevision = lr.ModRevision
	}
	if last != nil {
		acquire.Term = last.Term + 1
	}
	var note string
	if f := d.v.Failover; f != nil && f.To != "" {
		if !f.ScheduledAt.IsZero() && d.l.WallClock.Before(f.ScheduledAt) {
			note = fmt.Sprintf("; ignoring the switchover to %s scheduled for later: the leader is gone", f.To)
		} else if f.To == d.l.Name {
			if why := d.ineligible(me, false); why != "" {
				return Action{}, fmt.Sprintf("not promoting although I am the requested failover candidate: %s (%s)", why, situation)
			}
			return acquire, fmt.Sprintf("promoting: %s and I am the requested failover candidate (WAL %s)", situation, me.wal)
		} else if why := d.otherCandidateProblem(f.To); why == "" {
			return Action{}, fmt.Sprintf("not promoting: a failover to %s was requested and %s can take over (%s)", f.To, f.To, situation)
		} else {
			note = fmt.Sprintf("; the requested candidate %s cannot take over (%s)", f.To, why)
		}
	}
	if why := d.ineligible(me, true); why != "" {
		return Action{}, fmt.Sprintf("not promoting: %s (%s)", why, situation)
	}
	for _, name := range slices.Sorted(maps.Keys(d.v.Probes)) {
		p := d.v.Probes[name]
		if name == d.l.Name || !p.Reachable {
			continue
		}
		if p.AcceptingWrites {
			return Action{}, fmt.Sprintf("not promoting: %s is still accepting writes (it answered the REST probe as a primary)", name)
		}
		if p.FailsafeLeader != "" && p.FailsafeLeader != d.l.Name {
			return Action{}, fmt.Sprintf("not promoting: %s confirmed %s as leader in failsafe mode, so %s may still take writes", name, p.FailsafeLeader, p.FailsafeLeader)
		}
	}
	better, betterWAL, ignored := d.higherWAL(me)
	if better != "" {
		return Action{}, fmt.Sprintf("not promoting: member %s has a higher WAL position %s > %s", better, betterWAL, me.wal)
	}
	what := "member"
	if d.cfg.SynchronousMode {
		what = "synchronous standby"
	}
	return acquire, fmt.Sprintf("promoting: %s and I am the healthiest %s (WAL %s)%s%s", situation, what, me.wal, note, ignored)
}

// firstLeader: the cluster was never led (bootstrap adoption). The
// cluster-creation workflow initdb'd the primary named in the initialize
// key and cloned the replicas from it; only that member may take the
// first lock, and it takes it before starting PostgreSQL as a primary, so
// no PostgreSQL of this cluster ever takes writes without the lock. A
// replica must not race here: it would become leader of a cluster whose
// primary never ran under HA.
func (d *decider) firstLeader(in *InitializeRecord) (Action, string) {
	if in.ClaimedBy != d.l.Name {
		return Action{}, fmt.Sprintf("no action: the cluster was never led; waiting for %s, named in the initialize key, to take the first leader lock", in.ClaimedBy)
	}
	if in.Sysid != "" && d.l.Sysid == "" {
		return Action{}, "no action: the initialize key names me to lead the new cluster, but my data directory's system identifier is not known yet"
	}
	return Action{Kind: ActionAcquireLeader, Term: 1},
		"taking the first leader lock: the cluster was never led and the initialize key names me with my data directory's system identifier"
}

// ineligible says why c may not be promoted ("" = it may). checkLag:
// apply maximum_lag_on_failover (asynchronous mode only).
func (d *decider) ineligible(c candidate, checkLag bool) string {
	self := c.name == d.l.Name
	subject := func(mine, theirs string) string {
		if self {
			return mine
		}
		return theirs
	}
	if c.noFailover {
		return subject("I am tagged nofailover", "it is tagged nofailover")
	}
	if d.cfg.SynchronousMode && !d.v.Sync.Has(c.name) {
		return subject("synchronous mode and I am not a synchronous standby", "synchronous mode and it is not a synchronous standby") +
			" (" + d.describeSync() + ")"
	}
	last := d.v.lastLeader()
	if last != nil && c.timeline < last.Timeline {
		return fmt.Sprintf("%s timeline %d is behind the cluster timeline %d", subject("my", "its"), c.timeline, last.Timeline)
	}
	// A synchronous standby holds every acknowledged commit: the last
	// recorded leader position may include WAL nobody acknowledged, and
	// when the leader is gone it is frozen (patroni#3703), so it must not
	// disqualify a synchronous standby.
	if checkLag && !d.cfg.SynchronousMode && last != nil {
		if lag := LagBytes(last.Optime, c.wal); lag > d.cfg.MaximumLagOnFailover {
			return fmt.Sprintf("%s WAL position %s is %d bytes behind the last leader position %s (maximum_lag_on_failover is %d)",
				subject("my", "its"), c.wal, lag, last.Optime, d.cfg.MaximumLagOnFailover)
		}
	}
	return ""
}

func (d *decider) describeSync() string {
	s := d.v.Sync
	if s == nil {
		return "no synchronous standby is recorded"
	}
	if len(s.Standbys) == 0 {
		return fmt.Sprintf("%s had no synchronous standby", s.Leader)
	}
	return fmt.Sprintf("synchronous standbys of %s: %s", s.Leader, strings.Join(s.Standbys, ", "))
}

// liveCandidate turns a member into a candidate from the freshest
// information: a live probe, else a report that changed recently. ok is
// false when neither exists (a stale, possibly frozen report); running is
// false when it is not a running replica.
func (d *decider) liveCandidate(name string) (c candidate, ok, running bool, age time.Duration) {
	m, registered := d.v.Members[name]
	c = candidate{name: name, noFailover: m.Tags.NoFailover, timeline: m.Timeline, wal: m.WALPosition()}
	if p, probed := d.v.Probes[name]; probed && p.Reachable {
		c.timeline, c.wal = p.Timeline, p.WALPosition
		return c, true, p.InRecovery && !p.AcceptingWrites, 0
	}
	if !registered {
		return c, false, false, 0
	}
	age = d.now - m.ObservedAt
	if age > d.cfg.MemberReportFresh() {
		return c, false, false, age
	}
	return c, true, m.State == PGRunning && m.Role == RoleReplica, age
}

// otherCandidateProblem: why a requested failover candidate cannot take over.
func (d *decider) otherCandidateProblem(name string) string {
	c, ok, running, age := d.liveCandidate(name)
	switch {
	case !ok && age > 0:
		return fmt.Sprintf("its report is %s old and it did not answer the probe", ms(age))
	case !ok:
		return "it is not a registered member"
	case !running:
		return "it is not a running replica"
	}
	return d.ineligible(c, false)
}

// higherWAL finds a member that is ahead of me AND would itself pass every
// check, judged only from live probes or fresh reports: a member whose
// report is stale (frozen) or which could not be promoted anyway must not
// keep everybody from promoting.
func (d *decider) higherWAL(me candidate) (name string, wal LSN, ignored string) {
	var notes []string
	for _, other := range d.v.OtherMemberNames(d.l.Name) {
		c, ok, running, age := d.liveCandidate(other)
		if !ok {
			if c.wal > me.wal {
				notes = append(notes, fmt.Sprintf("ignoring %s's WAL position %s: its report is %s old and it did not answer the probe", other, c.wal, ms(age)))
			}
			continue
		}
		if !running || c.wal <= me.wal || d.ineligible(c, true) != "" {
			continue
		}
		if d.cfg.SynchronousMode && d.v.Sync != nil && other == d.v.Sync.Leader {
			notes = append(notes, fmt.Sprintf("ignoring former leader %s being ahead (%s): in synchronous mode its extra WAL was never acknowledged", other, c.wal))
			continue
		}
		return other, c.wal, ""
	}
	if len(notes) == 0 {
		return "", 0, ""
	}
	return "", 0, "; " + strings.Join(notes, "; ")
}

// --- helpers -------------------------------------------------------------

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
