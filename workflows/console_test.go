package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// While a switchover waits for approval, its Current Details (what the Web UI shows on the run's
// page) say what it will do, who may approve, until when, and how; RunState follows the phase.
func TestConsoleWhileWaitingForApproval(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	var states []string
	recordStates(env, &states)
	var waiting string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow("__temporal_workflow_metadata")
		if err != nil {
			t.Errorf("metadata query: %v", err)
			return
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		waiting = md.GetCurrentDetails()
	}, time.Minute)
	signalFor(env, 5*time.Minute, "switchover/pg-test", ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "switchover/pg-test"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"switchover pg-test: waiting for approval",
		"from pg-test-1 to pg-test-2",
		"**Approvers:** one of alice, bob; signed decisions only (the worker's approvals policy)",
		"`pigwf approve switchover/pg-test --by NAME",
		"`/pigwf approve switchover/pg-test [comment]`",
		"| - | approval | running |",
	} {
		if !strings.Contains(waiting, want) {
			t.Errorf("current details while waiting lack %q:\n%s", want, waiting)
		}
	}
	if got := strings.Join(states, ","); got != "running,waiting for approval,running,done" {
		t.Errorf("RunState went %s", got)
	}
}

// A rejected run ends with RunState failed.
func TestConsoleRejectedRunIsFailed(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	var states []string
	recordStates(env, &states)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if env.GetWorkflowError() == nil {
		t.Fatal("a rejected switchover succeeded")
	}
	if got := strings.Join(states, ","); got != "running,waiting for approval,running,failed" {
		t.Errorf("RunState went %s", got)
	}
}

func TestStepSummary(t *testing.T) {
	for _, c := range []struct {
		s    step
		want string
	}{
		{memberStep("pg-test-2", "clone", retry{}), "pg-test-2: clone"},
		{step{node: "pg-test-2", name: "clone", what: "clone from pg-test-1"}, "pg-test-2: clone from pg-test-1"},
		{controlStep("precheck", retry{}), "precheck"},
	} {
		if got := c.s.summary(); got != c.want {
			t.Errorf("summary of %+v = %q, want %q", c.s, got, c.want)
		}
	}
}

// recordStates appends every RunState the run upserts to states.
func recordStates(env *testsuite.TestWorkflowEnvironment, states *[]string) {
	env.OnUpsertTypedSearchAttributes(mockAny).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(SearchAttrState); ok {
			*states = append(*states, v)
		}
	}).Return(nil)
}
