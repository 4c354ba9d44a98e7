package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities"
)

func switchoverInput() SwitchoverInput {
	return SwitchoverInput{Cluster: "pg-test", Reason: "kernel upgrade", RequestedBy: "carol",
		Members:  []activities.MemberAPI{{Name: "pg-test-1", APIURL: "http://a:8008"}, {Name: "pg-test-2", APIURL: "http://b:8008"}},
		Approval: ApprovalPolicy{Approvers: []string{"alice", "bob"}, Timeout: 30 * time.Minute}}
}

type switchFake struct {
	executed int
	notes    []string
	refuse   error // the precheck's error, when set
}

func newSwitchEnv(t *testing.T, f *switchFake) *testsuite.TestWorkflowEnvironment {
	return newSwitchEnvWith(t, f, testApprovals)
}

// newSwitchEnvWith is a switchover's test environment whose worker reads the approvals file of
// trust; the gate's activities run for real.
func newSwitchEnvWith(t *testing.T, f *switchFake, trust activities.ApprovalTrust) *testsuite.TestWorkflowEnvironment {
	return newSwitchEnvOn(&testsuite.WorkflowTestSuite{}, f, trust)
}

// newSwitchEnvOn is newSwitchEnvWith in suite s (one with a metrics handler, say).
func newSwitchEnvOn(s *testsuite.WorkflowTestSuite, f *switchFake, trust activities.ApprovalTrust) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{Approvals: trust}
	env.RegisterActivity(a)
	env.OnActivity(a.SwitchoverPrecheck, mockAny, mockAny).Return(func(context.Context, activities.SwitchoverCheckInput) (activities.SwitchoverPlan, error) {
		if f.refuse != nil {
			return activities.SwitchoverPlan{}, f.refuse
		}
		return activities.SwitchoverPlan{Leader: "pg-test-1", Candidate: "pg-test-2", Why: "sync_standby/streaming, lag 0 bytes"}, nil
	})
	env.OnActivity(a.SwitchoverExecute, mockAny, mockAny).Return(func(context.Context, activities.SwitchoverExecInput) (activities.SwitchoverReport, error) {
		f.executed++
		return activities.SwitchoverReport{NewLeader: "pg-test-2", WriteDowntimeMs: 180}, nil
	})
	env.OnActivity(a.Verify, mockAny, mockAny).Return(activities.StepResult{}, nil)
	env.OnActivity(a.Notify, mockAny, mockAny).Return(func(_ context.Context, n activities.Notification) (string, error) {
		f.notes = append(f.notes, n.Event)
		return "ok", nil
	})
	return env
}

func TestApprovalApproveSwitches(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	signal(env, 5*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "go ahead"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SwitchoverResult
	env.GetWorkflowResult(&res)
	if f.executed != 1 || res.Outcome != "switched" {
		t.Fatalf("executed %d, result %+v", f.executed, res)
	}
	if strings.Join(f.notes, ",") != "approval-requested,run-ended" {
		t.Errorf("notifications = %v", f.notes)
	}
	ap := res.Approval
	if ap.Decision != DecisionApprove || ap.Approver != "alice" || ap.Comment != "go ahead" || ap.DecidedAt.Sub(ap.Requested) != 5*time.Minute {
		t.Errorf("approval record = %+v", ap)
	}
	if !strings.Contains(ap.Plan, "switch pg-test's primary from pg-test-1 to pg-test-2") || !strings.Contains(ap.Plan, "kernel upgrade") {
		t.Errorf("plan = %q", ap.Plan)
	}
}

func TestApprovalRejectChangesNothing(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob", Comment: "not during business hours"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "rejected by bob") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v", err)
	}
	if f.executed != 0 {
		t.Error("a rejected switchover ran")
	}
}

func TestApprovalTimeoutChangesNothing(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "the approval timed out") {
		t.Fatalf("err = %v", err)
	}
	if f.executed != 0 {
		t.Error("a timed-out switchover ran")
	}
}

// A decision from someone not on the worker's allow-list is recorded and never acted on; a later
// decision from an approver goes through.
func TestApprovalUnauthorizedIsRecordedNotActedOn(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "mallory"})
	env.RegisterDelayedCallback(func() {
		val, err := env.QueryWorkflow(ApprovalQuery)
		if err != nil {
			t.Error(err)
			return
		}
		var st ApprovalState
		val.Get(&st)
		if !st.Waiting || len(st.Ignored) != 1 || st.Ignored[0].Approver != "mallory" || !strings.Contains(st.Ignored[0].Reason, "mallory is not an approver") {
			t.Errorf("after mallory: %+v", st)
		}
		if f.executed != 0 {
			t.Error("mallory's approval was acted on")
		}
	}, 2*time.Minute)
	signal(env, 3*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SwitchoverResult
	env.GetWorkflowResult(&res)
	if res.Approval.Approver != "bob" || len(res.Approval.Ignored) != 1 {
		t.Errorf("approval = %+v", res.Approval)
	}
}

// The Update answers the sender at once: an unauthorized approver is refused by the validator.
func TestApprovalUpdateValidator(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	var refused, accepted error
	var acceptedState ApprovalState
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ApproveUpdate, "u1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { refused = err },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ApprovalDecision{Decision: DecisionApprove, Approver: "mallory"})
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ApproveUpdate, "u2", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { accepted = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if s, ok := v.(ApprovalState); ok {
					acceptedState = s
				}
			},
		}, signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "via update"}))
	}, 2*time.Minute)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if refused == nil || !strings.Contains(refused.Error(), "mallory is not an approver") {
		t.Errorf("mallory's update: %v", refused)
	}
	if accepted != nil {
		t.Errorf("alice's update was rejected: %v", accepted)
	}
	if acceptedState.Approver != "alice" || f.executed != 1 {
		t.Errorf("state %+v, executed %d", acceptedState, f.executed)
	}
}
