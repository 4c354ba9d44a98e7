package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// lockOutcome is how one run started by a test workflow ended: "" when it succeeded, else its
// error's type and message.
type lockOutcome struct {
	ID      string `json:"id"`
	ErrType string `json:"err_type,omitempty"`
	Message string `json:"message,omitempty"`
}

func outcomeOf(id string, err error) lockOutcome {
	o := lockOutcome{ID: id}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		o.ErrType, o.Message = app.Type(), app.Message()
	} else if err != nil {
		o.ErrType, o.Message = "?", err.Error()
	}
	return o
}

// childRuns starts runs (workflow type, ID, input) as child runs at the same instant, waits for
// them all and returns how each ended: the test's stand-in for two `pigwf start`s (or a start
// and a schedule) racing on one cluster.
type startSpec struct {
	Workflow, ID string
	Input        any
}

func sameInstant(ctx workflow.Context, runs []startSpec) ([]lockOutcome, error) {
	futures := make([]workflow.ChildWorkflowFuture, len(runs))
	for i, r := range runs {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: r.ID})
		futures[i] = workflow.ExecuteChildWorkflow(cctx, r.Workflow, r.Input)
	}
	out := make([]lockOutcome, len(runs))
	for i, f := range futures {
		out[i] = outcomeOf(runs[i].ID, f.Get(ctx, nil))
	}
	return out, nil
}

// thenAgain runs first (as sameInstant does), and once they all ended, then: the lock is free
// again when its holder ends.
func thenAgain(ctx workflow.Context, first []startSpec, then startSpec) ([]lockOutcome, error) {
	out, _ := sameInstant(ctx, first)
	more, _ := sameInstant(ctx, []startSpec{then})
	return append(out, more...), nil
}

// lockEnv is a test environment with the runbooks, the test workflows, PgReload's and PgHBA's
// steps answered, and ClusterLockHolder naming, for the run asking, the other run of holders.
func lockEnv(holders ...string) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	env.RegisterWorkflow(sameInstant)
	env.RegisterWorkflow(thenAgain)
	a := &activities.Activities{}
	env.RegisterActivity(a)
	env.OnActivity(a.MemberReload, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberReloadInput) (activities.StepResult, error) {
		return activities.StepResult{Node: in.Member.Name}, nil
	})
	env.OnActivity(a.PgHBA, mockAny, mockAny).Return(func(_ context.Context, in activities.PgHBAInput) (activities.StepResult, error) {
		return activities.StepResult{Node: in.Node.Name}, nil
	})
	env.OnActivity(a.ClusterLockHolder, mockAny, mockAny).Return(func(_ context.Context, in activities.ExclusiveInput) (activities.ClusterRun, error) {
		for _, h := range holders {
			if h != in.WorkflowID {
				return activities.ClusterRun{WorkflowID: h, RunID: "r-" + h}, nil
			}
		}
		return activities.ClusterRun{}, errors.New("no holder")
	})
	return env
}

func reloadRun() startSpec {
	return startSpec{PgReloadName, WorkflowID(PgReloadRunbook, "pg-test"), PgReloadInput{Cluster: "pg-test", Members: pgRestartInput().Members}}
}

func hbaRun() startSpec { return startSpec{PgHBAName, WorkflowID(PgHBARunbook, "pg-test"), hbaInput()} }

// Two different runbooks started on one cluster in the same instant: exactly one runs, the other
// is refused (ClusterBusy, non-retryable) naming it, having changed nothing. Once the first has
// ended, the lock is free again.
func TestClusterLockOneOfTwo(t *testing.T) {
	reload, hba := reloadRun(), hbaRun()
	env := lockEnv(reload.ID, hba.ID)
	env.ExecuteWorkflow(thenAgain, []startSpec{reload, hba}, hbaRun())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out []lockOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	ran, refused := 0, 0
	for _, o := range out[:2] {
		switch o.ErrType {
		case "":
			ran++
		case ClusterBusyType:
			refused++
			other := reload.ID
			if o.ID == reload.ID {
				other = hba.ID
			}
			if !strings.Contains(o.Message, "cluster pg-test is busy: "+other+" (run r-"+other) || !strings.Contains(o.Message, "changed nothing") ||
				!strings.Contains(o.Message, "pigwf status "+other) {
				t.Errorf("%s's refusal does not name %s: %s", o.ID, other, o.Message)
			}
		default:
			t.Errorf("%s: %s %s", o.ID, o.ErrType, o.Message)
		}
	}
	if ran != 1 || refused != 1 {
		t.Errorf("ran %d, refused %d, want one each: %+v", ran, refused, out[:2])
	}
	if out[2].ErrType != "" {
		t.Errorf("a run after both ended could not take the lock: %+v", out[2])
	}
}

// The same run started twice at once under one ID is refused by Temporal itself; two runs of the
// same runbook differ only by ID (a scheduled run and one by hand): one of them runs.
func TestClusterLockScheduledAndByHand(t *testing.T) {
	byHand := hbaRun()
	scheduled := hbaRun()
	scheduled.ID = ScheduledWorkflowID(PgHBARunbook, "pg-test") + "-2026-12-01T02:00:00Z"
	env := lockEnv(byHand.ID, scheduled.ID)
	env.ExecuteWorkflow(sameInstant, []startSpec{scheduled, byHand})
	var out []lockOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if (out[0].ErrType == "") == (out[1].ErrType == "") || (out[0].ErrType != ClusterBusyType && out[1].ErrType != ClusterBusyType) {
		t.Errorf("want exactly one run and one refused as busy: %+v", out)
	}
}

// A child run with ClusterLocked under a parent holding the lock goes past it (to its first
// check: an input with no member); without it, it is refused (its parent holds the lock:
// ClusterLocked is how a parent says so).
func TestClusterLockChildRuns(t *testing.T) {
	for _, locked := range []bool{true, false} {
		env := lockEnv(WorkflowID(PgRestartRunbook, "pg-test"), "pg-hba/pg-test")
		env.RegisterWorkflow(holdingParent)
		env.ExecuteWorkflow(holdingParent, locked)
		var out []lockOutcome
		if err := env.GetWorkflowResult(&out); err != nil {
			t.Fatal(err)
		}
		if locked && out[0].ErrType != PgServiceFailedType || !locked && out[0].ErrType != ClusterBusyType {
			t.Errorf("ClusterLocked %v: %+v", locked, out)
		}
	}
}

// holdingParent takes pg-test's lock, as a runbook does, then runs pg-service as its child, with
// ClusterLocked as given.
func holdingParent(ctx workflow.Context, locked bool) ([]lockOutcome, error) {
	track, err := newTracker(ctx, PgRestartRunbook, "pg-test")
	if err != nil {
		return nil, err
	}
	if held, err := takeCluster(ctx, track, "pg-test", false); err != nil || !held {
		return nil, errors.New("the parent could not take the lock")
	}
	in := PgServiceInput{Cluster: "pg-test", ClusterLocked: locked}
	return sameInstant(ctx, []startSpec{{PgServiceName, WorkflowID(PgServiceRunbook, "pg-test"), in}})
}

// ClusterLocked in a run with no parent is not honoured: it takes the lock itself.
func TestClusterLockedIgnoredWithoutParent(t *testing.T) {
	env := lockEnv()
	in := hbaInput()
	env.ExecuteWorkflow(PgServiceName, PgServiceInput{Cluster: in.Cluster, ClusterLocked: true})
	p := queryProgress(t, env)
	if len(p.Steps) == 0 || p.Steps[0].Step != exclusiveStep.name || !strings.Contains(p.Steps[0].Detail, "held by this run") {
		t.Errorf("progress %+v", p.Steps)
	}
}
