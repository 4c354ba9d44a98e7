package haagent

import (
	"fmt"
	"time"
)

// LeaseIsMine: the leader key, as this view shows it, still carries what
// member me's lease wrote. The view may lag behind my own last renewal,
// hence <=; the executor updates its lease when it sees its own renewal
// applied after an unanswered request.
func (v ClusterView) LeaseIsMine(me string, lease *Lease) bool {
	lr := v.Leader
	return lease != nil && lr != nil && lr.Holder == me && lr.ModRevision <= lease.Revision
}

// LeaderStale: the leader key is absent, or has not changed for longer
// than L(1+ε)+m_p on MY clock since I last saw it change; only then may
// I race for the lock.
func (v ClusterView) LeaderStale(now time.Duration) bool {
	return v.Leader == nil || now >= v.Leader.StaleAt(v.Config)
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
