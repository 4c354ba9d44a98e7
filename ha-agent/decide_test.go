package haagent

import (
	"reflect"
	"testing"
	"time"
)

// Fixture: cluster "pg-test" with n1 the leader (primary) and n2, n3
// replicas streaming from it, all on timeline 2 at WAL 0/3000060, seen
// 50 ms ago. Time is this agent's monotonic clock; now = 10 s.
const (
	now    = 10 * time.Second
	msec   = time.Millisecond
	walAt  = LSN(0x3000060)
	sysid  = "7289263672843878470"
	leader = "n1"
)

func member(name string, role Role) Member {
	m := Member{
		Name: name, Role: role, State: PGRunning, Timeline: 2,
		APIURL: "http://" + name + ":8008", ObservedAt: now - 50*msec,
	}
	if role == RolePrimary {
		m.FlushLSN = walAt
	} else {
		m.ReceivedLSN, m.ReplayedLSN = walAt, walAt
		m.Upstream, m.ReplicationState, m.SyncState = leader, "streaming", SyncAsync
	}
	return m
}

func view(mods ...func(*ClusterView)) ClusterView {
	v := ClusterView{
		Cluster: "pg-test",
		Config:  DefaultConfig(),
		Leader: &LeaderRecord{Holder: leader, ModRevision: 100, Term: 3, Timeline: 2, Optime: walAt,
			ObservedAt: now - 50*msec},
		Initialize: &InitializeRecord{ClaimedBy: leader, Sysid: sysid},
		Members: map[string]Member{
			"n1": member("n1", RolePrimary),
			"n2": member("n2", RoleReplica),
			"n3": member("n3", RoleReplica),
		},
	}
	for _, mod := range mods {
		mod(&v)
	}
	return v
}

// replica is n2 (or name) streaming from n1.
func replica(name string, mods ...func(*LocalState)) LocalState {
	l := LocalState{
		Name: name, DCSReachable: true, Postgres: PGRunning, InRecovery: true, Sysid: sysid, Timeline: 2,
		ReceivedLSN: walAt, ReplayedLSN: walAt, Upstream: leader,
		WallClock: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	for _, mod := range mods {
		mod(&l)
	}
	return l
}

// primary is n1 holding the lease renewed 50 ms ago.
func primary(mods ...func(*LocalState)) LocalState {
	l := replica(leader)
	l.InRecovery, l.ReceivedLSN, l.ReplayedLSN, l.FlushLSN, l.Upstream = false, 0, 0, walAt, ""
	l.Lease = &Lease{Revision: 100, SentAt: now - 50*msec}
	for _, mod := range mods {
		mod(&l)
	}
	return l
}

func stale(v *ClusterView) { v.Leader.ObservedAt = now - 530*msec }

func noLeader(v *ClusterView) {
	v.LastLeader, v.Leader = v.Leader, nil
}

func syncMode(standbys ...string) func(*ClusterView) {
	return func(v *ClusterView) {
		v.Config.SynchronousMode = true
		v.Sync = &SyncRecord{Leader: leader, Standbys: standbys}
	}
}

func withMember(name string, mod func(*Member)) func(*ClusterView) {
	return func(v *ClusterView) {
		m := v.Members[name]
		mod(&m)
		v.Members[name] = m
	}
}

func failover(from, to string) func(*ClusterView) {
	return func(v *ClusterView) { v.Failover = &FailoverRequest{From: from, To: to, ModRevision: 77} }
}

func pgState(s PGState) func(*LocalState) { return func(l *LocalState) { l.Postgres = s } }

type decideCase struct {
	n          int
	name       string
	view       ClusterView
	local      LocalState
	now        time.Duration
	want       Action
	wantReason string
}

func decideCases() []decideCase {
	return []decideCase{
		// --- steady state, pause ---------------------------------------------
		{n: 1, name: "leader renews its lock",
			view: view(), local: primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "no action: I am n1, the leader with the lock"},
		{n: 2, name: "replica follows the leader",
			view: view(), local: replica("n2"),
			want:       Action{},
			wantReason: "no action: I am n2, a replica following leader n1"},
		{n: 3, name: "paused holder renews only",
			view: view(func(v *ClusterView) { v.Paused = true }), local: primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "paused: renewing my leader lock and changing nothing else"},
		{n: 4, name: "paused replica does not race for a stale leader",
			view: view(stale, func(v *ClusterView) { v.Paused = true }), local: replica("n2"),
			want:       Action{},
			wantReason: "paused: maintenance mode, changing nothing"},
		{n: 5, name: "paused holder whose PostgreSQL stopped releases the lock and changes nothing else",
			view: view(func(v *ClusterView) { v.Paused = true }), local: primary(pgState(PGStopped)),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "paused: releasing the leader lock because PostgreSQL is not running as a primary; changing nothing else"},
		{n: 6, name: "pause does not suspend the fence",
			view:  view(func(v *ClusterView) { v.Paused = true }),
			local: primary(func(l *LocalState) { l.DCSReachable = false; l.Lease.SentAt = now - 450*msec }),
			want:  Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 450 ms ago, deadline 449.5 ms after it); " +
				"fencing even though paused, because a resume I cannot see would let others take over"},
		{n: 7, name: "agent without a member name does nothing",
			view: view(), local: replica(""),
			want:       Action{},
			wantReason: "no action: this agent has no member name"},

		// --- bootstrap: initialize race, clone, sysid -------------------------
		{n: 8, name: "empty data dir, no initialize key, no leader: initialize race",
			view:       view(noLeader, func(v *ClusterView) { v.Initialize, v.LastLeader = nil, nil }),
			local:      replica("n2", func(l *LocalState) { l.DataDirEmpty, l.Postgres, l.Sysid = true, PGStopped, "" }),
			want:       Action{Kind: ActionClaimInitialize},
			wantReason: "initialize race: no initialize key and no leader; claiming the initialize key to bootstrap a new cluster"},
		{n: 9, name: "nofailover member may not bootstrap",
			view: view(noLeader, func(v *ClusterView) { v.Initialize, v.LastLeader = nil, nil }),
			local: replica("n2", func(l *LocalState) {
				l.DataDirEmpty, l.Postgres, l.Tags.NoFailover = true, PGStopped, true
			}),
			want:       Action{},
			wantReason: "no action: my data directory is empty and I am tagged nofailover, so I may not bootstrap; waiting for a leader to clone from"},
		{n: 10, name: "winner of the initialize race bootstraps",
			view: view(noLeader, func(v *ClusterView) {
				v.Initialize, v.LastLeader = &InitializeRecord{ClaimedBy: "n2"}, nil
			}),
			local:      replica("n2", func(l *LocalState) { l.DataDirEmpty, l.Postgres = true, PGStopped }),
			want:       Action{Kind: ActionBootstrap},
			wantReason: "bootstrapping a new cluster: I won the initialize race"},
		{n: 11, name: "loser of the initialize race waits",
			view: view(noLeader, func(v *ClusterView) {
				v.Initialize, v.LastLeader = &InitializeRecord{ClaimedBy: "n1"}, nil
			}),
			local:      replica("n2", func(l *LocalState) { l.DataDirEmpty, l.Postgres = true, PGStopped }),
			want:       Action{},
			wantReason: "no action: my data directory is empty; n1 is bootstrapping the cluster"},
		{n: 12, name: "empty data dir with a live leader: clone from it",
			view:       view(),
			local:      replica("n2", func(l *LocalState) { l.DataDirEmpty, l.Postgres = true, PGStopped }),
			want:       Action{Kind: ActionCloneFromLeader, Leader: "n1"},
			wantReason: "cloning from leader n1: my data directory is empty"},
		{n: 13, name: "empty data dir with a stale leader: nothing to clone from",
			view:       view(stale),
			local:      replica("n2", func(l *LocalState) { l.DataDirEmpty, l.Postgres = true, PGStopped }),
			want:       Action{},
			wantReason: "no action: my data directory is empty and there is no live leader to clone from"},
		{n: 14, name: "empty data dir and etcd unreachable",
			view: view(),
			local: replica("n2", func(l *LocalState) {
				l.DataDirEmpty, l.Postgres, l.DCSReachable = true, PGStopped, false
			}),
			want:       Action{},
			wantReason: "no action: my data directory is empty and etcd is unreachable"},
		{n: 15, name: "freshly bootstrapped primary takes the free lock",
			view: view(noLeader, func(v *ClusterView) {
				v.Initialize, v.LastLeader = &InitializeRecord{ClaimedBy: "n1"}, nil
			}),
			local:      primary(func(l *LocalState) { l.Lease = nil }),
			want:       Action{Kind: ActionAcquireLeader, Term: 1},
			wantReason: "taking the leader lock: I just bootstrapped the cluster"},
		{n: 16, name: "holder fills in the system identifier",
			view:       view(func(v *ClusterView) { v.Initialize = &InitializeRecord{ClaimedBy: "n1"} }),
			local:      primary(),
			want:       Action{Kind: ActionWriteInitialize, Sysid: sysid, KeepLock: true},
			wantReason: "writing the initialize key: cluster system identifier 7289263672843878470"},
		{n: 17, name: "data dir from another cluster: refuse to join",
			view:       view(),
			local:      replica("n2", func(l *LocalState) { l.Sysid = "7000000000000000001" }),
			want:       Action{Kind: ActionRefuseToJoin},
			wantReason: "refusing to join: my data directory has system identifier 7000000000000000001 but the cluster's initialize key says 7289263672843878470"},

		// --- holder: renew, fence, lost lock ----------------------------------
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

		// --- etcd unreachable: failsafe -----------------------------------------
		{n: 27, name: "failsafe: every member confirmed me, keep writes past the lease",
			view: view(func(v *ClusterView) {
				v.Config.FailsafeMode = true
				v.FailsafeMembers = []string{"n1", "n2", "n3"}
			}),
			local: primary(func(l *LocalState) {
				l.DCSReachable = false
				l.Lease.SentAt = now - 2*time.Second
				l.FailsafeAcks = map[string]time.Duration{"n2": now - 100*msec, "n3": now - 150*msec}
			}),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "failsafe: etcd unreachable, but every member (n2, n3) confirmed me as leader over the REST API; keeping writes for 299.5 ms more"},
		{n: 28, name: "failsafe: one member did not confirm, fence",
			view: view(func(v *ClusterView) {
				v.Config.FailsafeMode = true
				v.FailsafeMembers = []string{"n1", "n2", "n3"}
			}),
			local: primary(func(l *LocalState) {
				l.DCSReachable = false
				l.Lease.SentAt = now - 2*time.Second
				l.FailsafeAcks = map[string]time.Duration{"n2": now - 100*msec}
			}),
			want: Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 2000 ms ago, deadline 449.5 ms after it); " +
				"failsafe needs every member to confirm me and n3 did not"},
		{n: 29, name: "failsafe: confirmations too old, fence",
			view: view(func(v *ClusterView) {
				v.Config.FailsafeMode = true
				v.FailsafeMembers = []string{"n1", "n2", "n3"}
			}),
			local: primary(func(l *LocalState) {
				l.DCSReachable = false
				l.Lease.SentAt = now - 2*time.Second
				l.FailsafeAcks = map[string]time.Duration{"n2": now - 100*msec, "n3": now - 500*msec}
			}),
			want: Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 2000 ms ago, deadline 449.5 ms after it); " +
				"the failsafe confirmations expired 50.5 ms ago"},
		{n: 30, name: "failsafe mode on: holder writes the failsafe key",
			view:       view(func(v *ClusterView) { v.Config.FailsafeMode = true }),
			local:      primary(),
			want:       Action{Kind: ActionSetFailsafeMembers, Members: []string{"n1", "n2", "n3"}, KeepLock: true},
			wantReason: "writing the failsafe key: members n1, n2, n3"},

		// --- holder: crashed PostgreSQL -----------------------------------------
		{n: 31, name: "crashed leader restarts in place when recovery fits the budget",
			view: view(),
			local: primary(pgState(PGCrashed), func(l *LocalState) {
				l.CrashedAt, l.CrashRecoveryEstimate = now-10*msec, 120*msec
			}),
			want:       Action{Kind: ActionRestartPostgres, AsPrimary: true, KeepLock: true},
			wantReason: "restarting PostgreSQL in place as the primary: it crashed and expected crash recovery 120 ms is within crash_restart_budget_ms 300 ms"},
		{n: 32, name: "crashed leader with long recovery releases at once",
			view: view(),
			local: primary(pgState(PGCrashed), func(l *LocalState) {
				l.CrashedAt, l.CrashRecoveryEstimate = now-10*msec, 2100*msec
			}),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "releasing the leader lock at once: PostgreSQL crashed and expected crash recovery 2100 ms exceeds crash_restart_budget_ms 300 ms, so n2, n3 can take over sooner"},
		{n: 33, name: "crashed leader with unknown recovery time releases at once",
			view:       view(),
			local:      primary(pgState(PGCrashed)),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "releasing the leader lock at once: PostgreSQL crashed and its crash recovery time is unknown, so n2, n3 can take over"},
		{n: 34, name: "crashed leader with no possible successor restarts in place",
			view: view(withMember("n2", func(m *Member) { m.State = PGStopped }),
				withMember("n3", func(m *Member) { m.Tags.NoFailover = true })),
			local:      primary(pgState(PGCrashed)),
			want:       Action{Kind: ActionRestartPostgres, AsPrimary: true, KeepLock: true},
			wantReason: "restarting PostgreSQL in place as the primary: it crashed and no replica can take over (n2: its PostgreSQL is stopped; n3: it is tagged nofailover)"},
		{n: 35, name: "leader crashed again after an in-place restart releases",
			view:       view(),
			local:      primary(pgState(PGCrashed), func(l *LocalState) { l.CrashRestarts = 1 }),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "releasing the leader lock at once: PostgreSQL crashed again after an in-place restart, so n2, n3 can take over"},
		{n: 36, name: "in-place restart within budget keeps the lock",
			view:       view(),
			local:      primary(pgState(PGStarting), func(l *LocalState) { l.CrashRestarts, l.CrashedAt = 1, now-120*msec }),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "PostgreSQL is starting (120 ms since the outage began, crash_restart_budget_ms 300 ms); keeping the leader lock"},
		{n: 37, name: "in-place restart over budget is stopped so a replica takes over",
			view:       view(),
			local:      primary(pgState(PGStarting), func(l *LocalState) { l.CrashRestarts, l.CrashedAt = 1, now-350*msec }),
			want:       Action{Kind: ActionFenceWrites, KeepLock: true},
			wantReason: "stopping the in-place restart: it has taken 350 ms (> crash_restart_budget_ms 300 ms) and n2, n3 can take over"},
		{n: 38, name: "cleanly stopped leader starts again",
			view:       view(),
			local:      primary(pgState(PGStopped)),
			want:       Action{Kind: ActionRestartPostgres, AsPrimary: true, KeepLock: true},
			wantReason: "restarting PostgreSQL in place as the primary: it is stopped cleanly, so it starts without crash recovery"},

		// --- two-phase promotion after acquiring ------------------------------
		{n: 39, name: "new holder stops its WAL receiver first",
			view:       view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local:      replica("n2", func(l *LocalState) { l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec} }),
			want:       Action{Kind: ActionStopWALReceiver, KeepLock: true},
			wantReason: "promoting, phase 1: stopping my WAL receiver so the old primary can get no more acknowledgements from me"},
		{n: 40, name: "new holder with replay behind promotes: PostgreSQL replays what it received first (a partial last record never replays)",
			view: view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local: replica("n2", func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.WALReceiverStopped, l.ReceivedLSN = true, walAt+0x40
			}),
			want: Action{Kind: ActionPromote, KeepLock: true},
			wantReason: "promoting, phase 2: WAL receiver stopped; promoting PostgreSQL, which replays everything it received " +
				"(replayed 0/3000060, received 0/30000A0) before it ends recovery"},
		{n: 41, name: "new holder promotes once replay caught up",
			view: view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local: replica("n2", func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.WALReceiverStopped = true
			}),
			want:       Action{Kind: ActionPromote, KeepLock: true},
			wantReason: "promoting, phase 2: replay caught up at 0/3000060; promoting PostgreSQL"},
		{n: 42, name: "holder keeps renewing while promote runs",
			view:       view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local:      replica("n2", func(l *LocalState) { l.Lease, l.Busy = &Lease{Revision: 130, SentAt: now - 5*msec}, BusyPromoting }),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "renewing the leader lock while promote runs"},
		{n: 43, name: "replica waits for pg_rewind to finish",
			view:       view(),
			local:      replica("n3", func(l *LocalState) { l.Busy = BusyRewinding }),
			want:       Action{},
			wantReason: "no action: waiting for pg_rewind to finish"},

		// --- followers ----------------------------------------------------------
		{n: 44, name: "replica following the wrong leader switches",
			view:       view(),
			local:      replica("n2", func(l *LocalState) { l.Upstream = "n3" }),
			want:       Action{Kind: ActionFollow, Leader: "n1"},
			wantReason: "switching upstream from n3 to leader n1"},
		{n: 45, name: "crashed replica restarts as a replica",
			view:       view(),
			local:      replica("n2", pgState(PGCrashed)),
			want:       Action{Kind: ActionRestartPostgres, Leader: "n1"},
			wantReason: "restarting crashed PostgreSQL as a replica of leader n1"},
		{n: 46, name: "stopped replica starts following",
			view:       view(),
			local:      replica("n2", pgState(PGStopped)),
			want:       Action{Kind: ActionFollow, Leader: "n1"},
			wantReason: "starting PostgreSQL as a replica of leader n1"},
		{n: 47, name: "diverged former primary rewinds",
			view:       view(func(v *ClusterView) { v.Leader.Timeline = 3 }),
			local:      replica("n3", func(l *LocalState) { l.Diverged = true }),
			want:       Action{Kind: ActionRewind, Leader: "n1"},
			wantReason: "rewinding from leader n1: my WAL diverged from its timeline (mine 2, leader's 3)"},
		{n: 48, name: "failed pg_rewind leads to a re-clone, and the reason says so",
			view: view(),
			local: replica("n3", func(l *LocalState) {
				l.Diverged, l.RewindFailed, l.RewindError = true, true, "could not find previous WAL record at 0/3000028"
			}),
			want:       Action{Kind: ActionReclone, Leader: "n1"},
			wantReason: "re-cloning from leader n1: pg_rewind failed (could not find previous WAL record at 0/3000028)"},
		{n: 49, name: "diverged with use_pg_rewind off re-clones",
			view:       view(func(v *ClusterView) { v.Config.UsePgRewind = false }),
			local:      replica("n3", func(l *LocalState) { l.Diverged = true }),
			want:       Action{Kind: ActionReclone, Leader: "n1"},
			wantReason: "re-cloning from leader n1: my WAL diverged from its timeline and use_pg_rewind is off"},
		{n: 50, name: "lost race after stopping the WAL receiver: resume streaming",
			view:       view(),
			local:      replica("n2", func(l *LocalState) { l.WALReceiverStopped = true }),
			want:       Action{Kind: ActionFollow, Leader: "n1"},
			wantReason: "resuming WAL streaming from leader n1: my WAL receiver was stopped for a promotion that did not happen"},
		{n: 51, name: "replica waits for its PostgreSQL to start",
			view:       view(),
			local:      replica("n2", pgState(PGStarting)),
			want:       Action{},
			wantReason: "no action: waiting for PostgreSQL to finish starting (leader n1)"},

		// --- leader stale or absent: the race -----------------------------------
		{n: 52, name: "stale leader: the healthiest replica promotes",
			view:       view(stale),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest member (WAL 0/3000060)"},
		{n: 53, name: "leader silent for 520 ms is not yet stale: no failover on jitter",
			view:       view(func(v *ClusterView) { v.Leader.ObservedAt = now - 520*msec }),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "no action: I am n2, a replica following leader n1"},
		{n: 54, name: "released lock: promote at once, no staleness wait",
			view:       view(noLeader),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, Term: 4},
			wantReason: "promoting: the leader lock is free (last held by n1) and I am the healthiest member (WAL 0/3000060)"},
		{n: 55, name: "a member with a higher fresh WAL position wins",
			view:       view(stale, withMember("n3", func(m *Member) { m.ReceivedLSN = walAt + 0x20 })),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: member n3 has a higher WAL position 0/3000080 > 0/3000060"},
		{n: 56, name: "trap patroni#3703: a frozen higher report does not block promotion",
			view: view(stale, withMember("n3", func(m *Member) {
				m.ReceivedLSN, m.ObservedAt = walAt+0x20, now-1500*msec
			})),
			local: replica("n2"),
			want:  Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest member (WAL 0/3000060); " +
				"ignoring n3's WAL position 0/3000080: its report is 1500 ms old and it did not answer the probe"},
		{n: 57, name: "a live probe beats a stale report",
			view: view(stale, withMember("n3", func(m *Member) { m.ObservedAt = now - 1500*msec }), func(v *ClusterView) {
				v.Probes = map[string]Probe{"n3": {Reachable: true, InRecovery: true, WALPosition: walAt + 0x20, Timeline: 2}}
			}),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: member n3 has a higher WAL position 0/3000080 > 0/3000060"},
		{n: 58, name: "a higher member that may not be promoted (nofailover) does not block",
			view: view(stale, withMember("n3", func(m *Member) {
				m.ReceivedLSN, m.Tags.NoFailover = walAt+0x20, true
			})),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest member (WAL 0/3000060)"},
		{n: 59, name: "a higher member whose PostgreSQL crashed does not block",
			view: view(stale, withMember("n3", func(m *Member) {
				m.ReceivedLSN, m.State = walAt+0x20, PGCrashed
			})),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest member (WAL 0/3000060)"},
		{n: 60, name: "nofailover member does not race",
			view:       view(stale),
			local:      replica("n2", func(l *LocalState) { l.Tags.NoFailover = true }),
			want:       Action{},
			wantReason: "not promoting: I am tagged nofailover (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 61, name: "starting member does not race",
			view:       view(stale),
			local:      replica("n2", pgState(PGStarting)),
			want:       Action{},
			wantReason: "not promoting: my PostgreSQL is still starting (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 62, name: "stopped member starts as a standby to join the race",
			view:       view(stale),
			local:      replica("n2", pgState(PGStopped)),
			want:       Action{Kind: ActionRestartPostgres},
			wantReason: "starting PostgreSQL as a standby without upstream so I can take part in the leader race: leader n1 is stale for 530 ms (> 520.5 ms)"},
		{n: 63, name: "etcd unreachable: cannot race",
			view:       view(stale),
			local:      replica("n2", func(l *LocalState) { l.DCSReachable = false }),
			want:       Action{},
			wantReason: "not promoting: etcd is unreachable, so I cannot take the leader lock (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 64, name: "asynchronous replica lagging beyond maximum_lag_on_failover does not race",
			view:       view(stale, func(v *ClusterView) { v.Leader.Optime = walAt + 2<<20 }),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: my WAL position 0/3000060 is 2097152 bytes behind the last leader position 0/3200060 (maximum_lag_on_failover is 1048576) (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 65, name: "timeline behind the cluster's does not race",
			view:       view(stale, func(v *ClusterView) { v.Leader.Timeline = 3 }),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: my timeline 2 is behind the cluster timeline 3 (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 66, name: "synchronous mode: an asynchronous standby does not race",
			view:       view(stale, syncMode("n3")),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: synchronous mode and I am not a synchronous standby (synchronous standbys of n1: n3) (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 67, name: "synchronous mode without a sync record: nobody races",
			view:       view(stale, func(v *ClusterView) { v.Config.SynchronousMode = true }),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: synchronous mode and I am not a synchronous standby (no synchronous standby is recorded) (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 68, name: "trap patroni#3703: sync standby promotes although the frozen leader optime is ahead and maximum_lag_on_failover is 0",
			view: view(stale, syncMode("n2"), func(v *ClusterView) {
				v.Config.SynchronousModeStrict, v.Config.MaximumLagOnFailover = true, 0
				v.Leader.Optime = walAt + 0x1000
			}),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest synchronous standby (WAL 0/3000060)"},
		{n: 69, name: "synchronous mode: the former leader being ahead is ignored",
			view: view(stale, syncMode("n2"), func(v *ClusterView) {
				v.Probes = map[string]Probe{"n1": {Reachable: true, InRecovery: true, WALPosition: walAt + 0x20, Timeline: 2}}
			}),
			local: replica("n2"),
			want:  Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest synchronous standby (WAL 0/3000060); " +
				"ignoring former leader n1 being ahead (0/3000080): in synchronous mode its extra WAL was never acknowledged"},
		{n: 70, name: "old primary still accepting writes: do not promote",
			view: view(stale, func(v *ClusterView) {
				v.Probes = map[string]Probe{"n1": {Reachable: true, AcceptingWrites: true, WALPosition: walAt, Timeline: 2}}
			}),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: n1 is still accepting writes (it answered the REST probe as a primary)"},
		{n: 71, name: "a member confirms the old leader in failsafe mode: do not promote",
			view: view(stale, func(v *ClusterView) {
				v.Probes = map[string]Probe{"n3": {Reachable: true, InRecovery: true, WALPosition: walAt, Timeline: 2, FailsafeLeader: "n1"}}
			}),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: n3 confirmed n1 as leader in failsafe mode, so n1 may still take writes"},
		{n: 72, name: "my own failsafe promise holds me back",
			view:       view(stale),
			local:      replica("n2", func(l *LocalState) { l.FailsafePromise = &FailsafePromise{Leader: "n1", Until: now + 200*msec} }),
			want:       Action{},
			wantReason: "not promoting: I confirmed n1 as leader in failsafe mode for 200 ms more (leader n1 is stale for 530 ms (> 520.5 ms))"},
		{n: 73, name: "failsafe mode: a member missing from the failsafe key does not race",
			view: view(stale, func(v *ClusterView) {
				v.Config.FailsafeMode, v.FailsafeMembers = true, []string{"n1", "n3"}
			}),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting: failsafe_mode is on and I am not in the failsafe key (leader n1 is stale for 530 ms (> 520.5 ms))"},

		// --- manual failover / switchover ------------------------------------
		{n: 74, name: "switchover: the leader demotes cleanly first",
			view:       view(failover("n1", "n2")),
			local:      primary(),
			want:       Action{Kind: ActionDemote, Leader: "n2", Clean: true, KeepLock: true},
			wantReason: "switchover: demoting cleanly (fast shutdown) so n2 can take over"},
		{n: 75, name: "switchover to a nofailover member is rejected",
			view:       view(failover("n1", "n3"), withMember("n3", func(m *Member) { m.Tags.NoFailover = true })),
			local:      primary(),
			want:       Action{Kind: ActionClearFailoverRequest, FailoverRev: 77, KeepLock: true},
			wantReason: "rejecting the switchover to n3: it is tagged nofailover"},
		{n: 76, name: "switchover without a candidate goes to the healthiest",
			view:       view(failover("n1", "")),
			local:      primary(),
			want:       Action{Kind: ActionDemote, Clean: true, KeepLock: true},
			wantReason: "switchover: demoting cleanly (fast shutdown) so the healthiest of n2, n3 can take over"},
		{n: 77, name: "scheduled switchover waits for its time",
			view: view(func(v *ClusterView) {
				v.Failover = &FailoverRequest{From: "n1", To: "n2", ModRevision: 77,
					ScheduledAt: time.Date(2026, 5, 1, 13, 0, 0, 0, time.UTC)}
			}),
			local:      primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "no action: switchover scheduled at 2026-05-01T13:00:00Z; keeping the leader lock until then"},
		{n: 78, name: "request to move away from another leader is stale",
			view:       view(failover("n9", "n2")),
			local:      primary(),
			want:       Action{Kind: ActionClearFailoverRequest, FailoverRev: 77, KeepLock: true},
			wantReason: "clearing the failover request: it asks to move leadership away from n9, but I (n1) am the leader"},
		{n: 79, name: "switchover: after the clean shutdown the leader releases",
			view:       view(failover("n1", "n2")),
			local:      primary(pgState(PGStopped)),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "switchover: PostgreSQL stopped cleanly; releasing the leader lock to n2"},
		{n: 80, name: "new leader clears the request that named it",
			view: view(failover("n1", "n2"), func(v *ClusterView) {
				v.Leader.Holder, v.Leader.ModRevision = "n2", 130
			}),
			local: replica("n2", func(l *LocalState) {
				l.InRecovery, l.FlushLSN, l.Lease = false, walAt, &Lease{Revision: 130, SentAt: now - 5*msec}
			}),
			want:       Action{Kind: ActionClearFailoverRequest, FailoverRev: 77, KeepLock: true},
			wantReason: "clearing the failover request: I (n2) am the requested candidate and already the leader"},
		{n: 81, name: "candidate waits for the leader to demote",
			view:       view(failover("n1", "n2")),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "no action: a switchover to me was requested; waiting for leader n1 to demote and release the lock"},
		{n: 82, name: "lock released for a switchover: the named candidate takes it",
			view:       view(noLeader, failover("n1", "n2")),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, Term: 4},
			wantReason: "promoting: the leader lock is free (last held by n1) and I am the requested failover candidate (WAL 0/3000060)"},
		{n: 83, name: "lock released for a switchover: others leave it to the candidate",
			view:       view(noLeader, failover("n1", "n2")),
			local:      replica("n3"),
			want:       Action{},
			wantReason: "not promoting: a failover to n2 was requested and n2 can take over (the leader lock is free (last held by n1))"},
		{n: 84, name: "requested candidate is gone: the healthiest races instead",
			view:  view(stale, failover("", "n3"), withMember("n3", func(m *Member) { m.ObservedAt = now - 1500*msec })),
			local: replica("n2"),
			want:  Action{Kind: ActionAcquireLeader, ExpectedRevision: 100, Term: 4},
			wantReason: "promoting: leader n1 is stale for 530 ms (> 520.5 ms) and I am the healthiest member (WAL 0/3000060); " +
				"the requested candidate n3 cannot take over (its report is 1500 ms old and it did not answer the probe)"},
		{n: 85, name: "synchronous mode: switchover to an asynchronous standby is rejected",
			view:       view(syncMode("n2"), failover("n1", "n3")),
			local:      primary(),
			want:       Action{Kind: ActionClearFailoverRequest, FailoverRev: 77, KeepLock: true},
			wantReason: "rejecting the switchover to n3: it is not a synchronous standby"},
		{n: 86, name: "request naming neither side is cleared",
			view:       view(failover("", "")),
			local:      primary(),
			want:       Action{Kind: ActionClearFailoverRequest, FailoverRev: 77, KeepLock: true},
			wantReason: "clearing the failover request: it names neither a leader nor a candidate"},
		{n: 87, name: "requested candidate that is not a synchronous standby does not promote",
			view:       view(noLeader, syncMode("n3"), failover("n1", "n2")),
			local:      replica("n2"),
			want:       Action{},
			wantReason: "not promoting although I am the requested failover candidate: synchronous mode and I am not a synchronous standby (synchronous standbys of n1: n3) (the leader lock is free (last held by n1))"},

		// --- synchronous standbys (as PostgreSQL reports them) ----------------
		{n: 88, name: "leader picks a synchronous standby among streaming replicas",
			view:       view(func(v *ClusterView) { v.Config.SynchronousMode = true }),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, Members: []string{"n2"}, KeepLock: true},
			wantReason: "setting synchronous standbys to n2 (was: none)"},
		{n: 89, name: "current synchronous standby is kept even if another is ahead (no flapping)",
			view:       view(syncMode("n3"), withMember("n2", func(m *Member) { m.ReceivedLSN = walAt + 0x20 })),
			local:      primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "no action: I am n1, the leader with the lock"},
		{n: 90, name: "disconnected synchronous standby is replaced",
			view:       view(syncMode("n3"), withMember("n3", func(m *Member) { m.ReplicationState, m.SyncState = "", SyncNone })),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, Members: []string{"n2"}, KeepLock: true},
			wantReason: "setting synchronous standbys to n2 (was: n3)"},
		{n: 91, name: "strict mode with no streaming standby: commits wait",
			view: view(syncMode("n3"), func(v *ClusterView) {
				v.Config.SynchronousModeStrict = true
				for _, n := range []string{"n2", "n3"} {
					m := v.Members[n]
					m.ReplicationState = ""
					v.Members[n] = m
				}
			}),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, KeepLock: true},
			wantReason: "synchronous_mode_strict: no streaming standby can be synchronous; commits wait until one connects (was: n3)"},
		{n: 92, name: "non-strict mode with no streaming standby: asynchronous, no automatic failover",
			view: view(syncMode("n3"), withMember("n2", func(m *Member) { m.ReplicationState = "catchup" }),
				withMember("n3", func(m *Member) { m.ReplicationState = "" })),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, KeepLock: true},
			wantReason: "no streaming standby can be synchronous; running asynchronously, with no automatic failover until one is (was: n3)"},
		{n: 93, name: "synchronous mode turned off: clear the sync standbys",
			view:       view(syncMode("n3"), func(v *ClusterView) { v.Config.SynchronousMode = false }),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, KeepLock: true},
			wantReason: "synchronous_mode is off: clearing the synchronous standbys (n3)"},
		{n: 94, name: "nosync replica is never chosen",
			view: view(func(v *ClusterView) { v.Config.SynchronousMode = true },
				withMember("n2", func(m *Member) { m.Tags.NoSync = true })),
			local:      primary(),
			want:       Action{Kind: ActionSetSyncStandbys, Members: []string{"n3"}, KeepLock: true},
			wantReason: "setting synchronous standbys to n3 (was: none)"},

		// --- bootstrap adoption (PgClusterCreate contract), agent restart -------
		{n: 95, name: "adoption: the member named in initialize takes the first lock before starting PostgreSQL",
			view:  view(noLeader, func(v *ClusterView) { v.LastLeader = nil }),
			local: primary(pgState(PGStopped), func(l *LocalState) { l.Lease, l.FlushLSN = nil, 0 }),
			want:  Action{Kind: ActionAcquireLeader, Term: 1},
			wantReason: "taking the first leader lock: the cluster was never led and the initialize key names me " +
				"with my data directory's system identifier"},
		{n: 96, name: "adoption: a cloned replica does not race in a cluster that was never led",
			view:       view(noLeader, func(v *ClusterView) { v.LastLeader = nil }),
			local:      replica("n2", pgState(PGStopped)),
			want:       Action{},
			wantReason: "no action: the cluster was never led; waiting for n1, named in the initialize key, to take the first leader lock"},
		{n: 97, name: "adoption: the history key means the cluster was led before, so replicas race as usual",
			view:       view(noLeader, func(v *ClusterView) { v.LastLeader, v.EverLed = nil, true }),
			local:      replica("n2"),
			want:       Action{Kind: ActionAcquireLeader, Term: 1},
			wantReason: "promoting: there is no leader and I am the healthiest member (WAL 0/3000060)"},
		{n: 98, name: "adoption: named member with an unknown system identifier waits",
			view:       view(noLeader, func(v *ClusterView) { v.LastLeader = nil }),
			local:      primary(pgState(PGStopped), func(l *LocalState) { l.Lease, l.Sysid = nil, "" }),
			want:       Action{},
			wantReason: "no action: the initialize key names me to lead the new cluster, but my data directory's system identifier is not known yet"},
		{n: 99, name: "adoption: a primary already running (agent restarted mid-adoption) takes the lock",
			view:       view(noLeader, func(v *ClusterView) { v.LastLeader = nil }),
			local:      primary(func(l *LocalState) { l.Lease = nil }),
			want:       Action{Kind: ActionAcquireLeader, Term: 1},
			wantReason: "taking the leader lock: I just bootstrapped the cluster"},
		{n: 100, name: "restarted agent: PostgreSQL went down with the old agent, restart in place instead of failing over",
			view: view(),
			local: primary(pgState(PGCrashed), func(l *LocalState) {
				l.PostgresDownAtAgentStart, l.CrashedAt = true, now-20*msec
			}),
			want: Action{Kind: ActionRestartPostgres, AsPrimary: true, KeepLock: true},
			wantReason: "restarting PostgreSQL in place as the primary: it was already down when this agent started " +
				"(it dies with its agent, which was restarted), so crash recovery here is quicker than a failover"},
		{n: 101, name: "restarted agent: a second crash after the in-place restart releases as usual",
			view: view(),
			local: primary(pgState(PGCrashed), func(l *LocalState) {
				l.PostgresDownAtAgentStart, l.CrashRestarts = true, 1
			}),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "releasing the leader lock at once: PostgreSQL crashed again after an in-place restart, so n2, n3 can take over"},
		{n: 102, name: "restarted agent: a clean switchover stop still releases to the candidate",
			view:       view(failover("n1", "n2")),
			local:      primary(pgState(PGStopped), func(l *LocalState) { l.PostgresDownAtAgentStart = true }),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "switchover: PostgreSQL stopped cleanly; releasing the leader lock to n2"},
		{n: 103, name: "restarted agent: crash recovery past crash_restart_budget_ms keeps the lock within agent_restart_budget_ms",
			view: view(),
			local: primary(pgState(PGStarting), func(l *LocalState) {
				l.PostgresDownAtAgentStart, l.CrashRestarts, l.CrashedAt = true, 1, now-800*msec
			}),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "PostgreSQL is starting (800 ms since the outage began, agent_restart_budget_ms 10000 ms); keeping the leader lock"},
		{n: 104, name: "restarted agent: crash recovery past agent_restart_budget_ms hands over",
			view: view(),
			local: primary(pgState(PGStarting), func(l *LocalState) {
				l.PostgresDownAtAgentStart, l.CrashRestarts, l.CrashedAt = true, 1, now-10100*msec
			}),
			want:       Action{Kind: ActionFenceWrites, KeepLock: true},
			wantReason: "stopping the in-place restart: it has taken 10100 ms (> agent_restart_budget_ms 10000 ms) and n2, n3 can take over"},

		// --- a holder whose promotion never completed -----------------------
		// n2 took the lock after n1 was lost; its PostgreSQL (still a standby,
		// standby.signal present) went down before the promotion finished.
		{n: 105, name: "unfinished promotion: crashed standby holder restarts as a standby, never as a primary (no replica can take over)",
			view: view(noLeader, func(v *ClusterView) {
				v.Leader = &LeaderRecord{Holder: "n2", ModRevision: 130, Term: 4, Timeline: 2, Optime: walAt, ObservedAt: now - 5*msec}
				v.Sync = &SyncRecord{Leader: "n2"}
			}),
			local: replica("n2", pgState(PGCrashed), func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.Upstream, l.ReceivedLSN = "", walAt+0x4000
			}),
			want: Action{Kind: ActionRestartPostgres, KeepLock: true},
			wantReason: "resuming my promotion: PostgreSQL is crashed and my promotion never completed (standby.signal is still there), " +
				"so it restarts as a standby without upstream that replays every WAL record it received; " +
				"as a primary it would recover only its old timeline and drop acknowledged commits"},
		{n: 106, name: "unfinished promotion: after an agent restart the standby holder still restarts as a standby",
			view: view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local: replica("n2", pgState(PGCrashed), func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.PostgresDownAtAgentStart, l.Upstream = true, ""
			}),
			want: Action{Kind: ActionRestartPostgres, KeepLock: true},
			wantReason: "resuming my promotion: PostgreSQL is crashed and my promotion never completed (standby.signal is still there), " +
				"so it restarts as a standby without upstream that replays every WAL record it received; " +
				"as a primary it would recover only its old timeline and drop acknowledged commits"},
		{n: 107, name: "unfinished promotion: the restarted standby (no upstream, no receiver) promotes at once",
			view: view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local: replica("n2", func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.Upstream, l.WALReceiverStopped, l.ReceivedLSN = "", true, 0
			}),
			want:       Action{Kind: ActionPromote, KeepLock: true},
			wantReason: "promoting, phase 2: replay caught up at 0/3000060; promoting PostgreSQL"},
		{n: 108, name: "unfinished promotion: the standby holder keeps the lock while its PostgreSQL starts",
			view: view(func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			local: replica("n2", pgState(PGStarting), func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.Upstream, l.CrashRestarts, l.CrashedAt = "", 1, now-200*msec
			}),
			want: Action{Kind: ActionRenewLeader},
			wantReason: "resuming my promotion: PostgreSQL is starting as a standby (200 ms since the outage began, " +
				"crash_restart_budget_ms 300 ms); keeping the leader lock"},
		{n: 109, name: "unfinished promotion past the budget releases (no fence: a starting standby takes no writes) when another member can take over",
			view: view(func(v *ClusterView) {
				v.Leader.Holder, v.Leader.ModRevision = "n2", 130
				v.Config.SynchronousMode = false
				v.Members["n1"] = Member{Name: "n1", State: PGStopped, ObservedAt: now - 50*msec}
				v.Members["n3"] = withUpstream(v.Members["n3"], "n2")
			}),
			local: replica("n2", pgState(PGStarting), func(l *LocalState) {
				l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec}
				l.Upstream, l.CrashRestarts, l.CrashedAt = "", 1, now-400*msec
			}),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 130},
			wantReason: "releasing the leader lock: resuming my promotion has taken 400 ms (> crash_restart_budget_ms 300 ms) and n3 can take over"},

		// --- a standby that is still starting --------------------------------
		{n: 110, name: "starting standby pointed at a member that lost the lock switches to the leader",
			view: view(),
			local: replica("n3", pgState(PGStarting), func(l *LocalState) {
				l.Upstream, l.ReceivedLSN = "n2", 0
			}),
			want: Action{Kind: ActionFollow, Leader: "n1"},
			wantReason: "switching upstream from n2 to leader n1 while PostgreSQL is still starting: " +
				"it may need the leader's WAL to become consistent"},
		{n: 111, name: "starting standby already pointed at the leader waits",
			view:       view(),
			local:      replica("n3", pgState(PGStarting)),
			want:       Action{},
			wantReason: "no action: waiting for PostgreSQL to finish starting (leader n1)"},
		{n: 112, name: "starting standby whose position is past the leader's fork point rewinds (it can never become consistent)",
			view: view(func(v *ClusterView) { v.Leader.Timeline = 3 }),
			local: replica("n3", pgState(PGStarting), func(l *LocalState) {
				l.Diverged, l.Upstream = true, "n1"
			}),
			want:       Action{Kind: ActionRewind, Leader: "n1"},
			wantReason: "rewinding from leader n1: my WAL diverged from its timeline (mine 2, leader's 3)"},
	}
}

func withUpstream(m Member, upstream string) Member {
	m.Upstream = upstream
	return m
}

func TestDecide(t *testing.T) {
	seen := map[int]bool{}
	for _, tc := range decideCases() {
		if seen[tc.n] {
			t.Fatalf("case number %d used twice", tc.n)
		}
		seen[tc.n] = true
		at := tc.now
		if at == 0 {
			at = now
		}
		if err := tc.view.Config.Validate(); err != nil {
			t.Fatalf("case %d %s: fixture config invalid: %v", tc.n, tc.name, err)
		}
		view, local := deepCopy(tc.view), deepCopy(tc.local)
		got, reason := Decide(tc.view, tc.local, at)
		if !reflect.DeepEqual(tc.view, view) {
			t.Errorf("case %d %s: Decide modified its view:\n  after  %+v\n  before %+v", tc.n, tc.name, tc.view, view)
		}
		if !reflect.DeepEqual(tc.local, local) {
			t.Errorf("case %d %s: Decide modified its local state:\n  after  %+v\n  before %+v", tc.n, tc.name, tc.local, local)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("case %d %s:\n  action  %s %+v\n  want    %s %+v", tc.n, tc.name, got, got, tc.want, tc.want)
		}
		if reason != tc.wantReason {
			t.Errorf("case %d %s:\n  reason %q\n  want   %q", tc.n, tc.name, reason, tc.wantReason)
		}
	}
}

// deepCopy copies v and everything it points to (maps, slices, pointers),
// so that comparing the copy with v after a call shows whether the call
// wrote through any of them. Unexported struct fields (time.Time's) are
// copied as values.
func deepCopy[T any](v T) T {
	out := reflect.New(reflect.TypeOf(&v).Elem()).Elem()
	copyValue(out, reflect.ValueOf(&v).Elem())
	return out.Interface().(T)
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			val := reflect.New(src.Type().Elem()).Elem()
			copyValue(val, it.Value())
			m.SetMapIndex(it.Key(), val)
		}
		dst.Set(m)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		sl := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyValue(sl.Index(i), src.Index(i))
		}
		dst.Set(sl)
	case reflect.Struct:
		dst.Set(src)
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				copyValue(dst.Field(i), src.Field(i))
			}
		}
	default:
		dst.Set(src)
	}
}

func TestDeepCopySharesNothing(t *testing.T) {
	v := view(syncMode("n2"), func(v *ClusterView) { v.FailsafeMembers = []string{"n1"} })
	c := deepCopy(v)
	if !reflect.DeepEqual(v, c) {
		t.Fatalf("copy differs: %+v", c)
	}
	c.Leader.Holder, c.Sync.Standbys[0], c.FailsafeMembers[0] = "x", "x", "x"
	c.Members["n2"] = Member{}
	if v.Leader.Holder != leader || v.Sync.Standbys[0] != "n2" || v.FailsafeMembers[0] != "n1" || v.Members["n2"].Name != "n2" {
		t.Fatalf("the copy shares memory with the original: %+v", v)
	}
}

// Decide must not depend on anything but its inputs: same inputs, same output.
func TestDecideIsDeterministic(t *testing.T) {
	for _, tc := range decideCases() {
		a1, r1 := Decide(tc.view, tc.local, now)
		for range 20 {
			a2, r2 := Decide(tc.view, tc.local, now)
			if !reflect.DeepEqual(a1, a2) || r1 != r2 {
				t.Fatalf("case %d %s: not deterministic: %s / %s", tc.n, tc.name, r1, r2)
			}
		}
	}
}

func TestAnswerFailsafe(t *testing.T) {
	fs := func(v *ClusterView) { v.Config.FailsafeMode = true; v.FailsafeMembers = []string{"n1", "n2", "n3"} }
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
		{1, "confirms the leader it knows", view(fs, stale), replica("n2"), "n1", true, now + 520500*time.Microsecond,
			"confirming n1 as leader in failsafe mode; I will not take the lock for 520.5 ms"},
		{2, "failsafe mode off", view(stale), replica("n2"), "n1", false, 0,
			"refusing failsafe confirmation: failsafe_mode is off"},
		{3, "a live leader is someone else", view(fs, func(v *ClusterView) { v.Leader.Holder = "n3" }), replica("n2"), "n1", false, 0,
			"refusing failsafe confirmation to n1: n3 holds the leader lock"},
		{4, "my own acquire in flight", view(fs, stale), replica("n2", func(l *LocalState) { l.Busy = BusyAcquiring }), "n1", false, 0,
			"refusing failsafe confirmation to n1: my own leader lock request is in flight"},
		{5, "I hold the lock", view(fs, func(v *ClusterView) { v.Leader.Holder, v.Leader.ModRevision = "n2", 130 }),
			replica("n2", func(l *LocalState) { l.Lease = &Lease{Revision: 130, SentAt: now - 5*msec} }), "n1", false, 0,
			"refusing failsafe confirmation to n1: I hold the leader lock"},
		{6, "caller was not the last leader", view(fs, stale), replica("n2"), "n3", false, 0,
			"refusing failsafe confirmation to n3: the last leader I saw is n1"},
	}
	for _, tc := range cases {
		ok, until, reason := AnswerFailsafe(tc.view, tc.local, tc.from, now)
		if ok != tc.wantOK || until != tc.wantUntil || reason != tc.wantReason {
			t.Errorf("case %d %s: got (%v, %v, %q), want (%v, %v, %q)", tc.n, tc.name, ok, until, reason, tc.wantOK, tc.wantUntil, tc.wantReason)
		}
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

// failsafeKey: failsafe mode with every member in the failsafe key.
func failsafeKey(v *ClusterView) {
	v.Config.FailsafeMode = true
	v.FailsafeMembers = []string{"n1", "n2", "n3"}
}

// failsafeAcks: the holder's lease expired 1.5 s ago, etcd is unreachable,
// and the named members confirmed it 100 ms ago.
func failsafeAcks(names ...string) func(*LocalState) {
	return func(l *LocalState) {
		l.DCSReachable = false
		l.Lease.SentAt = now - 2*time.Second
		l.FailsafeAcks = map[string]time.Duration{}
		for _, n := range names {
			l.FailsafeAcks[n] = now - 100*msec
		}
	}
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
