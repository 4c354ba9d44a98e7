package haagent

// holderCases: the holder's PostgreSQL crashed, stopped, restarting or
// being promoted.
func holderCases() []decideCase {
	return []decideCase{
		// crashed or stopped PostgreSQL
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

		// two-phase promotion after acquiring
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

		// restarted agent: PostgreSQL went down with it
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

		// a holder whose promotion never completed
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
	}
}

func withUpstream(m Member, upstream string) Member {
	m.Upstream = upstream
	return m
}
