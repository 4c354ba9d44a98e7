package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgRestart restarts PostgreSQL on a cluster's members through their HA agents (Patroni's
// `patronictl restart`, without ever restarting the leader in place): the replicas one at a
// time, each streaming again before the next; then, when the leader is a target, an approved
// switchover (the Switchover runbook as a child run) and the old leader's restart as a replica.
// Writes stop only at the switchover.
const (
	PgRestartName    = "PgRestart"
	PgRestartRunbook = "pg-restart"
)

// PgRestartInput is resolved from the inventory and the command line.
type PgRestartInput struct {
	Cluster string                 `json:"cluster"`
	DCS     activities.DCSInput    `json:"dcs"`
	Members []activities.MemberAPI `json:"members"`
	// Pending: only members with a setting waiting for a restart (--pending).
	Pending bool `json:"pending,omitempty"`
	// Member: only this member (--member; a nodename), "" for every member.
	Member string `json:"member,omitempty"`
	// At: start no earlier than this (--at).
	At          time.Time `json:"at,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	RequestedBy string    `json:"requested_by"`
	// The switchover's, when the leader is restarted: the candidate's lag limit (pg_rpo) and
	// how long the approval may take.
	MaxLagBytes int64          `json:"max_lag_bytes"`
	Approval    ApprovalPolicy `json:"approval"`
}

// PgRestartResult is the run's record.
type PgRestartResult struct {
	Cluster string        `json:"cluster"`
	Plan    PgRestartPlan `json:"plan"`
	// Restarted are the members whose PostgreSQL started anew during this run (restarted by
	// it, or by the switchover's demotion), in order.
	Restarted  []string                `json:"restarted,omitempty"`
	Steps      []activities.StepResult `json:"steps,omitempty"`
	Switchover *SwitchoverResult       `json:"switchover,omitempty"`
	Outcome    string                  `json:"outcome"` // restarted | nothing to restart
}

// Error types of a PgRestart that did not finish.
const (
	PgRestartRefusedType = "PgRestartRefused" // refused by its plan: nothing changed
	PgRestartFailedType  = "PgRestartFailed"  // a step or the switchover failed; the message says what was restarted
)

// PgRestartStreamingWithin is how long a restarted member may take to stream again.
const PgRestartStreamingWithin = 5 * time.Minute

var (
	pgRestartPlanStep      = controlStep("plan", within(time.Minute, 3))
	pgRestartCandidateStep = controlStep("candidate", within(time.Minute, 3))
	// pgRestartSwitchStep is the Switchover child run: tracked here, run (and approved) there.
	pgRestartSwitchStep = step{name: "switchover"}
)

func pgRestartMemberStep(member string) step {
	s := memberStep(member, "restart", within(15*time.Minute, 5))
	s.what = "restart PostgreSQL"
	return s
}

func pgRestartStreamingStep(member string) step {
	s := memberStep(member, "streaming", within(PgRestartStreamingWithin+time.Minute, 3))
	s.what = "wait until it streams"
	return s
}

// PgRestartPendingCommand is the command that restarts what waits for a restart on cluster: what
// pg-reload tells its user, written here once.
func PgRestartPendingCommand(cluster string) string {
	return "pigwf start " + PgRestartRunbook + " --cluster " + cluster + " --pending"
}

// pgRestart is one PgRestart run.
type pgRestart struct {
	ctx   workflow.Context
	in    PgRestartInput
	track *tracker
	res   PgRestartResult
	// locked: the run holds the cluster's lock, and its switchover (a child run) runs under it.
	locked bool
	// startedBefore is the run's start, taken once (workflow.Now, from its history): every restart passes it,
	// so a retried step (its worker died after the agent restarted PostgreSQL) finds a postmaster
	// that started after it and leaves it alone, and a replay passes the same instant.
	startedBefore time.Time
}

// PgRestart: wait for --at; plan from the leader's view (refusing, before anything changes, a
// cluster without a healthy leader, a paused one, an unknown --member); restart the replicas;
// then the leader through a switchover.
func PgRestart(ctx workflow.Context, in PgRestartInput) (PgRestartResult, error) {
	w := &pgRestart{ctx: ctx, in: in, res: PgRestartResult{Cluster: in.Cluster}, startedBefore: workflow.Now(ctx)}
	if err := setSearchAttributes(ctx, PgRestartRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PgRestartRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if w.locked, err = lockCluster(ctx, w.track, in.Cluster, false); err != nil {
		return w.res, err
	}
	w.track.plan(pgRestartPlanStep)
	if err := sleepUntil(ctx, w.track, pgRestartPlanStep, in.At); err != nil {
		return w.res, err
	}
	if err := w.makePlan(); err != nil {
		return w.res, err
	}
	if w.res.Plan.Nothing() {
		w.res.Outcome = "nothing to restart"
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	for _, r := range w.res.Plan.Replicas {
		if err := w.restart(r); err != nil {
			return w.res, err
		}
	}
	if w.res.Plan.RestartLeader {
		if err := w.switchover(); err != nil {
			return w.res, err
		}
		if err := w.restart(w.res.Plan.Leader); err != nil {
			return w.res, err
		}
	}
	w.res.Outcome = "restarted"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// makePlan reads the cluster and decides the plan; a refusal changes nothing.
func (w *pgRestart) makePlan() error {
	var a *activities.Activities
	st, err := runStep(w.ctx, w.track, pgRestartPlanStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.in.DCS, Members: w.in.Members})
	if err != nil {
		return w.track.fail("the cluster's state: "+err.Error()+"; nothing was changed", PgRestartRefusedType, w.res)
	}
	plan, problems := planRestart(w.in, st)
	w.res.Plan = plan
	if len(problems) > 0 {
		msg := fmt.Sprintf("pg-restart of %s refused: %s; nothing was changed", w.in.Cluster, strings.Join(problems, "; "))
		w.track.set(pgRestartPlanStep, StateFailed, msg)
		return w.track.fail(msg, PgRestartRefusedType, w.res)
	}
	w.track.set(pgRestartPlanStep, StateUnchanged, plan.Describe())
	var steps []step
	for _, r := range plan.Replicas {
		steps = append(steps, pgRestartMemberStep(r), pgRestartStreamingStep(r))
	}
	if plan.RestartLeader {
		steps = append(steps, pgRestartCandidateStep, pgRestartSwitchStep, pgRestartMemberStep(plan.Leader), pgRestartStreamingStep(plan.Leader))
	}
	w.track.plan(steps...)
	return nil
}

// restart restarts one member that is a replica now, then waits until it streams.
func (w *pgRestart) restart(member string) error {
	var a *activities.Activities
	i := slices.IndexFunc(w.in.Members, func(m activities.MemberAPI) bool { return m.Name == member })
	sr, err := runStep(w.ctx, w.track, pgRestartMemberStep(member), stepOutcome, a.MemberRestart, activities.MemberRestartInput{
		DCS: w.in.DCS, Member: w.in.Members[i], Pending: w.in.Pending, StartedBefore: w.startedBefore})
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == activities.ErrLeaderRestartRefused {
			return w.fail(fmt.Sprintf("%s leads the cluster now, not as planned (a failover since? `pigwf ha history --cluster %s`): it was not restarted", member, w.in.Cluster))
		}
		return w.fail(fmt.Sprintf("restart of %s failed: %v", member, err))
	}
	w.res.Steps = append(w.res.Steps, sr)
	if sr.Changed || w.startedAnew(sr) {
		w.res.Restarted = append(w.res.Restarted, member)
	}
	wr, err := runStep(w.ctx, w.track, pgRestartStreamingStep(member), checkOutcome, a.WaitMembers, activities.WaitMembersInput{
		DCS: w.in.DCS, Members: w.in.Members, Targets: []string{member}, Until: activities.UntilStreaming, Timeout: PgRestartStreamingWithin})
	if err != nil {
		return w.fail(fmt.Sprintf("%s runs again but does not stream: %v", member, err))
	}
	w.res.Steps = append(w.res.Steps, wr)
	return nil
}

// startedAnew: the member's postmaster started after this run began (a retried step's earlier
// attempt restarted it, or the switchover's demotion did), so its settings are in force.
func (w *pgRestart) startedAnew(sr activities.StepResult) bool {
	t, err := time.Parse(time.RFC3339Nano, sr.Facts["postmaster_start"])
	return err == nil && t.After(w.startedBefore)
}

// switchover moves the primary role away from the planned leader through the Switchover runbook
// as a child run, approved there, onto a restarted synchronous standby when there is one. A
// leader that already moved (a failover since the plan) needs none.
func (w *pgRestart) switchover() error {
	var a *activities.Activities
	leader := w.res.Plan.Leader
	st, err := runStep(w.ctx, w.track, pgRestartCandidateStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.in.DCS, Members: w.in.Members})
	if err != nil {
		return w.fail("the cluster's state before the switchover: " + err.Error())
	}
	if st.Leader != leader && st.LeaderPrimary {
		w.track.set(pgRestartSwitchStep, StateSkipped, fmt.Sprintf("%s leads now (a failover since the plan): %s is a replica already", st.Leader, leader))
		return nil
	}
	candidate := switchoverCandidate(st, w.res.Restarted)
	parent, err := parentRequests(w.ctx)
	if err != nil {
		return err
	}
	id := WorkflowID(SwitchoverRunbook, w.in.Cluster)
	to := orDefault(candidate, "the best candidate")
	summary := fmt.Sprintf("switchover %s: %s → %s, for %s, requested by %s", w.in.Cluster, leader, to, workflow.GetInfo(w.ctx).WorkflowExecution.ID, w.in.RequestedBy)
	cin := SwitchoverInput{
		Cluster: w.in.Cluster, Candidate: candidate, RequestedBy: w.in.RequestedBy, DCS: w.in.DCS, Members: w.in.Members,
		MaxLagBytes: w.in.MaxLagBytes, Approval: w.in.Approval, Parent: parent, ClusterLocked: w.locked,
		Reason: strings.TrimSuffix("pg-restart: restart the leader "+leader+" as a replica; "+w.in.Reason, "; "),
	}
	w.track.set(pgRestartSwitchStep, StateRunning, fmt.Sprintf("run %s: %s → %s once approved: `%s`", id, leader, to, ApproveCommand(id)))
	cctx := workflow.WithChildOptions(w.ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    id,
		StaticSummary: summary,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrCluster.ValueSet(w.in.Cluster), SearchAttrRunbook.ValueSet(SwitchoverRunbook),
			SearchAttrState.ValueSet(PhaseRunning), SummaryAttr(summary)),
	})
	var sres SwitchoverResult
	err = workflow.ExecuteChildWorkflow(cctx, SwitchoverName, cin).Get(w.ctx, &sres)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.HasDetails() && app.Details(&sres) == nil {
			w.res.Switchover = &sres
		}
		w.track.set(pgRestartSwitchStep, StateFailed, failureMessage(err))
		why := "the switchover failed"
		if errors.As(err, &app) && app.Type() == SwitchoverRejectedType {
			why = "the switchover did not happen"
		}
		return w.fail(fmt.Sprintf("%s (%s): the leader %s was not restarted", why, failureMessage(err), leader))
	}
	w.res.Switchover = &sres
	w.track.set(pgRestartSwitchStep, StateChanged, fmt.Sprintf("%s leads; write downtime %d ms (agents' /primary)", sres.Report.NewLeader, sres.Report.WriteDowntimeMs))
	return nil
}

// fail ends the run with what it did so far; the steps it did not reach are skipped.
func (w *pgRestart) fail(msg string) error {
	w.track.skipPending()
	done := "none"
	if len(w.res.Restarted) > 0 {
		done = strings.Join(w.res.Restarted, ", ")
	}
	return w.track.fail(fmt.Sprintf("pg-restart of %s: %s; restarted before that: %s", w.in.Cluster, msg, done), PgRestartFailedType, w.res)
}
