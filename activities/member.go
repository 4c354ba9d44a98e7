package activities

// The member steps of the day-2 runbooks (pg-reload, pg-restart, custom runbooks): each talks to
// one member's HA agent over its API (haagent.RestartRequest, haagent.ReloadResponse), never to
// PostgreSQL behind the agent's back (the agent owns the postmaster: a pg_ctl restart would look
// like a crash to it).

import (
	"context"
	"errors"
	"time"
)

// errNotBuilt marks the member steps while they are being written (day-2 I, in progress).
var errNotBuilt = errors.New("not built yet")

// MemberRestartInput restarts one member's PostgreSQL through its agent (POST /restart).
type MemberRestartInput struct {
	DCS    DCSInput  `json:"dcs"`
	Member MemberAPI `json:"member"`
	// Pending: restart only when a setting waits for a restart.
	Pending bool `json:"pending,omitempty"`
	// StartedBefore: restart only a postmaster started before this (the workflow's time when
	// it first scheduled the step), so a retry never restarts the member twice.
	StartedBefore time.Time `json:"started_before"`
}

// MemberRestart restarts a replica's PostgreSQL through its agent and waits until it runs
// again and (for a replica) streams from the leader; unchanged when the conditions say no
// restart is due. The leader is refused (non-retryable): switch over first.
func (a *Activities) MemberRestart(ctx context.Context, in MemberRestartInput) (StepResult, error) {
	return StepResult{}, errNotBuilt
}

// MemberReloadInput reloads one member's configuration through its agent (POST /reload).
type MemberReloadInput struct {
	Member MemberAPI `json:"member"`
}

// MemberReload asks the member's agent to write the cluster's dynamic parameters and reload
// PostgreSQL; the result notes the settings that now wait for a restart (Facts
// "pending_restart": comma-separated names, "" when none).
func (a *Activities) MemberReload(ctx context.Context, in MemberReloadInput) (StepResult, error) {
	return StepResult{}, errNotBuilt
}

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

// WaitMembers polls the cluster's state through the agents (heartbeating) until the condition
// holds on every target; it fails non-retryably with the members' state when Timeout passes.
func (a *Activities) WaitMembers(ctx context.Context, in WaitMembersInput) (StepResult, error) {
	return StepResult{}, errNotBuilt
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
}

// ReadClusterState reads the leader's /cluster (the one contract, haagent.ClusterStatus). It
// changes nothing.
func (a *Activities) ReadClusterState(ctx context.Context, in ClusterStateInput) (ClusterState, error) {
	return ClusterState{}, errNotBuilt
}
