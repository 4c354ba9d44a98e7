package starter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// waitsForAlice has an approval Update whose validator refuses everyone but alice.
func waitsForAlice(ctx workflow.Context) (workflows.ApprovalState, error) {
	var st workflows.ApprovalState
	decided := false
	err := workflow.SetUpdateHandlerWithOptions(ctx, workflows.ApproveUpdate,
		func(ctx workflow.Context, d workflows.ApprovalDecision) (workflows.ApprovalState, error) {
			st, decided = workflows.ApprovalState{Decision: d.Decision, Approver: d.Approver}, true
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d workflows.ApprovalDecision) error {
			if d.Approver != "alice" {
				return fmt.Errorf("%s is not an approver for this run (approvers: alice)", d.Approver)
			}
			return nil
		}})
	if err != nil {
		return st, err
	}
	return st, workflow.Await(ctx, func() bool { return decided })
}

// temporalServer is a client of a private Temporal dev server (PIGWF_TEMPORAL_BIN) that lives as
// long as the test; without the server the test is skipped (or fails, in `make test`).
func temporalServer(t *testing.T) *starter.Client {
	t.Helper()
	if os.Getenv(testenv.EnvTemporalBin) == "" {
		if testenv.RequireIntegration() {
			t.Fatalf("%s is not set", testenv.EnvTemporalBin)
		}
		t.Skipf("needs a Temporal dev server: set %s (make test does)", testenv.EnvTemporalBin)
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	return env.Dial(t)
}

// noApprovalStep runs for a while and has no approval Update.
func noApprovalStep(ctx workflow.Context) error { return workflow.Sleep(ctx, time.Hour) }

// Decide and Status sort Temporal's answers by their types: the run's refusal (its validator, or
// no approval step at all) is a RefusedError, an unknown run a NotFoundError.
func TestDecideAndStatusClassifyByType(t *testing.T) {
	c := temporalServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const queue = "starter-test"
	w := worker.New(c.C, queue, worker.Options{})
	w.RegisterWorkflow(waitsForAlice)
	w.RegisterWorkflow(noApprovalStep)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for id, wf := range map[string]any{"approval/test": waitsForAlice, "plain/test": noApprovalStep} {
		if _, err := c.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, wf); err != nil {
			t.Fatal(err)
		}
	}

	var refused *chatops.RefusedError
	_, err := c.Decide(ctx, "approval/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "mallory"})
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "mallory is not an approver") {
		t.Errorf("a validator's refusal came back as %T %v", err, err)
	}
	_, err = c.Decide(ctx, "plain/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"})
	if !errors.As(err, &refused) {
		t.Errorf("a decision for a run without an approval step came back as %T %v", err, err)
	}
	var notFound *chatops.NotFoundError
	if _, err := c.Decide(ctx, "nosuch/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}); !errors.As(err, &notFound) {
		t.Errorf("a decision for an unknown run came back as %T %v", err, err)
	}
	if _, err := c.Status(ctx, "nosuch/test"); !errors.As(err, &notFound) {
		t.Errorf("the status of an unknown run came back as %T %v", err, err)
	}
	var noRun *starter.RunNotFoundError
	if _, err := c.Describe(ctx, "nosuch/test", ""); !errors.As(err, &noRun) || err.Error() != "no run nosuch/test in this namespace: `pigwf list` shows recent runs" {
		t.Errorf("describing an unknown run: %T %v", err, err)
	}
	c.WebUI = "http://127.0.0.1:8233/"
	dec, err := c.Decide(ctx, "approval/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"})
	if err != nil || dec.State.Approver != "alice" {
		t.Errorf("alice's approval: %+v, %v", dec, err)
	}
	if d, err := c.Describe(ctx, "approval/test", ""); err != nil || dec.RunURL != "http://127.0.0.1:8233/namespaces/default/workflows/approval%2Ftest/"+d.RunID+"/user-metadata" || d.WebURL != dec.RunURL {
		t.Errorf("the decision's link %q, the run's %q (%v)", dec.RunURL, d.WebURL, err)
	}
}
