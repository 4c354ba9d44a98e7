package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/dsl"
)

// The steps of a custom runbook: what each kind does, on which members, with which retries.

// Default retries and timeouts of a runbook's steps, by kind; a step's own retry: and timeout:
// replace them (stepRetry).
var (
	runbookSQL      = within(10*time.Minute, 1) // a statement is run once: pigwf cannot know it is safe to run twice
	runbookReload   = within(2*time.Minute, 3)
	runbookRestart  = within(10*time.Minute, 3) // MemberRestart's StartedBefore makes a retry safe
	runbookPassword = within(2*time.Minute, 3)  // SetPassword compares first
	runbookState    = within(30*time.Second, 5)
)

// How long a wait step waits by default, and how long its activity may take beyond that to say
// why the condition does not hold.
const (
	runbookWaitFor    = 5 * time.Minute
	runbookWaitMargin = time.Minute
)

// stepRetry is a step's retry: def, with the step's timeout: and retry: when it has them (the
// wait between attempts stays what retry: says).
func stepRetry(s dsl.Step, def retry) retry {
	r := def
	if s.Timeout > 0 {
		r.timeout = s.Timeout
	}
	if s.Retry != nil {
		r.attempts, r.wait, r.maxWait = int32(s.Retry.Attempts), s.Retry.Wait, s.Retry.Wait
	}
	return r
}

// waitRetry is a wait step's retry: its timeout: is how long the condition may take, so an
// attempt may take that and the margin; a failed attempt (a lost worker) is tried again.
func waitRetry(s dsl.Step) (retry, time.Duration) {
	wait := cmp.Or(s.Timeout, runbookWaitFor)
	noTimeout := s
	noTimeout.Timeout = 0
	return stepRetry(noTimeout, within(wait+runbookWaitMargin, 3)), wait
}

// row is the step's row in the run's progress: the step as a whole ("" member), or the step
// for a member (a loop's, or a target of a step outside loops). Its activity summary names the
// step and where it is written: "pg-test-2: restart-replica (rolling-restart.yml:13)".
func (r *runbookRun) row(member string, s dsl.Step) step {
	st := step{node: member, name: s.Name, id: "control/" + s.Name, what: s.Name + " (" + r.rb.At(s) + ")"}
	if member != "" {
		st.id = member + "/" + s.Name
	}
	return st
}

// targetRow is the row and activity of step s on member t: t's own row outside loops, the loop
// member's row inside one (with its own activity ID when t is another member, the leader say).
func (r *runbookRun) targetRow(sc *scope, s dsl.Step, t string, rt retry) step {
	if sc.member == "" {
		st := r.row(t, s)
		st.retry = rt
		return st
	}
	st := r.row(sc.member, s)
	st.retry = rt
	if t != sc.member {
		st.id += "/" + t
		st.what += " on " + t
	}
	return st
}

// end records a row's final state and the step's result.
func (r *runbookRun) end(row step, s dsl.Step, state, detail string) {
	r.track.set(row, state, detail)
	r.res.Steps = append(r.res.Steps, RunbookStepResult{Step: s.Name, Line: s.Line, Member: row.node, State: state, Detail: detail})
}

// run runs a step's activity on its row (runStep) and records its result.
func (r *runbookRun) run(ctx workflow.Context, row step, s dsl.Step, activity, input any) (activities.StepResult, error) {
	sr, err := runStep(ctx, r.track, row, stepOutcome, activity, input)
	state, detail := stepOutcome(sr)
	if err != nil {
		state, detail = StateFailed, err.Error()
	}
	r.res.Steps = append(r.res.Steps, RunbookStepResult{Step: s.Name, Line: s.Line, Member: row.node, State: state, Detail: detail})
	return sr, err
}

// stop is why the run stops at step s (on member, when there is one): what failed, where it is
// written. A cancelled run stays cancelled.
func (r *runbookRun) stop(s dsl.Step, member string, err error) error {
	var st *stopped
	if errors.As(err, &st) || temporal.IsCanceledError(err) {
		return err
	}
	where := fmt.Sprintf("step %s (%s)", s.Name, r.rb.At(s))
	if member != "" {
		where += " on " + member
	}
	return &stopped{msg: where + ": " + err.Error(), errType: RunbookFailedType, outcome: "failed"}
}

// steps runs a list of steps in order; after one that fails, the rest are skipped.
func (r *runbookRun) steps(ctx workflow.Context, list []dsl.Step, sc *scope) error {
	for i, s := range list {
		if err := r.step(ctx, s, list[i+1:], sc); err != nil {
			r.skip(list[i+1:], sc.member, "not run: the run stopped at "+s.Name)
			return err
		}
	}
	return nil
}

// skip marks the rows of steps (for member, or as a whole) skipped.
func (r *runbookRun) skip(steps []dsl.Step, member, why string) {
	for _, s := range steps {
		r.track.set(r.row(member, s), StateSkipped, why)
	}
}

// step runs one step, unless its when: says no; next are the steps after it in its list (what
// an approval's plan names).
func (r *runbookRun) step(ctx workflow.Context, s dsl.Step, next []dsl.Step, sc *scope) error {
	row := r.row(sc.member, s)
	if c := s.When; c != nil && c.Changed != nil && sc.changed(c.Step) != *c.Changed {
		r.end(row, s, StateSkipped, fmt.Sprintf("skipped: %s %s", c.Step, changedWords(!*c.Changed)))
		sc.record(s.Name, false)
		return nil
	}
	var changed bool
	var err error
	switch {
	case s.Kind == dsl.KindApproval:
		err = r.approve(ctx, s, next, sc, row)
	case s.Kind == dsl.KindEach:
		changed, err = r.each(ctx, s, sc, row)
	case s.Kind == dsl.KindSwitchover, s.Kind == dsl.KindRunbook:
		changed, err = r.child(ctx, s, sc, row)
	case s.Kind == dsl.KindWait && s.Wait.Until != dsl.UntilSQL:
		err = r.waitMembers(ctx, s, sc, row)
	default: // sql, reload, restart, password, wait until sql: an activity per member
		changed, err = r.onTargets(ctx, s, sc, row)
	}
	if err != nil {
		return err
	}
	sc.record(s.Name, changed)
	return nil
}

func changedWords(changed bool) string {
	if changed {
		return "changed something"
	}
	return "changed nothing"
}

// targets are the members step s acts on: the loop's member, or those its target selects in
// the cluster's state (the loop's snapshot inside a loop, else read now).
func (r *runbookRun) targets(ctx workflow.Context, s dsl.Step, sc *scope) ([]string, error) {
	t := s.Target()
	if t == dsl.TargetMember {
		return []string{sc.member}, nil
	}
	st := sc.snapshot()
	if st == nil {
		got, err := r.readState(ctx, s.Name)
		if err != nil {
			return nil, fmt.Errorf("the cluster's state: %s", failureMessage(err))
		}
		st = &got
	}
	return r.selectKnown(t, *st)
}

// selectKnown is selectMembers, refusing a member the input has no host for.
func (r *runbookRun) selectKnown(t dsl.Target, st activities.ClusterState) ([]string, error) {
	names, err := selectMembers(t, st)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := r.apis[n]; !ok {
			return nil, fmt.Errorf("the agents report member %s, which is not in the run's input: is the inventory current?", n)
		}
	}
	return names, nil
}

// readState reads the cluster's members and leader through the agents, for step name.
func (r *runbookRun) readState(ctx workflow.Context, name string) (activities.ClusterState, error) {
	var a *activities.Activities
	var st activities.ClusterState
	s := controlStep(name+"/cluster-state", runbookState)
	s.what = "the cluster's members and leader, for " + name
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, s.activityOptions()), a.ReadClusterState,
		activities.ClusterStateInput{DCS: r.in.DCS, Members: r.in.Members}).Get(ctx, &st)
	return st, err
}

// onTargets runs a step's activity on each of its members, one at a time, in order.
func (r *runbookRun) onTargets(ctx workflow.Context, s dsl.Step, sc *scope, row step) (bool, error) {
	targets, err := r.targets(ctx, s, sc)
	if err != nil {
		r.end(row, s, StateFailed, err.Error())
		return false, r.stop(s, sc.member, err)
	}
	rt, deadline := r.kindRetry(ctx, s)
	rows := make([]step, len(targets))
	prev := row
	for i, t := range targets {
		rows[i] = r.targetRow(sc, s, t, rt)
		if sc.member == "" {
			r.track.add(prev, rows[i])
			prev = rows[i]
		}
	}
	if sc.member == "" {
		r.track.set(row, StateRunning, "on "+strings.Join(targets, ", "))
	}
	var changedOn []string
	for i, t := range targets {
		activity, input := r.activity(ctx, s, t, deadline)
		sr, err := r.run(ctx, rows[i], s, activity, input)
		if err != nil {
			if sc.member == "" {
				r.skipRows(rows[i+1:], "not run: "+t+" failed")
				r.end(row, s, StateFailed, "failed on "+t)
			}
			return false, r.stop(s, t, err)
		}
		if sr.Changed {
			changedOn = append(changedOn, t)
		}
	}
	changed := len(changedOn) > 0
	if sc.member == "" || len(targets) > 1 {
		state := map[bool]string{true: StateChanged, false: StateUnchanged}[changed]
		r.end(row, s, state, changedWhere(changedOn, targets))
	}
	return changed, nil
}

func (r *runbookRun) skipRows(rows []step, why string) {
	for _, row := range rows {
		r.track.set(row, StateSkipped, why)
	}
}

// changedWhere says on which of targets a step changed something: "changed on a, b; unchanged on c".
func changedWhere(changed, targets []string) string {
	var unchanged []string
	for _, t := range targets {
		found := false
		for _, c := range changed {
			found = found || c == t
		}
		if !found {
			unchanged = append(unchanged, t)
		}
	}
	var parts []string
	if len(changed) > 0 {
		parts = append(parts, "changed on "+strings.Join(changed, ", "))
	}
	if len(unchanged) > 0 {
		parts = append(parts, "unchanged on "+strings.Join(unchanged, ", "))
	}
	return strings.Join(parts, "; ")
}

// kindRetry is the retry of a step's activities, and for a wait its deadline, fixed when the
// step starts.
func (r *runbookRun) kindRetry(ctx workflow.Context, s dsl.Step) (retry, time.Time) {
	switch s.Kind {
	case dsl.KindSQL:
		return stepRetry(s, runbookSQL), time.Time{}
	case dsl.KindReload:
		return stepRetry(s, runbookReload), time.Time{}
	case dsl.KindRestart:
		return stepRetry(s, runbookRestart), time.Time{}
	case dsl.KindPassword:
		return stepRetry(s, runbookPassword), time.Time{}
	}
	rt, wait := waitRetry(s)
	return rt, workflow.Now(ctx).Add(wait)
}

// activity is the activity and input of step s on member t.
func (r *runbookRun) activity(ctx workflow.Context, s dsl.Step, t string, deadline time.Time) (any, any) {
	var a *activities.Activities
	label := s.Name + " (" + r.rb.At(s) + ")"
	switch s.Kind {
	case dsl.KindSQL:
		return a.RunSQL, activities.RunSQLInput{Node: r.nodes[t], Port: r.in.Port, Database: s.SQL.Database, Statement: s.SQL.Statement, Step: label}
	case dsl.KindReload:
		return a.MemberReload, activities.MemberReloadInput{Member: r.apis[t]}
	case dsl.KindRestart:
		// StartedBefore is this member's step's first scheduling: the same in every retry of the
		// activity and in every replay, so a restart done before a worker died is not done again.
		return a.MemberRestart, activities.MemberRestartInput{DCS: r.in.DCS, Member: r.apis[t], Pending: s.Restart.Pending, StartedBefore: workflow.Now(ctx)}
	case dsl.KindPassword:
		return a.SetPassword, activities.SetPasswordInput{Node: r.nodes[t], Port: r.in.Port, Cluster: r.in.Cluster, Role: s.Password.Role, Secret: s.Password.Secret, Step: label}
	}
	// wait until sql: what is left of the step's time, for this member
	left := max(deadline.Sub(workflow.Now(ctx)), 0)
	return a.WaitSQL, activities.WaitSQLInput{Timeout: left, RunSQLInput: activities.RunSQLInput{
		Node: r.nodes[t], Port: r.in.Port, Database: s.Wait.Database, Statement: s.Wait.Statement, Step: label}}
}

// waitMembers waits until the members stream (or lag at most so much) through the agents.
func (r *runbookRun) waitMembers(ctx workflow.Context, s dsl.Step, sc *scope, row step) error {
	targets, err := r.targets(ctx, s, sc)
	if err != nil {
		r.end(row, s, StateFailed, err.Error())
		return r.stop(s, sc.member, err)
	}
	var a *activities.Activities
	rt, wait := waitRetry(s)
	row.retry = rt
	if _, err := r.run(ctx, row, s, a.WaitMembers, activities.WaitMembersInput{
		DCS: r.in.DCS, Members: r.in.Members, Targets: targets, Until: s.Wait.Until, Lag: s.Wait.Lag, Timeout: wait,
	}); err != nil {
		return r.stop(s, sc.member, err)
	}
	return nil
}

// approve is an approval step: the run's gate, with the step's reason and what follows it in
// the plan; without an approval the run ends and nothing after the step runs.
func (r *runbookRun) approve(ctx workflow.Context, s dsl.Step, next []dsl.Step, sc *scope, row step) error {
	r.gate.discardPending(ctx) // a decision sent before this gate opened is not for it
	plan := r.approvalPlan(s, next, sc.member)
	pol := r.in.Approval
	if s.Timeout > 0 {
		pol.Timeout = s.Timeout
	}
	note := &activities.Notification{Event: "approval-requested", Runbook: RunbookRunbook, Cluster: r.in.Cluster, Text: "waiting for approval: " + plan}
	st, err := r.gate.decide(ctx, r.track, row, plan, pol, note)
	if err != nil {
		return err
	}
	r.res.Approvals = append(r.res.Approvals, st)
	r.res.Steps = append(r.res.Steps, RunbookStepResult{Step: s.Name, Line: s.Line, Member: sc.member, State: map[bool]string{true: StateUnchanged, false: StateFailed}[st.Approved()], Detail: st.Summary()})
	if !st.Approved() {
		return &stopped{msg: fmt.Sprintf("runbook %s on %s: step %s (%s) %s: nothing after it ran", r.rb.Name, r.in.Cluster, s.Name, r.rb.At(s), st.Summary()),
			errType: RunbookNotApprovedType, outcome: notApproved(st)}
	}
	return nil
}

// approvalPlan is what an approver is asked to agree to: the step, its reason, and the steps
// that follow it up to the next approval.
func (r *runbookRun) approvalPlan(s dsl.Step, next []dsl.Step, member string) string {
	plan := fmt.Sprintf("runbook %s (%s) on %s, step %s (%s)", r.rb.Name, r.rb.File, r.in.Cluster, s.Name, r.rb.At(s))
	if member != "" {
		plan += " for " + member
	}
	if s.Approval.Reason != "" {
		plan += ": " + s.Approval.Reason
	}
	var then []string
	for _, n := range next {
		if n.Kind == dsl.KindApproval {
			break
		}
		then = append(then, n.Name+": "+n.Describe())
	}
	if len(then) > 0 {
		plan += ". Once approved: " + strings.Join(then, "; then ")
	}
	return plan
}
