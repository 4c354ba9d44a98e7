package haagent

// syncCases: the synchronous standbys as PostgreSQL reports them.
func syncCases() []decideCase {
	return []decideCase{
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
	}
}
