package haagent

// bootstrapCases: an empty data directory, the initialize race, a foreign
// system identifier, and the first lock of a cluster that was never led.
func bootstrapCases() []decideCase {
	return []decideCase{
		// initialize race, clone, system identifier
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

		// bootstrap adoption (the PgClusterCreate contract)
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
	}
}
