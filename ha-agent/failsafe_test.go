package haagent

import (
	"testing"
	"time"
)

// failsafeCases: the holder keeps writes while etcd is unreachable only
// with every member's confirmation.
func failsafeCases() []decideCase {
	return []decideCase{
		{n: 27, name: "failsafe: every member confirmed me, keep writes past the lease",
			view:       view(failsafeKey),
			local:      primary(etcdLost(map[string]time.Duration{"n2": now - 100*msec, "n3": now - 150*msec})),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "failsafe: etcd unreachable, but every member (n2, n3) confirmed me as leader over the REST API; keeping writes for 299.5 ms more"},
		{n: 28, name: "failsafe: one member did not confirm, fence",
			view:  view(failsafeKey),
			local: primary(etcdLost(map[string]time.Duration{"n2": now - 100*msec})),
			want:  Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 2000 ms ago, deadline 449.5 ms after it); " +
				"failsafe needs every member to confirm me and n3 did not"},
		{n: 29, name: "failsafe: confirmations too old, fence",
			view:  view(failsafeKey),
			local: primary(etcdLost(map[string]time.Duration{"n2": now - 100*msec, "n3": now - 500*msec})),
			want:  Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 2000 ms ago, deadline 449.5 ms after it); " +
				"the failsafe confirmations expired 50.5 ms ago"},
		{n: 30, name: "failsafe mode on: holder writes the failsafe key",
			view:       view(func(v *ClusterView) { v.Config.FailsafeMode = true }),
			local:      primary(),
			want:       Action{Kind: ActionSetFailsafeMembers, Members: []string{"n1", "n2", "n3"}, KeepLock: true},
			wantReason: "writing the failsafe key: members n1, n2, n3"},
	}
}

func TestAnswerFailsafe(t *testing.T) {
	cases := []struct {
		n          int
		name       string
		view       ClusterView
		local      LocalState
		from       string
		wantOK     bool
		wantUntil  time.Duration
		wantReason string
	}{
		{1, "confirms the leader it knows", view(failsafeKey, stale), replica("n2"), "n1", true, now + 520500*time.Microsecond,
			"confirming n1 as leader in failsafe mode; I will not take the lock for 520.5 ms"},
		{2, "failsafe mode off", view(stale), replica("n2"), "n1", false, 0,
			"refusing failsafe confirmation: failsafe_mode is off"},
		{3, "a live leader is someone else", view(failsafeKey, func(v *ClusterView) { v.Leader.Holder = "n3" }), replica("n2"), "n1", false, 0,
			"refusing failsafe confirmation to n1: n3 holds the leader lock"},
		{4, "my own acquire in flight", view(failsafeKey, stale), replica("n2", func(l *LocalState) { l.Busy = BusyAcquiring }), "n1", false, 0,
			"refusing failsafe confirmation to n1: my own leader lock request is in flight"},
		{5, "I hold the lock", view(failsafeKey, func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			replica("n2", func(l *LocalState) { l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec} }), "n1", false, 0,
			"refusing failsafe confirmation to n1: I hold the leader lock"},
		{6, "caller was not the last leader", view(failsafeKey, stale), replica("n2"), "n3", false, 0,
			"refusing failsafe confirmation to n3: the last leader I saw is n1"},
	}
	for _, tc := range cases {
		ok, until, reason := AnswerFailsafe(tc.view, tc.local, tc.from, now)
		if ok != tc.wantOK || until != tc.wantUntil || reason != tc.wantReason {
			t.Errorf("case %d %s: got (%v, %v, %q), want (%v, %v, %q)", tc.n, tc.name, ok, until, reason, tc.wantOK, tc.wantUntil, tc.wantReason)
		}
	}
}

// failsafeKey: failsafe mode with every member in the failsafe key.
func failsafeKey(v *ClusterView) {
	v.Config.FailsafeMode = true
	v.FailsafeMembers = []string{"n1", "n2", "n3"}
}

// etcdLost: the holder last renewed 2 s ago, etcd is unreachable, and the
// members in acks confirmed it, each at the send time given.
func etcdLost(acks map[string]time.Duration) func(*LocalState) {
	return func(l *LocalState) {
		l.DCSReachable = false
		l.Lease.SentAt = now - 2*time.Second
		l.FailsafeAcks = acks
	}
}

// failsafeAcks: etcdLost, with the named members' confirmations sent 100 ms ago.
func failsafeAcks(names ...string) func(*LocalState) {
	acks := map[string]time.Duration{}
	for _, n := range names {
		acks[n] = now - 100*msec
	}
	return etcdLost(acks)
}

func TestFailsafeProof(t *testing.T) {
	cfg := DefaultConfig()
	v := view(failsafeKey)
	cases := []struct {
		n            int
		name         string
		key          []string
		acks         map[string]time.Duration
		wantDeadline time.Duration
		wantOK       bool
	}{
		{1, "every other member confirmed: timed from the oldest send", v.FailsafeMembers,
			map[string]time.Duration{"n2": now - 100*msec, "n3": now - 150*msec}, cfg.HolderDeadline(now - 150*msec), true},
		{2, "one missing", v.FailsafeMembers, map[string]time.Duration{"n2": now}, 0, false},
		{3, "no failsafe key", nil, map[string]time.Duration{"n2": now}, 0, false},
		{4, "the key lists only me: nothing bounds an extension", []string{"n1"}, nil, 0, false},
	}
	for _, tc := range cases {
		v.FailsafeMembers = tc.key
		dl, ok := v.FailsafeProof("n1", tc.acks).Deadline(cfg)
		if dl != tc.wantDeadline || ok != tc.wantOK {
			t.Errorf("case %d %s: got (%v, %v), want (%v, %v)", tc.n, tc.name, dl, ok, tc.wantDeadline, tc.wantOK)
		}
	}
}
