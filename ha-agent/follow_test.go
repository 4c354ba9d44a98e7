package haagent

// followCases: members that follow a live leader.
func followCases() []decideCase {
	return []decideCase{
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

		// a standby that is still starting
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
