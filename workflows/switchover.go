package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// Switchover moves the primary role to a replica, planned, after a human approves.
const (
	SwitchoverName    = "Switchover"
	SwitchoverRunbook = "switchover"
)

// SwitchoverInput is resolved from the inventory and the command line.
type SwitchoverInput struct {
	Cluster     string                 `json:"cluster"`
	Candidate   string                 `json:"candidate,omitempty"`   // "" lets pigwf choose a synchronous/least-lagging standby
	ScheduledAt time.Time              `json:"scheduled_at,omitzero"` // switch no earlier than this
	Reason      string                 `json:"reason"`
	RequestedBy string                 `json:"requested_by"`
	DCS         activities.DCSInput    `json:"dcs"`
	Members     []activities.MemberAPI `json:"members"`
	MaxLagBytes int64                  `json:"max_lag_bytes"`
	Approval    ApprovalPolicy         `json:"approval"`
}

// SwitchoverResult is the run's record: the plan, who approved it, what happened.
type SwitchoverResult struct {
	Cluster  string                      `json:"cluster"`
	Plan     activities.SwitchoverPlan   `json:"plan"`
	Approval ApprovalState               `json:"approval"`
	Report   activities.SwitchoverReport `json:"report"`
	Outcome  string                      `json:"outcome"` // switched | rejected | timed out
}

// SwitchoverRejectedType marks runs that ended with nothing changed (rejected or timed out).
const SwitchoverRejectedType = "SwitchoverNotApproved"

// Switchover: prechecks, a plan, the approval gate, an optional wait for the scheduled time,
// the switch through the agents' failover request, then verification. Rejected or timed-out
// runs change nothing and say why.
func Switchover(ctx workflow.Context, in SwitchoverInput) (SwitchoverResult, error) {
	res := SwitchoverResult{Cluster: in.Cluster}
	if err := setSearchAttributes(ctx, SwitchoverRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, SwitchoverRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	gate, err := newApprovalGate(ctx)
	if err != nil {
		return res, err
	}
	for _, s := range []string{"precheck", "approval", "switch", "verify"} {
		track.add("", s)
	}
	var a *activities.Activities
	opts := func(id string, timeout time.Duration, attempts int32) workflow.Context {
		return pgOptions(ctx, "control/"+id, timeout, attempts)
	}

	track.set("", "precheck", StateRunning, "")
	err = workflow.ExecuteActivity(opts("precheck", time.Minute, 3), a.SwitchoverPrecheck, activities.SwitchoverCheckInput{
		DCS: in.DCS, Members: in.Members, Candidate: in.Candidate, MaxLagBytes: in.MaxLagBytes}).Get(ctx, &res.Plan)
	if err != nil {
		track.set("", "precheck", StateFailed, failureMessage(err))
		track.p.Phase = "failed"
		return res, temporal.NewNonRetryableApplicationError(failureMessage(err), SwitchoverRejectedType, nil, res)
	}
	track.set("", "precheck", StateUnchanged, res.Plan.View)

	plan := fmt.Sprintf("switch %s's primary from %s to %s (%s)", in.Cluster, res.Plan.Leader, res.Plan.Candidate, res.Plan.Why)
	if !in.ScheduledAt.IsZero() {
		plan += " at " + in.ScheduledAt.UTC().Format(time.RFC3339)
	}
	if in.Reason != "" {
		plan += "; reason: " + in.Reason
	}
	track.set("", "approval", StateRunning, plan)
	notify(ctx, activities.Notification{Event: "approval-requested", Runbook: SwitchoverRunbook, Cluster: in.Cluster,
		Text: "waiting for approval: " + plan, Approvers: in.Approval.Approvers})
	defer func() {
		notify(ctx, activities.Notification{Event: "run-ended", Runbook: SwitchoverRunbook, Cluster: in.Cluster,
			Text: fmt.Sprintf("ended: %s (%s)", orDefault(res.Outcome, "failed"), res.Approval.Summary())})
	}()
	res.Approval, err = gate.await(ctx, track, plan, in.Approval)
	if err != nil {
		return res, err
	}
	if !res.Approval.Approved() {
		res.Outcome = map[string]string{DecisionReject: "rejected", "timeout": "timed out"}[res.Approval.Decision]
		track.set("", "approval", StateFailed, res.Approval.Summary())
		for _, s := range []string{"switch", "verify"} {
			track.set("", s, StateSkipped, "not approved: nothing changed")
		}
		track.p.Phase = "failed"
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("switchover of %s %s: nothing was changed", in.Cluster, res.Approval.Summary()), SwitchoverRejectedType, nil, res)
	}
	track.set("", "approval", StateUnchanged, res.Approval.Summary())

	if !in.ScheduledAt.IsZero() {
		if wait := in.ScheduledAt.Sub(workflow.Now(ctx)); wait > 0 {
			track.set("", "switch", StateRunning, "scheduled for "+in.ScheduledAt.UTC().Format(time.RFC3339))
			if err := workflow.Sleep(ctx, wait); err != nil {
				return res, err
			}
		}
	}
	track.set("", "switch", StateRunning, "")
	err = workflow.ExecuteActivity(opts("switch", 3*time.Minute, 3), a.SwitchoverExecute, activities.SwitchoverExecInput{
		DCS: in.DCS, Members: in.Members, From: res.Plan.Leader, To: res.Plan.Candidate, Reason: in.Reason, Requester: in.RequestedBy,
	}).Get(ctx, &res.Report)
	if err != nil {
		track.set("", "switch", StateFailed, failureMessage(err))
		track.p.Phase = "failed"
		return res, temporal.NewNonRetryableApplicationError("switchover failed: "+failureMessage(err), "SwitchoverFailed", nil, res)
	}
	track.set("", "switch", StateChanged, fmt.Sprintf("%s leads; write downtime %d ms (agents' /primary)", res.Report.NewLeader, res.Report.WriteDowntimeMs))

	var replicas []string
	apiURL := ""
	for _, m := range in.Members {
		if m.Name == res.Plan.Candidate {
			apiURL = m.APIURL
		} else {
			replicas = append(replicas, m.Name)
		}
	}
	track.set("", "verify", StateRunning, "")
	var vr activities.StepResult
	if err := workflow.ExecuteActivity(opts("verify", 2*time.Minute, 2), a.Verify, activities.VerifyInput{
		DCS: in.DCS, Primary: res.Plan.Candidate, APIURL: apiURL, Replicas: replicas}).Get(ctx, &vr); err != nil {
		track.set("", "verify", StateFailed, failureMessage(err))
		track.p.Phase = "failed"
		return res, temporal.NewNonRetryableApplicationError("switched, but verification failed: "+failureMessage(err), "SwitchoverFailed", nil, res)
	}
	track.set("", "verify", StateUnchanged, vr.Summary())
	res.Outcome = "switched"
	track.p.Phase = "done"
	return res, nil
}

// notify posts a chat notification; a failed notification is logged and never fails the run.
func notify(ctx workflow.Context, n activities.Notification) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(actx, a.Notify, n).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification failed", "event", n.Event, "err", err)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
