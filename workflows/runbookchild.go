package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/dsl"
)

// child runs a switchover step or a runbook step: the built-in runbook as a child run, with the
// input the CLI built from the inventory (RunbookChildren), under the ID
// "<this run's ID>/<step>" (and "/<member>" in a loop), so `pigwf pending` and the Web UI list it
// and `pigwf approve` takes that ID. A switchover keeps its own approval gate: its approvers
// decide on its own plan (the candidate, the lag), and under four eyes the requester this run's
// signed request carries over, verified again by the child against this run (ParentRequest). A child run outlives its
// parent (ParentClosePolicy abandon): ending this run never cuts a switchover short.
func (r *runbookRun) child(ctx workflow.Context, s dsl.Step, sc *scope, row step) (bool, error) {
	name := SwitchoverRunbook
	if s.Kind == dsl.KindRunbook {
		name = s.Runbook.Name
	}
	// From the input, not the run's own ID (which is the same, runbook/<cluster>): a replay of
	// the history under another ID must give the same child IDs.
	id := WorkflowID(RunbookRunbook, r.in.Cluster) + "/" + s.Name
	if sc.member != "" {
		id += "/" + sc.member
	}
	run, err := r.childRun(ctx, name, s)
	if err != nil {
		r.end(row, s, StateFailed, err.Error())
		return false, r.stop(s, sc.member, err)
	}
	summary := fmt.Sprintf("%s %s: step %s (%s) of runbook %s", name, r.in.Cluster, s.Name, r.rb.At(s), r.rb.Name)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		StaticSummary:         summary,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(SummaryAttr(summary)),
	})
	detail := "child run " + id
	if name == SwitchoverRunbook {
		detail += ", which asks for its own approval: " + ApproveCommand(id)
	}
	r.track.set(row, StateRunning, detail)
	changed, what, err := run.await(cctx)
	if temporal.IsCanceledError(err) {
		return false, err
	}
	if err != nil {
		msg := fmt.Sprintf("child run %s: %s", id, failureMessage(err))
		r.end(row, s, StateFailed, msg)
		st := &stopped{msg: fmt.Sprintf("step %s (%s): %s", s.Name, r.rb.At(s), msg), errType: RunbookFailedType, outcome: "failed"}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == SwitchoverRejectedType { // nothing changed: not approved, or refused by its precheck
			st.errType, st.outcome = RunbookNotApprovedType, "not approved"
		}
		return false, st
	}
	r.end(row, s, map[bool]string{true: StateChanged, false: StateUnchanged}[changed], fmt.Sprintf("child run %s: %s", id, what))
	return changed, nil
}

// childRun is one child run to start: its workflow and input, and how its result reads.
type childRun struct {
	workflow string
	input    any
	read     func(workflow.Context, workflow.Future) (changed bool, what string, err error)
}

// await starts the child run and waits for its result.
func (c childRun) await(ctx workflow.Context) (bool, string, error) {
	return c.read(ctx, workflow.ExecuteChildWorkflow(ctx, c.workflow, c.input))
}

// childRun is the child run of built-in runbook name (one of dsl.ChildRunbooks) for step s.
func (r *runbookRun) childRun(ctx workflow.Context, name string, s dsl.Step) (childRun, error) {
	ch := r.in.Children
	missing := fmt.Errorf("the run's input has no %s input: start runbooks with `pigwf start runbook`", name)
	switch name {
	case SwitchoverRunbook:
		if ch.Switchover == nil {
			return childRun{}, missing
		}
		in := *ch.Switchover
		in.Candidate = ""
		if s.Kind == dsl.KindSwitchover {
			in.Candidate = s.Switchover.Candidate
		}
		in.Reason = fmt.Sprintf("runbook %s, step %s (%s)", r.rb.Name, s.Name, r.rb.At(s))
		in.RequestedBy = r.in.RequestedBy
		in.Parent = r.gate.parentRequest(ctx)
		in.ClusterLocked = r.locked
		return childRun{SwitchoverName, in, func(ctx workflow.Context, f workflow.Future) (bool, string, error) {
			var res SwitchoverResult
			err := f.Get(ctx, &res)
			return res.Outcome == "switched", fmt.Sprintf("%s leads (%s)", res.Report.NewLeader, res.Approval.Summary()), err
		}}, nil
	case NodeInitRunbook:
		if ch.NodeInit == nil {
			return childRun{}, missing
		}
		in := *ch.NodeInit
		in.ClusterLocked = r.locked
		return childRun{NodeInitName, in, func(ctx workflow.Context, f workflow.Future) (bool, string, error) {
			var res NodeInitResult
			err := f.Get(ctx, &res)
			return res.Changed > 0, fmt.Sprintf("%d steps changed, %d unchanged", res.Changed, res.Unchanged), err
		}}, nil
	case PgClusterCreateRunbook:
		if ch.PgClusterCreate == nil {
			return childRun{}, missing
		}
		in := *ch.PgClusterCreate
		in.ClusterLocked = r.locked
		return childRun{PgClusterCreateName, in, func(ctx workflow.Context, f workflow.Future) (bool, string, error) {
			var res PgClusterCreateResult
			err := f.Get(ctx, &res)
			return res.Changed > 0, fmt.Sprintf("%d steps changed (primary %s)", res.Changed, res.Primary), err
		}}, nil
	case PgServiceRunbook:
		if ch.PgService == nil {
			return childRun{}, missing
		}
		in := *ch.PgService
		in.ClusterLocked = r.locked
		return childRun{PgServiceName, in, func(ctx workflow.Context, f workflow.Future) (bool, string, error) {
			var res PgServiceResult
			err := f.Get(ctx, &res)
			changed := 0
			for _, sr := range res.Steps {
				if sr.Changed {
					changed++
				}
			}
			return changed > 0, fmt.Sprintf("HAProxy changed on %d of %d members", changed, len(res.Steps)), err
		}}, nil
	}
	return childRun{}, fmt.Errorf("%s is not a runbook a step can start (%v)", name, dsl.ChildRunbooks)
}
