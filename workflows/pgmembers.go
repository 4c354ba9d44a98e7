package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// What pg-reinit, pg-member-remove and pg-cluster-remove share: their input from the inventory,
// their first step (the cluster to themselves), the key that names what a run leaves on the
// nodes, and the node steps on one member (memberops: stop the agent, move the data aside, start
// the agent, purge).

// PgMembersTarget is the cluster the three runbooks work on, resolved from the inventory
// (starter.PgMembersTarget).
type PgMembersTarget struct {
	Cluster string                 `json:"cluster"`
	DCS     activities.DCSInput    `json:"dcs"`
	Members []activities.MemberAPI `json:"members"`
	// Nodes are the members' SSH settings (Node.Name is the member's nodename).
	Nodes       []activities.Node `json:"nodes"`
	Spec        activities.PGSpec `json:"spec"`
	DryRun      bool              `json:"dry_run,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	RequestedBy string            `json:"requested_by"`
}

// node is the member's SSH settings; ok is false for a member the inventory does not name.
func (t PgMembersTarget) node(member string) (activities.Node, bool) {
	i := slices.IndexFunc(t.Nodes, func(n activities.Node) bool { return n.Name == member })
	if i < 0 {
		return activities.Node{Name: member}, false
	}
	return t.Nodes[i], true
}

// names are the inventory's members, in its order.
func (t PgMembersTarget) names() []string {
	out := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		out[i] = n.Name
	}
	return out
}

// PgMemberResult is the record of a pg-reinit or pg-member-remove run.
type PgMemberResult struct {
	Cluster string `json:"cluster"`
	Member  string `json:"member"`
	Leader  string `json:"leader,omitempty"`
	// Plan: what the run does (or, in a dry run, would do), in order.
	Plan []string `json:"plan,omitempty"`
	// Notes: what the plan found worth saying and did not refuse.
	Notes []string `json:"notes,omitempty"`
	// Aside is where the member's data directory was moved ("" when there was none to keep).
	Aside    string                  `json:"aside,omitempty"`
	Steps    []activities.StepResult `json:"steps,omitempty"`
	Approval *ApprovalState          `json:"approval,omitempty"`
	Outcome  string                  `json:"outcome"` // reinitialized | removed | dry run | refused | failed
}

// Error types of a pg-reinit, pg-member-remove or pg-cluster-remove run that did not finish.
const (
	PgMembersRefusedType = "PgMembersRefused" // refused by the prechecks or the approval: nothing changed
	PgMembersFailedType  = "PgMembersFailed"  // a step failed; the message says what was done
)

var (
	membersPlanStep = controlStep("plan", within(time.Minute, 3))
)

func agentStopStep(member string) step {
	s := memberStep(member, activities.StepAgentStop, within(3*time.Minute, 3))
	s.what = "stop the HA agent and its PostgreSQL"
	return s
}

func agentStartStep(member string) step {
	s := memberStep(member, activities.StepAgentStart, within(time.Minute, 3))
	s.what = "start the HA agent"
	return s
}

func dataAsideStep(member string) step {
	s := memberStep(member, activities.StepDataAside, within(10*time.Minute, 3))
	s.what = "move the data directory aside"
	return s
}

// runKey names what a run leaves on the nodes (activities.AsidePath): its start, from its history.
func runKey(ctx workflow.Context) string {
	return workflow.GetInfo(ctx).WorkflowStartTime.UTC().Format(activities.AsideKeyLayout)
}

// memberNodeInput is the node steps' input for member.
func (t PgMembersTarget) memberNodeInput(member, key string) activities.MemberNodeInput {
	n, _ := t.node(member)
	return activities.MemberNodeInput{Member: member, Node: n, Spec: t.Spec, Key: key}
}

// dryRunSteps marks steps as what a dry run would do.
func dryRunSteps(track *tracker, steps []step, plan []string) {
	for i, s := range steps {
		detail := "dry run: not run"
		if i < len(plan) {
			detail = "dry run: would " + plan[i]
		}
		track.set(s, StateSkipped, detail)
	}
}

// unknownMember is the refusal of a --member the inventory does not name.
func unknownMember(t PgMembersTarget, member string) string {
	return fmt.Sprintf("--member %s is not a member of %s in the inventory (members: %s): give one of them", member, t.Cluster, strings.Join(t.names(), ", "))
}

// replicaTargetWords say, in a refusal, why a runbook that acts on one replica needs what it
// checks: a leader that takes writes, agents that act (not paused), and not the leader.
type replicaTargetWords struct {
	runbook   string // "pg-reinit"
	needsLead string // "clones the member from a leader that takes writes"
	pausedWhy string // "no clone either"
	leaderFix string // "re-creates replicas only; switch over first (...), then reinit it as a replica"
}

// replicaTargetProblems is the one rule of pg-reinit and pg-member-remove: the member is in
// the inventory, the cluster has a leader that takes writes, it is not paused, and the member
// is not the leader. Each problem names its fix.
func replicaTargetProblems(in PgMembersTarget, member string, st activities.ClusterState, w replicaTargetWords) []string {
	var problems []string
	if _, ok := in.node(member); !ok {
		problems = append(problems, unknownMember(in, member))
	}
	if why := st.Unhealthy(); why != "" {
		problems = append(problems, why+": "+w.runbook+" "+w.needsLead+" (`pigwf ha list --cluster "+in.Cluster+"`)")
	}
	if st.Paused {
		problems = append(problems, "the cluster is in maintenance mode, where the agents change nothing ("+w.pausedWhy+"): `pigwf ha resume --cluster "+in.Cluster+"` first")
	}
	if st.Leader != "" && member == st.Leader {
		problems = append(problems, fmt.Sprintf("--member %s is the leader of %s: %s", member, in.Cluster,
			strings.ReplaceAll(w.leaderFix, "{cluster}", in.Cluster)))
	}
	return problems
}
