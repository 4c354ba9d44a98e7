package haagent

import (
	"testing"
	"time"
)

// leadershipCases: the holder renews, fences at its deadline or when its
// key is lost, and a primary without the lock demotes or fences.
func leadershipCases() []decideCase {
	return []decideCase{
		{n: 18, name: "holder with etcd unreachable keeps trying until its deadline",
			view:       view(),
			local:      primary(func(l *LocalState) { l.DCSReachable = false; l.Lease.SentAt = now - 300*msec }),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "etcd unreachable: retrying the renewal; I fence my writes in 149.5 ms unless it succeeds"},
		{n: 19, name: "holder that could not renew before its deadline fences",
			view:       view(),
			local:      primary(func(l *LocalState) { l.DCSReachable = false; l.Lease.SentAt = now - 450*msec }),
			want:       Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 450 ms ago, deadline 449.5 ms after it)"},
		{n: 20, name: "deadline is exact: 0.5 ms before it the holder still renews",
			view:       view(),
			local:      primary(func(l *LocalState) { l.Lease.SentAt = now - 449*msec }),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "no action: I am n1, the leader with the lock"},
		{n: 21, name: "leader key taken by another member: fence at once",
			view:       view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 120 }),
			local:      primary(),
			want:       Action{Kind: ActionFenceWrites},
			wantReason: "fencing: my leader key was taken by n2 (revision 120), so another member may take over at once"},
		{n: 22, name: "leader key deleted under the holder: fence at once",
			view:       view(noLeader),
			local:      primary(),
			want:       Action{Kind: ActionFenceWrites},
			wantReason: "fencing: my leader key was deleted, so another member may take over at once"},
		{n: 23, name: "restarted agent finds its primary writable: fence, it cannot prove it is alone",
			view:       view(),
			local:      primary(func(l *LocalState) { l.Lease = nil }),
			want:       Action{Kind: ActionFenceWrites},
			wantReason: "fencing: the leader key names me but this agent holds no lease for it (restarted?), so I cannot prove no other member was promoted"},
		{n: 24, name: "fenced former holder takes back the key that still names it",
			view:       view(stale),
			local:      primary(func(l *LocalState) { l.Lease, l.Postgres = nil, PGStopped }),
			want:       Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "taking back the leader lock that still names me (revision 100): this agent holds no lease for it and no other member has taken it"},
		{n: 25, name: "primary without the lock while another member leads: demote",
			view:       view(func(v *ClusterView) { v.Leader.Holder = "n2" }),
			local:      primary(func(l *LocalState) { l.Lease = nil }),
			want:       Action{Kind: ActionDemote, Leader: "n2"},
			wantReason: "demoting: n2 holds the leader lock and I am running as a primary without it"},
		{n: 26, name: "primary without any leader key and not a fresh bootstrap: fence",
			view:       view(noLeader),
			local:      primary(func(l *LocalState) { l.Lease = nil }),
			want:       Action{Kind: ActionFenceWrites},
			wantReason: "fencing: I am running as a primary without the leader lock"},
	}
}

func TestHoldsLeadership(t *testing.T) {
	cases := []struct {
		n     int
		name  string
		view  ClusterView
		local LocalState
		at    time.Duration
		want  bool
	}{
		{1, "holder within its deadline", view(), primary(), now, true},
		{2, "holder at its deadline", view(), primary(), now - 50*msec + 449500*time.Microsecond, false},
		{3, "holder whose PostgreSQL is in recovery", view(), primary(func(l *LocalState) { l.InRecovery = true }), now, false},
		{4, "key taken by another member", view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 120 }), primary(), now, false},
		{5, "replica", view(), replica("n2"), now, false},
		{6, "no lease in this incarnation", view(), primary(func(l *LocalState) { l.Lease = nil }), now, false},
		{7, "lease expired, etcd unreachable, every member confirmed in failsafe mode", view(failsafeKey), primary(failsafeAcks("n2", "n3")), now, true},
		{8, "lease expired, one member did not confirm", view(failsafeKey), primary(failsafeAcks("n2")), now, false},
		{9, "lease expired, confirmations too old", view(failsafeKey), primary(failsafeAcks("n2", "n3")), now + 400*msec, false},
		{10, "lease expired, etcd reachable again", view(failsafeKey),
			primary(failsafeAcks("n2", "n3"), func(l *LocalState) { l.DCSReachable = true }), now, false},
		{11, "failsafe confirmations but the key was taken", view(failsafeKey, func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 120 }),
			primary(failsafeAcks("n2", "n3")), now, false},
	}
	for _, tc := range cases {
		if got := HoldsLeadership(tc.view, tc.local, tc.at); got != tc.want {
			t.Errorf("case %d %s: got %v, want %v", tc.n, tc.name, got, tc.want)
		}
	}
}
