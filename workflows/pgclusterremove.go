package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgClusterRemove takes a whole cluster down for good, after an approval: the HA agents stop
// (replicas first, the leader last, so no replica takes over) and stay stopped across the hosts'
// restarts, the cluster's DCS keys are deleted, and every member's data directory is moved aside,
// not deleted. With --purge, a second, separate approval then deletes the moved-aside data
// directories; nothing else is deleted (pgBackRest's repository and its backups stay).
const (
	PgClusterRemoveName    = "PgClusterRemove"
	PgClusterRemoveRunbook = "pg-cluster-remove"
)

// PgClusterRemoveInput is resolved from the inventory and the command line.
type PgClusterRemoveInput struct {
	PgMembersTarget
	// Purge: after the removal, delete the moved-aside data directories, once a second approval
	// says so.
	Purge    bool           `json:"purge,omitempty"`
	Approval ApprovalPolicy `json:"approval"`
}

// PgClusterRemoveResult is the run's record.
type PgClusterRemoveResult struct {
	Cluster string `json:"cluster"`
	Leader  string `json:"leader,omitempty"` // the leader key's holder when the run planned
	// Order is the order the agents are stopped in: replicas, then the leader.
	Order []string `json:"order,omitempty"`
	Plan  []string `json:"plan,omitempty"`
	// Aside: member → where its data directory was moved.
	Aside         map[string]string       `json:"aside,omitempty"`
	Purged        []string                `json:"purged,omitempty"` // the moved-aside directories deleted
	Steps         []activities.StepResult `json:"steps,omitempty"`
	Approval      *ApprovalState          `json:"approval,omitempty"`
	PurgeApproval *ApprovalState          `json:"purge_approval,omitempty"`
	Outcome       string                  `json:"outcome"` // removed | removed and purged | removed, purge rejected | dry run | refused | failed
}

var (
	clusterKeysStep = controlStep("dcs-keys", within(3*time.Minute, 3))
	// purgeApprovalStep is the purge's own gate, after the removal's.
	purgeApprovalStep = step{name: "purge-approval"}
)

func dataPurgeStep(member string) step {
	s := memberStep(member, activities.StepDataPurge, within(30*time.Minute, 3))
	s.what = "delete the moved-aside data directory"
	return s
}

// pgClusterRemove is one PgClusterRemove run.
type pgClusterRemove struct {
	ctx   workflow.Context
	in    PgClusterRemoveInput
	key   string
	track *tracker
	gate  *approvalGate
	res   PgClusterRemoveResult
}

// PgClusterRemove: the cluster to itself; the plan from the DCS (refusing a member the inventory
// does not name); the approval; the agents stopped for good, replicas first; the keys deleted;
// the data moved aside; with Purge, a second approval and the deletion of what was moved aside.
func PgClusterRemove(ctx workflow.Context, in PgClusterRemoveInput) (PgClusterRemoveResult, error) {
	w := &pgClusterRemove{ctx: ctx, in: in, key: runKey(ctx), res: PgClusterRemoveResult{Cluster: in.Cluster}}
	if err := setSearchAttributes(ctx, PgClusterRemoveRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PgClusterRemoveRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if w.gate, err = newApprovalGate(ctx, in.RequestedBy); err != nil {
		return w.res, err
	}
	w.track.plan(exclusiveStep, membersPlanStep)
	if _, err := claimCluster(ctx, w.track, in.Cluster); err != nil {
		return w.res, w.refuse(err.Error())
	}
	var a *activities.Activities
	keys, err := runStep(ctx, w.track, membersPlanStep, func(k activities.ClusterKeys) (string, string) {
		return StateUnchanged, fmt.Sprintf("%d keys under %s; leader key: %s; agents running: %s", k.Keys, k.Prefix, orDefault(k.Leader, "none"), orDefault(strings.Join(k.Members, ", "), "none"))
	}, a.ReadClusterKeys, activities.ClusterKeysInput{DCS: in.DCS})
	if err != nil {
		return w.res, w.refuse("the cluster's keys: " + err.Error())
	}
	if problems := planClusterRemove(in, keys); len(problems) > 0 {
		return w.res, w.refuse(strings.Join(problems, "; "))
	}
	w.res.Leader, w.res.Order = keys.Leader, stopOrder(in.PgMembersTarget, keys.Leader)
	steps := w.planSteps(keys)
	if in.DryRun {
		dryRunSteps(w.track, steps, w.stepPlan())
		w.res.Outcome = "dry run"
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	if err := w.approve(approvalStep, &w.res.Approval, w.removalPlan()); err != nil {
		return w.res, err
	}
	node := func(m string) activities.MemberNodeInput { return in.memberNodeInput(m, w.key) }
	for _, m := range w.res.Order {
		if _, err := w.do(agentStopStep(m), a.AgentStop, activities.AgentStopInput{MemberNodeInput: node(m), Disable: true}); err != nil {
			return w.res, err
		}
	}
	if _, err := w.do(clusterKeysStep, a.ClusterKeysDelete, activities.ClusterKeysInput{DCS: in.DCS}); err != nil {
		return w.res, err
	}
	w.res.Aside = map[string]string{}
	for _, m := range w.res.Order {
		sr, err := w.do(dataAsideStep(m), a.DataAside, activities.DataAsideInput{MemberNodeInput: node(m), Why: activities.AsideRemoved})
		if err != nil {
			return w.res, err
		}
		if p := sr.Facts["aside"]; p != "" {
			w.res.Aside[m] = p
		}
	}
	w.res.Outcome = "removed"
	if !in.Purge {
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	return w.res, w.purge()
}

// purge asks the second approval, then deletes the moved-aside data directories. Without the
// approval the run still ends well: the cluster is removed, its data kept aside.
func (w *pgClusterRemove) purge() error {
	var a *activities.Activities
	var where []string
	for _, m := range w.res.Order {
		if p := w.res.Aside[m]; p != "" {
			where = append(where, m+":"+p)
		}
	}
	plan := fmt.Sprintf("purge %s: delete for good the data directories moved aside (%s); pgBackRest's repository and its backups stay", w.in.Cluster, orDefault(strings.Join(where, ", "), "none was kept"))
	w.gate.discardPending(w.ctx)
	st, err := w.gate.decide(w.ctx, w.track, purgeApprovalStep, plan, w.in.Approval,
		&activities.Notification{Event: "approval-requested", Runbook: PgClusterRemoveRunbook, Cluster: w.in.Cluster, Text: "waiting for approval: " + plan})
	if err != nil {
		return err
	}
	w.res.PurgeApproval = &st
	if !st.Approved() {
		for _, m := range w.res.Order {
			w.track.set(dataPurgeStep(m), StateSkipped, "purge "+notApproved(st)+": the data stays aside")
		}
		w.res.Outcome = "removed, purge " + notApproved(st)
		w.track.setPhase(PhaseDone)
		return nil
	}
	for _, m := range w.res.Order {
		sr, err := w.do(dataPurgeStep(m), a.DataPurge, w.in.memberNodeInput(m, w.key))
		if err != nil {
			return err
		}
		if sr.Changed {
			w.res.Purged = append(w.res.Purged, m+":"+activities.AsidePath(w.in.Spec.DataDir, activities.AsideRemoved, w.key))
		}
	}
	w.res.Outcome = "removed and purged"
	w.track.setPhase(PhaseDone)
	return nil
}

// planClusterRemove refuses a cluster whose DCS names members the inventory does not: their
// agents could not be stopped and would write the keys again.
func planClusterRemove(in PgClusterRemoveInput, keys activities.ClusterKeys) []string {
	var problems []string
	for _, m := range append(slices.Clone(keys.Members), keys.Leader) {
		if _, ok := in.node(m); m != "" && !ok {
			problems = append(problems, fmt.Sprintf("%s is registered in %s's DCS but not in the inventory, so pigwf cannot stop its agent: add it to the inventory, or stop its agent by hand and run again", m, in.Cluster))
		}
	}
	if len(in.Nodes) == 0 {
		problems = append(problems, "the inventory names no member of "+in.Cluster)
	}
	return slices.Compact(problems)
}

// stopOrder is the inventory's members, the leader last.
func stopOrder(t PgMembersTarget, leader string) []string {
	var out []string
	for _, m := range t.names() {
		if m != leader {
			out = append(out, m)
		}
	}
	if _, ok := t.node(leader); ok {
		out = append(out, leader)
	}
	return out
}

// planSteps lists the run's steps and returns those a dry run reports.
func (w *pgClusterRemove) planSteps(keys activities.ClusterKeys) []step {
	var steps []step
	for _, m := range w.res.Order {
		steps = append(steps, agentStopStep(m))
	}
	steps = append(steps, clusterKeysStep)
	for _, m := range w.res.Order {
		steps = append(steps, dataAsideStep(m))
	}
	var purge []step
	if w.in.Purge {
		for _, m := range w.res.Order {
			purge = append(purge, dataPurgeStep(m))
		}
	}
	w.res.Plan = w.stepPlan()
	if !w.in.DryRun {
		w.track.plan(approvalStep)
	}
	w.track.plan(steps...)
	if w.in.Purge && !w.in.DryRun {
		w.track.plan(purgeApprovalStep)
	}
	w.track.plan(purge...)
	w.track.set(membersPlanStep, StateUnchanged, fmt.Sprintf("%d keys under %s; leader key: %s; stop order: %s",
		keys.Keys, keys.Prefix, orDefault(keys.Leader, "none"), strings.Join(w.res.Order, ", ")))
	return append(steps, purge...)
}

// stepPlan is what each step does, in the order of planSteps' steps.
func (w *pgClusterRemove) stepPlan() []string {
	var out []string
	for _, m := range w.res.Order {
		out = append(out, "stop "+m+"'s HA agent and its PostgreSQL, and keep it from starting at the host's next start")
	}
	out = append(out, "delete every key of "+w.in.Cluster+" in the DCS")
	aside := activities.AsidePath(w.in.Spec.DataDir, activities.AsideRemoved, w.key)
	for _, m := range w.res.Order {
		out = append(out, "move "+m+"'s data directory "+w.in.Spec.DataDir+" aside to "+aside+" (kept, not deleted)")
	}
	if w.in.Purge {
		for _, m := range w.res.Order {
			out = append(out, "after a second approval, delete "+m+"'s "+aside+" for good")
		}
	}
	return out
}

// removalPlan is what the first approval approves.
func (w *pgClusterRemove) removalPlan() string {
	p := fmt.Sprintf("remove cluster %s: stop the HA agents and PostgreSQL of %s in this order (its clients lose their connections), keep them from starting again, delete its DCS keys, move every data directory aside to %s (kept, not deleted)",
		w.in.Cluster, strings.Join(w.res.Order, ", "), activities.AsidePath(w.in.Spec.DataDir, activities.AsideRemoved, w.key))
	if w.in.Purge {
		p += "; then, after a second approval, delete those directories"
	}
	return p + "; pgBackRest's repository and its backups stay"
}

// approve waits for the removal's approval; without it the run ends with nothing changed.
func (w *pgClusterRemove) approve(s step, into **ApprovalState, plan string) error {
	note := &activities.Notification{Event: "approval-requested", Runbook: PgClusterRemoveRunbook, Cluster: w.in.Cluster, Text: "waiting for approval: " + plan}
	st, err := w.gate.decide(w.ctx, w.track, s, plan, w.in.Approval, note)
	if err != nil {
		return err
	}
	*into = &st
	if !st.Approved() {
		w.track.skipPending()
		w.res.Outcome = notApproved(st)
		return w.track.fail(fmt.Sprintf("%s of %s was %s: nothing was changed", PgClusterRemoveRunbook, w.in.Cluster, st.Summary()), PgMembersRefusedType, w.res)
	}
	return nil
}

// do runs one step, recording its result; a failure ends the run, saying what was done.
func (w *pgClusterRemove) do(s step, activity any, in any) (activities.StepResult, error) {
	sr, err := runStep(w.ctx, w.track, s, stepOutcome, activity, in)
	if err != nil {
		return sr, w.fail(fmt.Sprintf("%s failed: %v", s.summary(), err))
	}
	w.res.Steps = append(w.res.Steps, sr)
	return sr, nil
}

// refuse ends a run that changed nothing.
func (w *pgClusterRemove) refuse(why string) error {
	msg := fmt.Sprintf("%s of %s refused: %s; nothing was changed", PgClusterRemoveRunbook, w.in.Cluster, why)
	w.track.set(membersPlanStep, StateFailed, msg)
	w.track.skipPending()
	w.res.Outcome = "refused"
	return w.track.fail(msg, PgMembersRefusedType, w.res)
}

// fail ends a run whose step failed.
func (w *pgClusterRemove) fail(msg string) error {
	w.track.skipPending()
	w.res.Outcome = "failed"
	var done []string
	for _, sr := range w.res.Steps {
		for _, c := range sr.Changes {
			done = append(done, sr.Node+": "+c)
		}
	}
	return w.track.fail(fmt.Sprintf("%s of %s: %s; done before that: %s (run it again to finish: every step is idempotent)",
		PgClusterRemoveRunbook, w.in.Cluster, msg, orDefault(strings.Join(done, "; "), "nothing")), PgMembersFailedType, w.res)
}
