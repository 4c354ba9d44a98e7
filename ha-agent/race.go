package haagent

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

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
	if m.ReportStale(d.cfg, d.now) {
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
