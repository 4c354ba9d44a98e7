package starter_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/approval"
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
			// The comment reports the run the decision was signed for, and by whom.
			st, decided = workflows.ApprovalState{Decision: d.Decision, Approver: d.Approver, Comment: d.WorkflowID + " " + d.RunID + " " + d.Signer}, true
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
	return testenv.Server(t).Dial(t)
}

// testKey is a fresh key for name.
func testKey(t *testing.T, name string) approval.Key {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := approval.CreateKey(dir, name); err != nil {
		t.Fatal(err)
	}
	k, err := approval.LoadKey(name, filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return k
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
	_, err := c.Decide(ctx, "approval/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "mallory"}, nil)
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "mallory is not an approver") {
		t.Errorf("a validator's refusal came back as %T %v", err, err)
	}
	_, err = c.Decide(ctx, "plain/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, nil)
	if !errors.As(err, &refused) {
		t.Errorf("a decision for a run without an approval step came back as %T %v", err, err)
	}
	var notFound *chatops.NotFoundError
	if _, err := c.Decide(ctx, "nosuch/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, nil); !errors.As(err, &notFound) {
		t.Errorf("a decision for an unknown run came back as %T %v", err, err)
	}
	if _, err := c.Status(ctx, "nosuch/test"); !errors.As(err, &notFound) {
		t.Errorf("the status of an unknown run came back as %T %v", err, err)
	}
	var noRun *starter.RunNotFoundError
	if _, err := c.Describe(ctx, "nosuch/test", ""); !errors.As(err, &noRun) || err.Error() != "no run nosuch/test in this namespace: `pigwf list` shows recent runs" {
		t.Errorf("describing an unknown run: %T %v", err, err)
	}
	// A signed decision is bound to the run open under the ID; an unknown run is not found
	// before anything is signed.
	key := testKey(t, "alice")
	if _, err := c.Decide(ctx, "nosuch/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, &key); !errors.As(err, &notFound) {
		t.Errorf("a signed decision for an unknown run came back as %T %v", err, err)
	}
	c.WebUI = "http://127.0.0.1:8233/"
	dec, err := c.Decide(ctx, "approval/test", workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, &key)
	if err != nil || dec.State.Approver != "alice" {
		t.Errorf("alice's approval: %+v, %v", dec, err)
	}
	d, err := c.Describe(ctx, "approval/test", "")
	if err != nil || dec.RunURL != "http://127.0.0.1:8233/namespaces/default/workflows/approval%2Ftest/"+d.RunID+"/user-metadata" || d.WebURL != dec.RunURL {
		t.Errorf("the decision's link %q, the run's %q (%v)", dec.RunURL, d.WebURL, err)
	}
	if want := "approval/test " + d.RunID + " alice"; dec.State.Comment != want {
		t.Errorf("the run received a decision signed for %q, want %q", dec.State.Comment, want)
	}
}
