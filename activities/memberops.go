package activities

// The node steps of pg-reinit, pg-member-remove and pg-cluster-remove: stop a member's HA agent
// (which stops its PostgreSQL and leaves the DCS on its own), start it again, move its data
// directory aside (never deleting it) and, after a purge's own approval, delete what was moved
// aside. The DCS and slot steps of the same runbooks are in memberdcs.go.

import (
	"context"
	"fmt"
	"regexp"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// Step names of the member operations, as their StepResults report them.
const (
	StepAgentStop  = "agent-stop"
	StepAgentStart = "agent-start"
	StepDataAside  = "data-aside"
	StepDataPurge  = "data-purge"
)

// MemberNodeInput is one member's node, the cluster's layout, and the run's key, which names what
// the run leaves on the node (the data directory kept aside): a retry finds its own.
type MemberNodeInput struct {
	Member string `json:"member"`
	Node   Node   `json:"node"`
	Spec   PGSpec `json:"spec"`
	// Key: the run's start, UTC, as 20261130T174800Z (AsideKey).
	Key string `json:"key"`
}

// keyPattern is what a run's key looks like (AsideKey's format): nothing else reaches a path.
var keyPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)

// Validate checks the member, its node, the cluster's layout and the key.
func (in MemberNodeInput) Validate() error {
	var c inputCheck
	c.memberNode(in)
	return c.err()
}

func (c *inputCheck) memberNode(in MemberNodeInput) {
	c.rule("member", "nodename", in.Member)
	c.node("node", in.Node)
	c.pgSpec("spec", in.Spec)
	if !keyPattern.MatchString(in.Key) {
		c.add("key", fmt.Sprintf("%q is not a run's key", in.Key), "give the run's start in UTC as "+AsideKeyLayout)
	}
}

// AgentStopInput stops a member's HA agent.
type AgentStopInput struct {
	MemberNodeInput
	// Disable: keep the agent from starting at the host's next start too (a removal).
	Disable bool `json:"disable,omitempty"`
	// DCS, when given, is read first: a member that holds the leader key is refused
	// (ErrMemberIsLeader), since stopping its agent would be a switchover nobody approved.
	DCS DCSInput `json:"dcs,omitzero"`
}

// Validate checks MemberNodeInput's fields and the DCS when given.
func (in AgentStopInput) Validate() error {
	var c inputCheck
	c.memberNode(in.MemberNodeInput)
	c.optionalDCS("dcs", in.DCS)
	return c.err()
}

// ErrMemberIsLeader: the member holds the cluster's leader key; the step changed nothing.
const ErrMemberIsLeader = "MemberIsLeader"

// AgentStop stops the member's HA agent, which stops its PostgreSQL (fast) and deletes its member
// key as it ends; with Disable, it also stays stopped across the host's restarts. Unchanged when
// it is stopped already. Fails when PostgreSQL still runs afterwards.
func (a *Activities) AgentStop(ctx context.Context, in AgentStopInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: StepAgentStop}
	if len(in.DCS.Endpoints) > 0 {
		if err := a.refuseLeader(ctx, in.DCS, in.Member); err != nil {
			return res, err
		}
	}
	script := PgNodeInput{Spec: in.Spec}.pgEnv() + withInputs(haAgentStopScript,
		shellVar{"conf", AgentConfigPath}, shellVar{"bin", AgentBinaryPath}, shellVar{"disable", flag(in.Disable)})
	return a.runStep(ctx, in.Node, StepAgentStop, script, nil)
}

// refuseLeader fails, non-retryably, when the DCS's leader key names member.
func (a *Activities) refuseLeader(ctx context.Context, d DCSInput, member string) error {
	_, snap, closeFn, err := a.loadKeys(ctx, d)
	if err != nil {
		return err
	}
	defer closeFn()
	if holder := leaderHolder(snap); holder == member {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s holds the leader key of %s now (a failover since the plan?): its agent was not stopped; switch over first (pigwf start switchover --cluster %s), then run again",
			member, d.Cluster, d.Cluster), ErrMemberIsLeader, nil)
	}
	return nil
}

func leaderHolder(snap *dcs.Snapshot) string {
	if snap.Leader == nil {
		return ""
	}
	return snap.Leader.Value.Holder
}

// AgentStart starts the member's HA agent as installed (unchanged when it runs); its PostgreSQL
// starts with it, cloned from the leader first when its data directory is empty.
func (a *Activities) AgentStart(ctx context.Context, in MemberNodeInput) (StepResult, error) {
	script := PgNodeInput{Spec: in.Spec}.pgEnv() + withInputs(haAgentStartScript,
		shellVar{"conf", AgentConfigPath}, shellVar{"bin", AgentBinaryPath})
	return a.runStep(ctx, in.Node, StepAgentStart, script, nil)
}

// DataAsideInput moves a member's data directory aside.
type DataAsideInput struct {
	MemberNodeInput
	Why string `json:"why"` // AsideReinit (an empty data directory is left for the agent's clone) or AsideRemoved
}

// Validate checks MemberNodeInput's fields and why.
func (in DataAsideInput) Validate() error {
	var c inputCheck
	c.memberNode(in.MemberNodeInput)
	if in.Why != AsideReinit && in.Why != AsideRemoved {
		c.add("why", fmt.Sprintf("%q is not a reason to move a data directory aside", in.Why), "give "+AsideReinit+" or "+AsideRemoved)
	}
	return c.err()
}

// DataAside moves the member's data directory aside to AsidePath (never deleting it) while its
// PostgreSQL is stopped; Facts "aside" is where it went ("" when there was nothing to keep). For
// a reinit an empty data directory is left, for the agent to clone the leader into; for a removal
// none, and the node's markers of the cluster's data go.
func (a *Activities) DataAside(ctx context.Context, in DataAsideInput) (StepResult, error) {
	script := PgNodeInput{Spec: in.Spec}.pgEnv() + dataAsideScript(asideMove{
		aside: AsidePath(in.Spec.DataDir, in.Why, in.Key), empty: in.Why == AsideReinit, forget: in.Why == AsideRemoved})
	return a.runStep(ctx, in.Node, StepDataAside, script, nil)
}

// DataPurge deletes, for good, the data directory the removal run with Key moved aside
// (AsidePath(…, AsideRemoved, Key): no other path reaches it). Unchanged when it is gone.
func (a *Activities) DataPurge(ctx context.Context, in MemberNodeInput) (StepResult, error) {
	script := PgNodeInput{Spec: in.Spec}.pgEnv() + withInputs(pgDataPurgeScript,
		shellVar{"aside", AsidePath(in.Spec.DataDir, AsideRemoved, in.Key)})
	return a.runStep(ctx, in.Node, StepDataPurge, script, nil)
}
