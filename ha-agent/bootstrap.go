package haagent

import "fmt"

func (d *decider) emptyDataDir() (Action, string) {
	if !d.l.DCSReachable {
		return Action{}, "no action: my data directory is empty and etcd is unreachable"
	}
	in, lr := d.v.Initialize, d.v.Leader
	if in == nil && lr == nil {
		if d.l.Tags.NoFailover {
			return Action{}, "no action: my data directory is empty and I am tagged nofailover, so I may not bootstrap; waiting for a leader to clone from"
		}
		return Action{Kind: ActionClaimInitialize},
			"initialize race: no initialize key and no leader; claiming the initialize key to bootstrap a new cluster"
	}
	if in != nil && in.Sysid == "" && in.ClaimedBy == d.l.Name && lr == nil {
		return Action{Kind: ActionBootstrap}, "bootstrapping a new cluster: I won the initialize race"
	}
	if lr != nil && !d.v.LeaderStale(d.now) && lr.Holder != d.l.Name {
		if m, ok := d.v.Members[lr.Holder]; ok && m.State == PGRunning {
			return Action{Kind: ActionCloneFromLeader, Leader: lr.Holder}, fmt.Sprintf(
				"cloning from leader %s: my data directory is empty", lr.Holder)
		}
		return Action{}, fmt.Sprintf("no action: my data directory is empty and leader %s is not running yet", lr.Holder)
	}
	if in != nil && in.Sysid == "" && in.ClaimedBy != d.l.Name {
		return Action{}, fmt.Sprintf("no action: my data directory is empty; %s is bootstrapping the cluster", in.ClaimedBy)
	}
	return Action{}, "no action: my data directory is empty and there is no live leader to clone from"
}

// firstLeader: the cluster was never led (bootstrap adoption). The
// cluster-creation workflow initdb'd the primary named in the initialize
// key and cloned the replicas from it; only that member may take the
// first lock, and it takes it before starting PostgreSQL as a primary, so
// no PostgreSQL of this cluster ever takes writes without the lock. A
// replica must not race here: it would become leader of a cluster whose
// primary never ran under HA.
func (d *decider) firstLeader(in *InitializeRecord) (Action, string) {
	if in.ClaimedBy != d.l.Name {
		return Action{}, fmt.Sprintf("no action: the cluster was never led; waiting for %s, named in the initialize key, to take the first leader lock", in.ClaimedBy)
	}
	if in.Sysid != "" && d.l.Sysid == "" {
		return Action{}, "no action: the initialize key names me to lead the new cluster, but my data directory's system identifier is not known yet"
	}
	return Action{Kind: ActionAcquireLeader, Term: 1},
		"taking the first leader lock: the cluster was never led and the initialize key names me with my data directory's system identifier"
}
