package haagent

import (
	"fmt"
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

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
