package haagent

// raceCases: the leader is stale or gone; who may take the lock.
func raceCases() []decideCase {
	return []decideCase{
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
	}
}
