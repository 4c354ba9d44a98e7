package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/dsl"
)

// Every built-in runbook a step may start runs as a child run under "<run ID>/<step>", with the
// input the CLI built for it.
func TestRunbookChildRunbooks(t *testing.T) {
	text := "runbook: c\nsteps:\n  - name: ok\n    approval: {}\n"
	for _, name := range dsl.ChildRunbooks {
		text += fmt.Sprintf("  - name: run-%s\n    runbook: {name: %s}\n", name, name)
	}
	in := runbookInput(t, text)
	in.Children.NodeInit = &NodeInitInput{Cluster: "pg-test"}
	in.Children.PgClusterCreate = &PgClusterCreateInput{Cluster: "pg-test"}
	in.Children.PgService = &PgServiceInput{Cluster: "pg-test"}
	f := &runbookFake{}
	env := newRunbookEnv(t, f, testApprovals)
	var mu sync.Mutex
	var started []string
	child := func(ctx workflow.Context, cluster string) {
		mu.Lock()
		defer mu.Unlock()
		info := workflow.GetInfo(ctx)
		started = append(started, info.WorkflowType.Name+" "+info.WorkflowExecution.ID+" "+cluster)
	}
	env.OnWorkflow(NodeInitName, mockAny, mockAny).Return(func(ctx workflow.Context, in NodeInitInput) (NodeInitResult, error) {
		child(ctx, in.Cluster)
		return NodeInitResult{Changed: 2}, nil
	})
	env.OnWorkflow(PgClusterCreateName, mockAny, mockAny).Return(func(ctx workflow.Context, in PgClusterCreateInput) (PgClusterCreateResult, error) {
		child(ctx, in.Cluster)
		return PgClusterCreateResult{}, nil
	})
	env.OnWorkflow(PgServiceName, mockAny, mockAny).Return(func(ctx workflow.Context, in PgServiceInput) (PgServiceResult, error) {
		child(ctx, in.Cluster)
		return PgServiceResult{Steps: []activities.StepResult{{Changed: true}}}, nil
	})
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NodeInit runbook/pg-test/run-node-init pg-test",
		"PgClusterCreate runbook/pg-test/run-pg-cluster-create pg-test",
		"PgService runbook/pg-test/run-pg-service pg-test",
	}
	if strings.Join(started, "\n") != strings.Join(want, "\n") || len(f.children) != 1 {
		t.Errorf("children:\n%s\nswitchovers %d; want:\n%s", strings.Join(started, "\n"), len(f.children), strings.Join(want, "\n"))
	}
	rows := progressOf(t, env)
	for _, want := range []string{"-/run-node-init=changed", "-/run-pg-cluster-create=unchanged", "-/run-pg-service=changed", "-/run-switchover=changed"} {
		if !strings.Contains(rows, want) {
			t.Errorf("progress %s\nlacks %s", rows, want)
		}
	}
}

// A child switchover that is not approved ends the run as not approved.
func TestRunbookChildSwitchoverRejected(t *testing.T) {
	in := runbookInput(t, "runbook: s\nsteps:\n  - name: ok\n    approval: {}\n  - name: move\n    switchover: {candidate: pg-test-3}\n  - name: after\n    reload: {}\n")
	f := &runbookFake{childRes: func(SwitchoverInput) (SwitchoverResult, error) {
		return SwitchoverResult{}, temporal.NewNonRetryableApplicationError("switchover of pg-test rejected by bob: nothing was changed", SwitchoverRejectedType, nil)
	}}
	env := newRunbookEnv(t, f, testApprovals)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "step move (test.yml:5): child run runbook/pg-test/move: switchover of pg-test rejected by bob") {
		t.Fatalf("err = %v", err)
	}
	if res.Outcome != "not approved" || f.children[0].Candidate != "pg-test-3" || strings.Contains(f.log(), "reload") {
		t.Errorf("outcome %q, child %+v, calls %s", res.Outcome, f.children, f.log())
	}
}

// Under four eyes, the child switchover knows the requester the runbook's signed request proved:
// the requester cannot approve the switchover, another approver can. Without the parent's proof
// the child would have no known requester, and no approval could count.
func TestRunbookChildSwitchoverFourEyes(t *testing.T) {
	trust := approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob, carol], four_eyes: true }`+"\n")
	in := runbookInput(t, "runbook: s\nsteps:\n  - name: ok\n    approval: {}\n  - name: move\n    switchover: {}\n")
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	Register(env)
	a := &activities.Activities{Approvals: trust}
	env.RegisterActivity(a)
	var mu sync.Mutex
	var childRun approval.Run
	env.OnActivity(a.ApprovalPolicy, mockAny, mockAny).Return(func(ctx context.Context, pin activities.ApprovalPolicyInput) (approval.Policy, error) {
		if pin.Runbook == SwitchoverRunbook {
			mu.Lock()
			we := activity.GetInfo(ctx).WorkflowExecution
			childRun = approval.Run{WorkflowID: we.ID, RunID: we.RunID}
			mu.Unlock()
		}
		return a.ApprovalPolicy(ctx, pin)
	})
	env.OnActivity(a.SwitchoverPrecheck, mockAny, mockAny).Return(activities.SwitchoverPlan{Leader: "pg-test-1", Candidate: "pg-test-2", Why: "streaming"}, nil)
	executed := 0
	env.OnActivity(a.SwitchoverExecute, mockAny, mockAny).Return(func(context.Context, activities.SwitchoverExecInput) (activities.SwitchoverReport, error) {
		executed++
		return activities.SwitchoverReport{NewLeader: "pg-test-2"}, nil
	})
	env.OnActivity(a.Verify, mockAny, mockAny).Return(activities.StepResult{}, nil)
	env.OnActivity(a.Notify, mockAny, mockAny).Return("ok", nil)
	requestSignal(env, "carol")
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	toChild := func(after time.Duration, approver string) {
		env.RegisterDelayedCallback(func() {
			mu.Lock()
			run := childRun
			mu.Unlock()
			d := ApprovalDecision{Decision: DecisionApprove, Approver: approver}
			if err := approval.Sign(&d, testKeys[approver], run.WorkflowID, run.RunID, time.Now()); err != nil {
				t.Error(err)
			}
			if err := env.SignalWorkflowByID(run.WorkflowID, ApproveSignal, d); err != nil {
				t.Error(err)
			}
		}, after)
	}
	toChild(2*time.Minute, "carol")
	toChild(3*time.Minute, "bob")
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if childRun.WorkflowID != "runbook/pg-test/move" || executed != 1 || res.Outcome != "done" {
		t.Fatalf("child %+v, executed %d, result %+v", childRun, executed, res)
	}
	if rows := progressOf(t, env); !strings.Contains(rows, "-/move=changed") {
		t.Errorf("progress %s", rows)
	}
	found := false
	for _, s := range res.Steps {
		found = found || (s.Step == "move" && strings.Contains(s.Detail, "pg-test-2 leads (approved by bob"))
	}
	if !found {
		t.Errorf("steps %+v: want the switchover approved by bob", res.Steps)
	}
}
