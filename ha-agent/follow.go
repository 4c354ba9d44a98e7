package haagent

import "fmt"

// primaryWithoutLease: my PostgreSQL takes writes but I hold no lease.
func (d *decider) primaryWithoutLease() (Action, string) {
	if lr := d.v.Leader; lr != nil {
		if lr.Holder == d.l.Name {
			return Action{Kind: ActionFenceWrites},
				"fencing: the leader key names me but this agent holds no lease for it (restarted?), so I cannot prove no other member was promoted"
		}
		return Action{Kind: ActionDemote, Leader: lr.Holder}, fmt.Sprintf(
			"demoting: %s holds the leader lock and I am running as a primary without it", lr.Holder)
	}
	if in := d.v.Initialize; in != nil && in.ClaimedBy == d.l.Name && (in.Sysid == "" || in.Sysid == d.l.Sysid) && !d.v.everLed() {
		if !d.l.DCSReachable {
			return Action{}, "no action: I just bootstrapped the cluster but etcd is unreachable"
		}
		return Action{Kind: ActionAcquireLeader, Term: 1}, "taking the leader lock: I just bootstrapped the cluster"
	}
	return Action{Kind: ActionFenceWrites}, "fencing: I am running as a primary without the leader lock"
}

// follow: a live leader exists and it is not me.
func (d *decider) follow() (Action, string) {
	leader := d.v.Leader.Holder
	if d.l.Diverged {
		switch {
		case !d.cfg.UsePgRewind:
			return Action{Kind: ActionReclone, Leader: leader}, fmt.Sprintf(
				"re-cloning from leader %s: my WAL diverged from its timeline and use_pg_rewind is off", leader)
		case d.l.RewindFailed:
			return Action{Kind: ActionReclone, Leader: leader}, fmt.Sprintf(
				"re-cloning from leader %s: pg_rewind failed (%s)", leader, orUnknown(d.l.RewindError))
		}
		return Action{Kind: ActionRewind, Leader: leader}, fmt.Sprintf(
			"rewinding from leader %s: my WAL diverged from its timeline (mine %d, leader's %d)", leader, d.l.Timeline, d.v.Leader.Timeline)
	}
	switch d.l.Postgres {
	case PGCrashed:
		return Action{Kind: ActionRestartPostgres, Leader: leader}, fmt.Sprintf(
			"restarting crashed PostgreSQL as a replica of leader %s", leader)
	case PGStopped, PGUnknown:
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("starting PostgreSQL as a replica of leader %s", leader)
	case PGStarting:
		if d.l.InRecovery && d.l.Upstream != leader {
			// A standby may need WAL from the leader to become consistent at
			// all (it was rewound against a member that lost the lock since):
			// waiting for it to finish starting could wait forever.
			from := "no upstream"
			if d.l.Upstream != "" {
				from = d.l.Upstream
			}
			return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf(
				"switching upstream from %s to leader %s while PostgreSQL is still starting: it may need the leader's WAL to become consistent", from, leader)
		}
		return Action{}, fmt.Sprintf("no action: waiting for PostgreSQL to finish starting (leader %s)", leader)
	}
	if d.l.Upstream != leader {
		if d.l.Upstream == "" {
			return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("following leader %s: I had no upstream", leader)
		}
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf("switching upstream from %s to leader %s", d.l.Upstream, leader)
	}
	if d.l.WALReceiverStopped {
		return Action{Kind: ActionFollow, Leader: leader}, fmt.Sprintf(
			"resuming WAL streaming from leader %s: my WAL receiver was stopped for a promotion that did not happen", leader)
	}
	if f := d.v.Failover; f != nil && f.To == d.l.Name {
		return Action{}, fmt.Sprintf("no action: a switchover to me was requested; waiting for leader %s to demote and release the lock", leader)
	}
	return Action{}, fmt.Sprintf("no action: I am %s, a replica following leader %s", d.l.Name, leader)
}
