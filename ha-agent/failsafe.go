package haagent

import (
	"fmt"
	"strings"
	"time"
)

// AnswerFailsafe decides whether this member confirms leader `from` when
// it asks, over the REST API, to keep taking writes while it cannot reach
// etcd. A confirmation is a promise: the caller records
// FailsafePromise{Leader: from, Until: now + StaleAfter} and Decide will
// not race for the lock before Until. The leader times its extension from
// the SEND time of its request, so the same inequality as for the leader
// key holds (doc.go).
//
// The executor must serialize this with its own acquire: never confirm
// while an acquire request is in flight (local.Busy == BusyAcquiring),
// and never start one while a promise is active.
func AnswerFailsafe(view ClusterView, local LocalState, from string, now time.Duration) (ok bool, until time.Duration, reason string) {
	d := decider{v: view, l: local, now: now, cfg: view.Config}
	switch {
	case !d.cfg.FailsafeMode:
		return false, 0, "refusing failsafe confirmation: failsafe_mode is off"
	case from == local.Name:
		return false, 0, "refusing failsafe confirmation: the request comes from myself"
	case d.holdsLease():
		return false, 0, fmt.Sprintf("refusing failsafe confirmation to %s: I hold the leader lock", from)
	case local.Busy == BusyAcquiring:
		return false, 0, fmt.Sprintf("refusing failsafe confirmation to %s: my own leader lock request is in flight", from)
	case local.AcceptingWrites():
		return false, 0, fmt.Sprintf("refusing failsafe confirmation to %s: I am running as a primary", from)
	}
	if lr := view.Leader; lr != nil && lr.Holder != from && !view.LeaderStale(now) {
		return false, 0, fmt.Sprintf("refusing failsafe confirmation to %s: %s holds the leader lock", from, lr.Holder)
	}
	if last := view.lastLeader(); last == nil || last.Holder != from {
		who := "nobody"
		if last != nil {
			who = last.Holder
		}
		return false, 0, fmt.Sprintf("refusing failsafe confirmation to %s: the last leader I saw is %s", from, who)
	}
	until = now + d.cfg.StaleAfter()
	return true, until, fmt.Sprintf("confirming %s as leader in failsafe mode; I will not take the lock for %s", from, ms(d.cfg.StaleAfter()))
}

// FailsafeProof is what the failsafe confirmations a holder gathered
// over the REST API prove while it cannot reach etcd (doc.go, "etcd
// unreachable").
type FailsafeProof struct {
	// Confirmed are the other members of the failsafe key that confirmed me.
	Confirmed []string
	// Missing are the other members of the failsafe key that did not.
	Missing []string
	// Oldest is the SEND time of the oldest confirmed request: the
	// extension is timed from it, as a renewal is from its send time.
	Oldest time.Duration
}

// FailsafeProof collects, for holder me, the confirmations in acks
// (member → send time of the request it confirmed) against the failsafe
// key, in the key's order.
func (v ClusterView) FailsafeProof(me string, acks map[string]time.Duration) FailsafeProof {
	var p FailsafeProof
	for _, name := range v.FailsafeMembers {
		if name == me {
			continue
		}
		sent, ok := acks[name]
		if !ok {
			p.Missing = append(p.Missing, name)
			continue
		}
		if len(p.Confirmed) == 0 || sent < p.Oldest {
			p.Oldest = sent
		}
		p.Confirmed = append(p.Confirmed, name)
	}
	return p
}

// Deadline is the holder deadline the confirmations prove: the oldest
// confirmation's send time + L(1−ε) − m_f. ok is false when a member of
// the key did not confirm, and when the key lists no other member: then
// no confirmation bounds an extension, and the fence timer keeps the
// lease's own deadline.
func (p FailsafeProof) Deadline(cfg Config) (deadline time.Duration, ok bool) {
	if len(p.Missing) > 0 || len(p.Confirmed) == 0 {
		return 0, false
	}
	return cfg.HolderDeadline(p.Oldest), true
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
