package workflows

import (
	"fmt"
	"time"

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
	// Parent: the requester's signed requests of the run that started this one as its child
	// (pg-restart), verified against that parent; nil for a switchover started on its own.
	Parent *ParentRequest `json:"parent,omitempty"`
	// ClusterLocked: the parent run that starts this one as its child holds the cluster's lock
	// for it (workflows.ClusterLock); honoured only in a child run. Never set by hand.
	ClusterLocked bool `json:"cluster_locked,omitempty"`
}

// SwitchoverResult is the run's record: the plan, who approved it, what happened.
type SwitchoverResult struct {
	Cluster  string                      `json:"cluster"`
	Plan     activities.SwitchoverPlan   `json:"plan"`
	Approval ApprovalState               `json:"approval"`
	Report   activities.SwitchoverReport `json:"report"`
	Outcome  string                      `json:"outcome"` // switched | rejected | timed out
}

// Error types of a Switchover that did not switch.
const (
	SwitchoverRejectedType = "SwitchoverNotApproved" // nothing changed: rejected, timed out or refused by the precheck
	SwitchoverFailedType   = "SwitchoverFailed"      // the switch or its verification failed
)

// The switchover's steps, in order; approval is the gate's own step and runs no activity.
var (
	switchoverPrecheck = controlStep("precheck", within(time.Minute, 3))
	switchoverSwitch   = controlStep("switch", within(3*time.Minute, 3))
	switchoverVerify   = controlStep("verify", within(2*time.Minute, 2))
	switchoverSteps    = []step{switchoverPrecheck, approvalStep, switchoverSwitch, switchoverVerify}
)

// switchover is one Switchover run.
type switchover struct {
	ctx   workflow.Context
	in    SwitchoverInput
	track *tracker
	gate  *approvalGate
	res   SwitchoverResult
}

// Switchover: prechecks, a plan, the approval gate, an optional wait for the scheduled time,
// the switch through the agents' failover request, then verification. Rejected or timed-out
// runs change nothing and say why.
func Switchover(ctx workflow.Context, in SwitchoverInput) (SwitchoverResult, error) {
	w := &switchover{ctx: ctx, in: in, res: SwitchoverResult{Cluster: in.Cluster}}
	if err := setSearchAttributes(ctx, SwitchoverRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, SwitchoverRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if _, err := lockCluster(ctx, w.track, in.Cluster, in.ClusterLocked); err != nil {
		return w.res, err
	}
	if w.gate, err = newApprovalGate(ctx, in.RequestedBy); err != nil {
		return w.res, err
	}
	w.gate.parent = in.Parent
	w.track.plan(switchoverSteps...)

	if err := w.precheck(); err != nil {
		return w.res, err
	}
	plan := w.describe()
	defer func() {
		notify(ctx, activities.Notification{Event: "run-ended", Runbook: SwitchoverRunbook, Cluster: in.Cluster,
			Text: fmt.Sprintf("ended: %s (%s)", orDefault(w.res.Outcome, "failed"), w.res.Approval.Summary())})
	}()
	if err := w.approve(plan); err != nil {
		return w.res, err
	}
	if err := w.waitForSchedule(); err != nil {
		return w.res, err
	}
	if err := w.switchPrimary(); err != nil {
		return w.res, err
	}
	if err := w.verify(); err != nil {
		return w.res, err
	}
	w.res.Outcome = "switched"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// precheck picks the candidate and the plan; a refusal changes nothing.
func (w *switchover) precheck() error {
	var a *activities.Activities
	plan, err := runStep(w.ctx, w.track, switchoverPrecheck, func(p activities.SwitchoverPlan) (string, string) { return StateUnchanged, p.View },
		a.SwitchoverPrecheck, activities.SwitchoverCheckInput{DCS: w.in.DCS, Members: w.in.Members, Candidate: w.in.Candidate, MaxLagBytes: w.in.MaxLagBytes})
	if err != nil {
		return w.track.fail(err.Error(), SwitchoverRejectedType, w.res)
	}
	w.res.Plan = plan
	return nil
}

// describe is the plan an approver is asked to agree to.
func (w *switchover) describe() string {
	plan := fmt.Sprintf("switch %s's primary from %s to %s (%s)", w.in.Cluster, w.res.Plan.Leader, w.res.Plan.Candidate, w.res.Plan.Why)
	if !w.in.ScheduledAt.IsZero() {
		plan += " at " + w.in.ScheduledAt.UTC().Format(time.RFC3339)
	}
	if w.in.Reason != "" {
		plan += "; reason: " + w.in.Reason
	}
	return plan
}

// approve waits for the approval gate; without an approval the run ends with nothing changed.
func (w *switchover) approve(plan string) error {
	var err error
	note := &activities.Notification{Event: "approval-requested", Runbook: SwitchoverRunbook, Cluster: w.in.Cluster, Text: "waiting for approval: " + plan}
	if w.res.Approval, err = w.gate.decide(w.ctx, w.track, approvalStep, plan, w.in.Approval, note); err != nil {
		return err
	}
	if !w.res.Approval.Approved() {
		w.res.Outcome = notApproved(w.res.Approval)
		for _, s := range []step{switchoverSwitch, switchoverVerify} {
			w.track.set(s, StateSkipped, "not approved: nothing changed")
		}
		return w.track.fail(fmt.Sprintf("switchover of %s %s: nothing was changed", w.in.Cluster, w.res.Approval.Summary()), SwitchoverRejectedType, w.res)
	}
	return nil
}

// waitForSchedule sleeps until the scheduled time, if one is set and still ahead.
func (w *switchover) waitForSchedule() error {
	return sleepUntil(w.ctx, w.track, switchoverSwitch, w.in.ScheduledAt)
}

// switchPrimary asks the agents to fail over to the candidate and measures the write downtime.
func (w *switchover) switchPrimary() error {
	var a *activities.Activities
	report, err := runStep(w.ctx, w.track, switchoverSwitch, func(r activities.SwitchoverReport) (string, string) {
		return StateChanged, fmt.Sprintf("%s leads; write downtime %d ms (agents' /primary)", r.NewLeader, r.WriteDowntimeMs)
	}, a.SwitchoverExecute, activities.SwitchoverExecInput{
		DCS: w.in.DCS, Members: w.in.Members, From: w.res.Plan.Leader, To: w.res.Plan.Candidate, Reason: w.in.Reason, Requester: w.in.RequestedBy,
	})
	if err != nil {
		return w.track.fail("switchover failed: "+err.Error(), SwitchoverFailedType, w.res)
	}
	w.res.Report = report
	return nil
}

// verify checks the cluster's health with the candidate as its leader.
func (w *switchover) verify() error {
	var a *activities.Activities
	var replicas []string
	apiURL := ""
	for _, m := range w.in.Members {
		if m.Name == w.res.Plan.Candidate {
			apiURL = m.APIURL
		} else {
			replicas = append(replicas, m.Name)
		}
	}
	if _, err := runStep(w.ctx, w.track, switchoverVerify, checkOutcome, a.Verify, activities.VerifyInput{
		DCS: w.in.DCS, Primary: w.res.Plan.Candidate, APIURL: apiURL, Replicas: replicas}); err != nil {
		return w.track.fail("switched, but verification failed: "+err.Error(), SwitchoverFailedType, w.res)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
