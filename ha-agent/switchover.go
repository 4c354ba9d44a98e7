package haagent

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

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
	case m.ReportStale(d.cfg, d.now):
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
