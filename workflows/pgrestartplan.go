package workflows

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pigwf/pigwf/activities"
)

// The pg-restart plan, as data decided from the cluster's state before anything changes: which
// members, in which order, and what refuses the run. Pure functions of the input and the
// state, so the run, its tests and its result all read the same plan.

// PgRestartPlan is what a pg-restart run does.
type PgRestartPlan struct {
	Leader string `json:"leader"`
	// Replicas are the replicas to restart, one at a time, in this order.
	Replicas []string `json:"replicas,omitempty"`
	// RestartLeader: the leader is a target; after the replicas a switchover (approved) moves
	// the primary role away, then the old leader is restarted as a replica.
	RestartLeader bool `json:"restart_leader,omitempty"`
	// Left are the members not restarted and why ("pg-test-3: nothing waits for a restart").
	Left []string `json:"left,omitempty"`
	View string   `json:"view"` // the members as the leader reported them
}

// Nothing says there is no member to restart.
func (p PgRestartPlan) Nothing() bool { return len(p.Replicas) == 0 && !p.RestartLeader }

// Describe is the plan in words: "pg-test-2, pg-test-3 one at a time; then a switchover away
// from pg-test-1 and its restart as a replica".
func (p PgRestartPlan) Describe() string {
	if p.Nothing() {
		return "nothing to restart"
	}
	var parts []string
	if len(p.Replicas) > 0 {
		parts = append(parts, "restart "+strings.Join(p.Replicas, ", ")+" one at a time, each streaming again before the next")
	}
	if p.RestartLeader {
		parts = append(parts, fmt.Sprintf("switch over from the leader %s (after an approval), then restart %s as a replica", p.Leader, p.Leader))
	}
	return strings.Join(parts, "; then ")
}

// planRestart decides the plan from the cluster's state; problems (each with its fix) refuse
// the run before anything changes.
func planRestart(in PgRestartInput, st activities.ClusterState) (PgRestartPlan, []string) {
	plan := PgRestartPlan{Leader: st.Leader, View: st.View}
	var problems []string
	if why := st.Unhealthy(); why != "" {
		problems = append(problems, why+": pg-restart restarts members only while a leader takes writes (`pigwf ha list --cluster "+in.Cluster+"` shows the members)")
	}
	if st.Paused {
		problems = append(problems, "the cluster is in maintenance mode, where the agents change nothing: `pigwf ha resume --cluster "+in.Cluster+"` first")
	}
	all := append([]string{st.Leader}, st.Replicas...)
	if st.Leader == "" {
		all = st.Replicas
	}
	targets := all
	if in.Member != "" {
		if !slices.Contains(all, in.Member) {
			problems = append(problems, fmt.Sprintf("--member %s is not a member of %s (members: %s)", in.Member, in.Cluster, strings.Join(all, ", ")))
		}
		targets = []string{in.Member}
	}
	if len(problems) > 0 {
		return plan, problems
	}
	for _, m := range all {
		switch {
		case !slices.Contains(targets, m):
			if in.Member != "" {
				plan.Left = append(plan.Left, m+": not the --member")
			}
		case in.Pending && !slices.Contains(st.PendingRestart, m):
			plan.Left = append(plan.Left, m+": nothing waits for a restart")
		case !slices.ContainsFunc(in.Members, func(a activities.MemberAPI) bool { return a.Name == m }):
			problems = append(problems, fmt.Sprintf("%s is a member of %s in the DCS but not in the inventory, so pigwf cannot reach its agent: add it to the inventory, or restart only the others with --member", m, in.Cluster))
		case m == st.Leader:
			plan.RestartLeader = true
		default:
			plan.Replicas = append(plan.Replicas, m)
		}
	}
	if plan.RestartLeader && len(st.Streaming) == 0 {
		problems = append(problems, fmt.Sprintf("restarting the leader %s needs a switchover, and no replica streams to take over (%s); pigwf never restarts a leader in place", st.Leader, st.View))
	}
	return plan, problems
}

// switchoverCandidate is the member the switchover should promote: a synchronous standby that
// streams and runs with its settings in force (restarted by this run, or waiting for nothing),
// first by name; "" lets the switchover choose (a synchronous, else the least-lagging, standby).
func switchoverCandidate(st activities.ClusterState, restarted []string) string {
	for _, m := range st.SyncStandbys {
		if slices.Contains(restarted, m) || !slices.Contains(st.PendingRestart, m) {
			return m
		}
	}
	return ""
}
