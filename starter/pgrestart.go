package starter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/human"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// PgRestartRequest is what the command line asks of a pg-restart run.
type PgRestartRequest struct {
	Pending bool      // only members with a setting waiting for a restart
	Member  string    // only this member (nodename or address); "" for every member
	At      time.Time // start no earlier than this (ParseAt)
	Reason  string
	// ApprovalTimeout is the switchover's (0: pigwf_approval_timeout or the default).
	ApprovalTimeout time.Duration
}

// PgRestartInput resolves a PgRestart from the inventory: the members and their agents, and what
// the switchover needs when the leader is restarted, resolved as a switchover's own input is
// (SwitchoverInput: the DCS, pg_rpo, the approval timeout). A --member the inventory does not
// hold is refused here, before anything starts.
func PgRestartInput(inv *inventory.Inventory, cluster *inventory.Cluster, r PgRestartRequest, requester string) (workflows.PgRestartInput, error) {
	sw, err := SwitchoverInput(inv, cluster, "", r.Reason, requester, time.Time{}, r.ApprovalTimeout)
	if err != nil {
		return workflows.PgRestartInput{}, err
	}
	in := workflows.PgRestartInput{
		Cluster: sw.Cluster, DCS: sw.DCS, Members: sw.Members, Pending: r.Pending, At: r.At, Reason: r.Reason, RequestedBy: requester,
		MaxLagBytes: sw.MaxLagBytes, Approval: sw.Approval,
	}
	if r.Member != "" {
		name, ok := memberName(cluster, r.Member)
		if !ok {
			names := make([]string, len(sw.Members))
			for i, m := range sw.Members {
				names[i] = m.Name
			}
			return in, fmt.Errorf("--member %s is not a member of %s: give one of %s (a nodename or its address)", r.Member, cluster.Name, strings.Join(names, ", "))
		}
		in.Member = name
	}
	return in, nil
}

// ParseAt reads --at: an RFC 3339 time (2026-12-01T02:00:00Z) or a delay from now (+10m, +1h30m).
// A time already past, or a delay that is not ahead, is refused: the run would not wait.
func ParseAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutPrefix(s, "+"); ok {
		delay, err := time.ParseDuration(d)
		if err != nil || delay <= 0 {
			return time.Time{}, fmt.Errorf("--at %s: a delay is + and a positive duration, e.g. +10m or +1h30m", s)
		}
		return now.Add(delay), nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %s: give an RFC 3339 time with its zone (2026-12-01T02:00:00Z) or a delay (+10m)", s)
	}
	if !at.After(now) {
		return time.Time{}, errors.New("--at " + s + " is already past: give a later time, or leave --at out to start now")
	}
	return at, nil
}

// PgRestartMeta: "pg-restart pg-test: every member, requested by alice".
func PgRestartMeta(in workflows.PgRestartInput, req Request) RunMeta {
	what := "every member"
	switch {
	case in.Member != "" && in.Pending:
		what = in.Member + " if a setting waits for its restart"
	case in.Member != "":
		what = in.Member
	case in.Pending:
		what = "the members waiting for a restart"
	}
	var d details
	d.header(workflows.PgRestartRunbook, in.Cluster, req)
	d.fact("Members", what)
	if !in.At.IsZero() {
		d.fact("Not before", utc(in.At)+" (`--at`)")
	}
	d.fact("Reason", in.Reason)
	switchID := WorkflowID(workflows.SwitchoverRunbook, in.Cluster)
	d.plan(
		"Plan from the leader's agent: refused, with nothing changed, when the cluster has no leader that takes writes, is in maintenance mode, or a member to restart is unknown.",
		"The replicas to restart, one at a time: PostgreSQL restarted by the member's HA agent, then wait until it streams from the leader again (at most "+human.Duration(workflows.PgRestartStreamingWithin)+").",
		fmt.Sprintf("Only if the leader is to be restarted: a switchover as the child run %s (%s), onto a restarted synchronous standby when there is one. Writes stop only here.", switchID, approvalStep(in.Approval)),
		"Then the old leader, now a replica: restarted (unless the switchover's demotion already did) and streaming.",
	)
	d.approve(workflows.SwitchoverRunbook, in.Cluster)
	return RunMeta{Summary: summaryLine(workflows.PgRestartRunbook, in.Cluster, what, req), Details: d.String()}
}
