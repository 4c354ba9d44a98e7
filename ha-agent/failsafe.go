package haagent

import (
	"fmt"
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
