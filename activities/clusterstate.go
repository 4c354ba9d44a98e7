package activities

// The member steps that only look (see member.go): the cluster's state to plan from, and a
// wait until a condition holds on members. Both read the leader's own GET /cluster
// (haagent.ClusterStatus, the one contract), whose roles and streaming states come from the
// leader's pg_stat_replication read during the request; another member's answer is only what
// the leader last published in the DCS, which can say "streaming" about a replica that has
// just been restarted.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// WaitMembersInput waits until a condition holds on members, within Timeout.
type WaitMembersInput struct {
	DCS     DCSInput    `json:"dcs"`
	Members []MemberAPI `json:"members"` // every member (the leader's /cluster answers for all)
	Targets []string    `json:"targets"` // the members the condition must hold on
	// Until: "streaming" (each target streams from the leader) or "lag" (each target's replay
	// lag is at most Lag bytes and it streams).
	Until   string        `json:"until"`
	Lag     uint64        `json:"lag,omitempty"`
	Timeout time.Duration `json:"timeout"`
}

// The conditions WaitMembers knows.
const (
	UntilStreaming = "streaming"
	UntilLag       = "lag"
)

// DefaultWaitTimeout is WaitMembers' timeout when the input gives none.
const DefaultWaitTimeout = 5 * time.Minute

// memberPoll is how often WaitMembers asks the leader again.
var memberPoll = 500 * time.Millisecond

// WaitMembers polls the cluster's state through the agents (heartbeating) until the condition
// holds on every target; it fails non-retryably with the members' state when Timeout passes.
func (a *Activities) WaitMembers(ctx context.Context, in WaitMembersInput) (StepResult, error) {
	res := StepResult{Node: strings.Join(in.Targets, ","), Step: StepMemberWait}
	if in.Until != UntilStreaming && in.Until != UntilLag {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("wait: until is %q; give %q or %q", in.Until, UntilStreaming, UntilLag), ErrConfig, nil)
	}
	if len(in.Targets) == 0 {
		res.Notes = []string{"no member to wait for"}
		return res, nil
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return res, err
	}
	start := time.Now()
	// Within the attempt's own deadline too, so its failure carries the members' state rather
	// than only a timeout.
	if dl, ok := ctx.Deadline(); ok && dl.Sub(start)-time.Second < timeout {
		timeout = (dl.Sub(start) - time.Second).Round(time.Second)
	}
	for {
		var last string
		v, live, err := liveCluster(ctx, client, in.Members)
		switch {
		case err != nil:
			last = err.Error()
		case !live:
			last = "the leader's agent does not answer as a primary (" + orNone(describeCluster(v)) + ")"
		default:
			var waiting []string
			for _, t := range in.Targets {
				m, ok := v.Member(t)
				if ok && m.Role == haagent.ClusterRoleLeader {
					return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
						"wait until %s: %s leads the cluster and streams from no one; wait on replicas only (members: %s)", in.Until, t, describeCluster(v)), ErrConflict, nil)
				}
				if why := notYet(m, ok, t, in.Until, in.Lag); why != "" {
					waiting = append(waiting, why)
				} else {
					res.Notes = append(res.Notes, fmt.Sprintf("%s streams, lag %s", t, lagText(m)))
				}
			}
			if len(waiting) == 0 {
				return res, nil
			}
			res.Notes = nil
			last = strings.Join(waiting, "; ") + " (members: " + describeCluster(v) + ")"
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "waiting until "+in.Until+": "+last)
		}
		if time.Since(start) >= timeout {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("after %s, still waiting until %s: %s", timeout, in.Until, last), ErrMemberWaitTimeout, nil)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("waiting until %s: %s: %w", in.Until, last, ctx.Err())
		case <-time.After(memberPoll):
		}
	}
}

// notYet is why the condition does not hold on target in the leader's view ("" when it holds).
func notYet(m haagent.ClusterMember, listed bool, target, until string, maxLag uint64) string {
	switch {
	case !listed:
		return target + " is not a member the leader lists"
	case m.State != haagent.ReplicationStreaming:
		return fmt.Sprintf("%s is %s, not streaming", target, orNone(m.State))
	case until == UntilLag && m.LagBytes == nil:
		return target + " reports no lag"
	case until == UntilLag && *m.LagBytes > maxLag:
		return fmt.Sprintf("%s lags %d bytes (at most %d)", target, *m.LagBytes, maxLag)
	}
	return ""
}

func lagText(m haagent.ClusterMember) string {
	if m.LagBytes == nil {
		return "unknown"
	}
	return fmt.Sprintf("%d bytes", *m.LagBytes)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ClusterStateInput reads a cluster's members and leader through the agents.
type ClusterStateInput struct {
	DCS     DCSInput    `json:"dcs"`
	Members []MemberAPI `json:"members"`
}

// ClusterState is what a runbook plans from: the leader, the replicas (sorted), and the
// members waiting for a restart.
type ClusterState struct {
	Leader         string   `json:"leader"`
	Replicas       []string `json:"replicas"`
	PendingRestart []string `json:"pending_restart,omitempty"`
	View           string   `json:"view"` // the members as the leader reports them, for people

	// LeaderPrimary: the leader's own agent answered, and says its PostgreSQL takes writes now
	// (GET /primary 200), so the roles and states below are its pg_stat_replication's, read
	// now. False: they are what the leader last published in the DCS, or there is no leader.
	LeaderPrimary bool `json:"leader_primary"`
	// Paused: maintenance mode (`pigwf ha pause`): the agents change nothing.
	Paused bool `json:"paused,omitempty"`
	// Streaming are the replicas that stream from the leader; SyncStandbys those of them the
	// leader confirms commits with (sorted).
	Streaming    []string `json:"streaming,omitempty"`
	SyncStandbys []string `json:"sync_standbys,omitempty"`
}

// Unhealthy is why the state has no leader that takes writes now; "" when it has one.
func (s ClusterState) Unhealthy() string {
	switch {
	case s.Leader == "":
		return "the cluster has no leader"
	case !s.LeaderPrimary:
		return "its leader " + s.Leader + " does not answer as a primary"
	}
	return ""
}

// ReadClusterState reads the leader's /cluster (the one contract, haagent.ClusterStatus). It
// changes nothing.
func (a *Activities) ReadClusterState(ctx context.Context, in ClusterStateInput) (ClusterState, error) {
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return ClusterState{}, err
	}
	v, live, err := liveCluster(ctx, client, in.Members)
	if err != nil {
		return ClusterState{}, err
	}
	return clusterState(v, live), nil
}

// clusterState is the plan's view of a /cluster answer; live says the leader's agent gave it.
func clusterState(v haagent.ClusterStatus, live bool) ClusterState {
	st := ClusterState{Leader: v.Leader, LeaderPrimary: live && v.Leader != "", Paused: v.Paused, View: describeCluster(v)}
	if !st.LeaderPrimary {
		st.View += " (as the DCS last had it: no leader's agent answered as a primary)"
	}
	for _, m := range v.Members {
		if m.PendingRestart {
			st.PendingRestart = append(st.PendingRestart, m.Name)
		}
		if m.Name == v.Leader {
			continue
		}
		st.Replicas = append(st.Replicas, m.Name)
		if m.State == haagent.ReplicationStreaming {
			st.Streaming = append(st.Streaming, m.Name)
			if m.Role == haagent.ClusterRoleSyncStandby {
				st.SyncStandbys = append(st.SyncStandbys, m.Name)
			}
		}
	}
	for _, l := range [][]string{st.Replicas, st.PendingRestart, st.Streaming, st.SyncStandbys} {
		sort.Strings(l)
	}
	return st
}

// liveCluster is the cluster as its leader's agent reports it now: any member's agent names the
// leader, then the leader's own agent answers. live is false when that second answer is
// missing or the leader's agent does not say it takes writes (v is then the best answer had);
// err only when no agent answered at all.
func liveCluster(ctx context.Context, client *http.Client, members []MemberAPI) (v haagent.ClusterStatus, live bool, err error) {
	v, err = clusterView(ctx, client, members, "")
	if err != nil {
		return v, false, err
	}
	i := slices.IndexFunc(members, func(m MemberAPI) bool { return m.Name == v.Leader })
	if v.Leader == "" || i < 0 {
		return v, false, nil
	}
	leader := members[i]
	lv, err := clusterView(ctx, client, []MemberAPI{leader}, leader.Name)
	if err != nil || lv.Leader != leader.Name {
		return v, false, nil
	}
	return lv, isPrimaryNow(ctx, client, leader.APIURL), nil
}
