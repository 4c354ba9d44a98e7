package activities

// The DCS and slot steps of pg-member-remove and pg-cluster-remove (memberops.go has their node
// steps): make sure a removed member's key is gone and no key names it, drop its replication
// slot on the leader, and read or delete a removed cluster's keys.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/ha-agent/pgwire"
)

// Step names of the DCS and slot steps.
const (
	StepMemberForget = "forget"
	StepSlotDrop     = "slot-drop"
	StepClusterKeys  = "dcs-keys"
)

// MemberForgetInput makes sure the DCS is done with a member whose agent is stopped.
type MemberForgetInput struct {
	DCS     DCSInput      `json:"dcs"`
	Member  string        `json:"member"`
	Members []MemberAPI   `json:"members"` // the cluster's agents: the leader's /cluster must not list the member
	Timeout time.Duration `json:"timeout"`
}

// Validate checks the DCS, the member's name and the agents.
func (in MemberForgetInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.rule("member", "nodename", in.Member)
	c.memberAPIs("members", in.Members)
	return c.err()
}

// forgetPoll is how often MemberForget looks again.
var forgetPoll = 500 * time.Millisecond

// MemberForget deletes the member's key when it is still there (its agent deletes it on a clean
// stop; a key left by an agent that died is deleted here, only at the revision read), then waits
// until no key names the member: not the sync key (the leader's agent picks another synchronous
// standby, or none) and not the leader's view (/cluster). A member that holds the leader key is
// refused (ErrMemberIsLeader); a member key that comes back means its agent runs again (ErrConflict).
func (a *Activities) MemberForget(ctx context.Context, in MemberForgetInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepMemberForget}
	st, cli, err := a.dcsClient(in.DCS)
	if err != nil {
		return res, err
	}
	defer cli.Close()
	snap, err := st.Load(ctx)
	if err != nil {
		return res, fmt.Errorf("while reading %s from etcd: %w", in.DCS.Cluster, err)
	}
	if leaderHolder(snap) == in.Member {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s holds the leader key of %s: it is not removed; switch over first (pigwf start switchover --cluster %s)", in.Member, in.DCS.Cluster, in.DCS.Cluster),
			ErrMemberIsLeader, nil)
	}
	if m, ok := snap.Members[in.Member]; ok {
		key := st.Key(dcs.KeyMembers + in.Member)
		txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", m.ModRevision)).Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return res, fmt.Errorf("while deleting %s: %w", key, err)
		}
		if !txn.Succeeded {
			return res, fmt.Errorf("%s changed while it was being deleted: is %s's agent running again?", key, in.Member)
		}
		res.Changed = true
		res.Changes = append(res.Changes, "deleted its member key "+key+" (left by an agent that did not stop cleanly)")
	} else {
		res.Notes = append(res.Notes, "its member key is gone")
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return res, err
	}
	start := time.Now()
	for {
		if snap, err = st.Load(ctx); err != nil {
			return res, fmt.Errorf("while reading %s from etcd: %w", in.DCS.Cluster, err)
		}
		if _, back := snap.Members[in.Member]; back {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s's member key is back: its agent runs again (started by hand, or by the host's boot?); stop it and run again", in.Member), ErrConflict, nil, res)
		}
		var waiting []string
		if snap.Sync != nil && slices.Contains(snap.Sync.Value.Standbys, in.Member) {
			waiting = append(waiting, fmt.Sprintf("the sync key still names %s as a synchronous standby of %s", in.Member, snap.Sync.Value.Leader))
		}
		v, live, verr := liveCluster(ctx, client, in.Members)
		switch {
		case verr != nil:
			waiting = append(waiting, verr.Error())
		case !live:
			waiting = append(waiting, "no leader's agent answers as a primary ("+orNone(describeCluster(v))+")")
		default:
			if _, listed := v.Member(in.Member); listed {
				waiting = append(waiting, fmt.Sprintf("the leader %s still lists %s", v.Leader, in.Member))
			}
		}
		if len(waiting) == 0 {
			res.Notes = append(res.Notes, "no key names "+in.Member+"; the leader's view: "+describeCluster(v))
			return res, nil
		}
		last := strings.Join(waiting, "; ")
		heartbeatMsg(ctx, last)
		if time.Since(start) >= timeout {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("after %s: %s", timeout, last), ErrMemberWaitTimeout, nil, res)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%s: %w", last, ctx.Err())
		case <-time.After(forgetPoll):
		}
	}
}

// SlotDropInput drops a removed member's replication slot on the leader.
type SlotDropInput struct {
	Member  string      `json:"member"`
	Members []MemberAPI `json:"members"` // the cluster's agents, to find the leader
	Nodes   []Node      `json:"nodes"`   // the members' nodes (Name: the member)
	Port    int         `json:"port"`
}

// Validate checks the member's name, the agents, the nodes and the port.
func (in SlotDropInput) Validate() error {
	var c inputCheck
	c.rule("member", "nodename", in.Member)
	c.memberAPIs("members", in.Members)
	for i, n := range in.Nodes {
		c.node(fmt.Sprintf("nodes[%d]", i), n)
	}
	c.rule("port", "pg_port", in.Port)
	return c.err()
}

// MemberSlotDrop drops the member's physical replication slot on the leader that takes writes
// now, found through its agent. The leader's agent keeps the slot of a member gone from the DCS
// for half an hour (it may come back) before it drops it; a removal does not wait. Run it once
// the leader no longer lists the member (MemberForget), or its agent would create it again.
// Unchanged when there is no such slot; an active slot (the member still streams) is retried.
func (a *Activities) MemberSlotDrop(ctx context.Context, in SlotDropInput) (StepResult, error) {
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return StepResult{Step: StepSlotDrop}, err
	}
	v, live, err := liveCluster(ctx, client, in.Members)
	if err != nil {
		return StepResult{Step: StepSlotDrop}, err
	}
	if !live {
		return StepResult{Step: StepSlotDrop}, fmt.Errorf("no leader's agent answers as a primary (%s): the slot is dropped on the leader", orNone(describeCluster(v)))
	}
	if v.Leader == in.Member {
		return StepResult{Step: StepSlotDrop}, temporal.NewNonRetryableApplicationError(in.Member+" leads the cluster: its slots are its own", ErrMemberIsLeader, nil)
	}
	i := slices.IndexFunc(in.Nodes, func(n Node) bool { return n.Name == v.Leader })
	if i < 0 {
		return StepResult{Step: StepSlotDrop}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"the leader %s is not a member the inventory names: drop slot %s on it by hand", v.Leader, pgctl.SlotName(in.Member)), ErrConfig, nil)
	}
	leader := in.Nodes[i]
	res := StepResult{Node: leader.Addr, Step: StepSlotDrop, Facts: map[string]string{"leader": v.Leader}}
	slot := pgctl.SlotName(in.Member)
	lit := pgwire.QuoteLiteral(slot)
	out, err := a.psqlStep(ctx, leader, in.Port, "postgres", "SELECT active FROM pg_replication_slots WHERE slot_name = "+lit+";", StepSlotDrop)
	if err != nil {
		return res, err
	}
	switch strings.TrimSpace(out) {
	case "":
		res.Notes = append(res.Notes, fmt.Sprintf("the leader %s has no slot %s", v.Leader, slot))
		return res, nil
	case "t":
		return res, fmt.Errorf("slot %s on the leader %s is active: something still streams through it", slot, v.Leader)
	}
	if _, err := a.psqlStep(ctx, leader, in.Port, "postgres",
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "+lit+" AND NOT active;", StepSlotDrop); err != nil {
		return res, err
	}
	res.Changed = true
	res.Changes = append(res.Changes, fmt.Sprintf("dropped replication slot %s on the leader %s", slot, v.Leader))
	return res, nil
}

// ClusterKeys is what the DCS holds of a cluster.
type ClusterKeys struct {
	Prefix  string   `json:"prefix"`
	Keys    int      `json:"keys"`
	Leader  string   `json:"leader,omitempty"`  // the leader key's holder
	Members []string `json:"members,omitempty"` // the member keys (agents running), sorted
	Paused  bool     `json:"paused,omitempty"`
}

// ClusterKeysInput reads or deletes a cluster's keys.
type ClusterKeysInput struct {
	DCS DCSInput `json:"dcs"`
}

// Validate checks the DCS.
func (in ClusterKeysInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	return c.err()
}

// ReadClusterKeys reads the cluster's keys from etcd (not through its agents, which may all be
// down). It changes nothing.
func (a *Activities) ReadClusterKeys(ctx context.Context, in ClusterKeysInput) (ClusterKeys, error) {
	st, cli, err := a.dcsClient(in.DCS)
	if err != nil {
		return ClusterKeys{}, err
	}
	defer cli.Close()
	return readKeys(ctx, st, cli)
}

func readKeys(ctx context.Context, st *dcs.Store, cli *clientv3.Client) (ClusterKeys, error) {
	out := ClusterKeys{Prefix: st.Prefix()}
	resp, err := cli.Get(ctx, st.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return out, fmt.Errorf("while counting the keys under %s: %w", st.Prefix(), err)
	}
	out.Keys = int(resp.Count)
	snap, err := st.Load(ctx)
	if err != nil {
		return out, fmt.Errorf("while reading %s from etcd: %w", st.Prefix(), err)
	}
	out.Leader, out.Paused = leaderHolder(snap), snap.Pause != nil
	for m := range snap.Members {
		out.Members = append(out.Members, m)
	}
	sort.Strings(out.Members)
	return out, nil
}

// keysGoneWithin is how long ClusterKeysDelete waits for the member keys to go: past the agents'
// lease (30 s), so keys an agent left when it died have expired.
var keysGoneWithin = 90 * time.Second

// ClusterKeysDelete deletes every key under the cluster's prefix, once no agent runs: while a
// member key stays (an agent still running would write its keys again) past keysGoneWithin, it
// is refused (ErrConflict). The leader key is not leased and outlives an agent that died, so it
// refuses nothing: run this only after every member's agent was stopped. Unchanged when there
// are no keys.
func (a *Activities) ClusterKeysDelete(ctx context.Context, in ClusterKeysInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepClusterKeys}
	st, cli, err := a.dcsClient(in.DCS)
	if err != nil {
		return res, err
	}
	defer cli.Close()
	// Keys of an agent that did not stop cleanly stay until their lease runs out (the member TTL):
	// wait that long, no longer.
	deadline := time.Now().Add(keysGoneWithin)
	for {
		k, err := readKeys(ctx, st, cli)
		if err != nil {
			return res, err
		}
		var held []string
		if len(k.Members) > 0 {
			held = append(held, "member keys of "+strings.Join(k.Members, ", "))
		}
		if k.Keys == 0 {
			res.Notes = append(res.Notes, "no keys under "+k.Prefix)
			return res, nil
		}
		if len(held) == 0 {
			if k.Leader != "" {
				// Not leased: a leader key outlives an agent that died; the run stopped them all.
				res.Notes = append(res.Notes, "the leader key still named "+k.Leader+", whose agent is stopped")
			}
			break
		}
		why := fmt.Sprintf("%s holds %s: an agent of %s still runs, or its keys wait for their lease to run out", k.Prefix, strings.Join(held, " and "), in.DCS.Cluster)
		if time.Now().After(deadline) {
			return res, temporal.NewNonRetryableApplicationError(why+"; the keys were not deleted: stop the agents (pigwf ha list shows them) and run again", ErrConflict, nil)
		}
		heartbeatMsg(ctx, why)
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%s: %w", why, ctx.Err())
		case <-time.After(forgetPoll):
		}
	}
	del, err := cli.Delete(ctx, st.Prefix(), clientv3.WithPrefix())
	if err != nil {
		return res, fmt.Errorf("while deleting the keys under %s: %w", st.Prefix(), err)
	}
	res.Changed = del.Deleted > 0
	res.Changes = append(res.Changes, fmt.Sprintf("deleted %d keys under %s", del.Deleted, st.Prefix()))
	return res, nil
}
