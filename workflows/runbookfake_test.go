package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/dsl"
)

// A custom runbook's run with fake member activities: the agents' answers, recorded in order.

var runbookMembers = []string{"pg-test-1", "pg-test-2", "pg-test-3"}

// runbookInput is the run of a runbook file's text on pg-test (pg-test-1 leads).
func runbookInput(t *testing.T, text string) RunbookInput {
	t.Helper()
	rb, err := dsl.Parse("test.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	in := RunbookInput{Cluster: "pg-test", Runbook: *rb, RequestedBy: "carol", Port: 5432, Approval: ApprovalPolicy{Timeout: 30 * time.Minute},
		DCS: activities.DCSInput{Endpoints: []string{"https://10.0.0.11:2379"}, Namespace: "/pigwf", Cluster: "pg-test"}}
	for i, m := range runbookMembers {
		addr := fmt.Sprintf("10.0.0.1%d", i+1)
		in.Members = append(in.Members, activities.MemberAPI{Name: m, APIURL: "https://" + addr + ":8008"})
		in.Nodes = append(in.Nodes, activities.Node{Addr: addr, Name: m, SSHHost: addr, SSHPort: 22, SSHUser: "root"})
	}
	in.Children.Switchover = &SwitchoverInput{Cluster: "pg-test", DCS: in.DCS, Members: in.Members, MaxLagBytes: 1 << 20, Approval: in.Approval}
	return in
}

// runbookFake answers the member activities and records each call as "activity member".
type runbookFake struct {
	mu     sync.Mutex
	calls  []string
	leader string // the leader ReadClusterState reports

	unchanged map[string]bool                        // "activity member" that change nothing
	fail      func(call string, attempt int32) error // an activity's failure, by call and attempt
	onCall    func(call string)                      // called as each activity starts
	restarts  map[string][]time.Time                 // StartedBefore of each MemberRestart attempt, by member
	waits     []activities.WaitMembersInput          // WaitMembers' inputs
	sqls      []activities.RunSQLInput               // RunSQL's inputs
	children  []SwitchoverInput                      // the child switchovers' inputs
	childRes  func(SwitchoverInput) (SwitchoverResult, error)
}

func (f *runbookFake) record(ctx context.Context, call string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	onCall, fail := f.onCall, f.fail
	f.mu.Unlock()
	if onCall != nil {
		onCall(call)
	}
	if fail != nil {
		return fail(call, attemptOf(ctx))
	}
	return nil
}

func (f *runbookFake) result(call string) activities.StepResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unchanged[call] {
		return activities.StepResult{Notes: []string{"nothing to do"}}
	}
	return activities.StepResult{Changed: true, Changes: []string{call}}
}

func (f *runbookFake) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "\n")
}

func attemptOf(ctx context.Context) int32 {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).Attempt
	}
	return 1
}

// newRunbookEnv is a test environment running Runbook against f; the approval gate's
// activities run for real against trust.
func newRunbookEnv(t *testing.T, f *runbookFake, trust activities.ApprovalTrust) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	Register(env)
	a := &activities.Activities{Approvals: trust}
	env.RegisterActivity(a)
	if f.leader == "" {
		f.leader = "pg-test-1"
	}
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(ctx context.Context, _ activities.ClusterStateInput) (activities.ClusterState, error) {
		if err := f.record(ctx, "state"); err != nil {
			return activities.ClusterState{}, err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		st := activities.ClusterState{Leader: f.leader, View: "leader " + f.leader}
		for _, m := range runbookMembers {
			if m != f.leader {
				st.Replicas = append(st.Replicas, m)
			}
		}
		return st, nil
	})
	env.OnActivity(a.MemberRestart, mockAny, mockAny).Return(func(ctx context.Context, in activities.MemberRestartInput) (activities.StepResult, error) {
		f.mu.Lock()
		if f.restarts == nil {
			f.restarts = map[string][]time.Time{}
		}
		f.restarts[in.Member.Name] = append(f.restarts[in.Member.Name], in.StartedBefore)
		f.mu.Unlock()
		call := "restart " + in.Member.Name
		if err := f.record(ctx, call); err != nil {
			return activities.StepResult{}, err
		}
		return f.result(call), nil
	})
	env.OnActivity(a.MemberReload, mockAny, mockAny).Return(func(ctx context.Context, in activities.MemberReloadInput) (activities.StepResult, error) {
		call := "reload " + in.Member.Name
		if err := f.record(ctx, call); err != nil {
			return activities.StepResult{}, err
		}
		return f.result(call), nil
	})
	env.OnActivity(a.WaitMembers, mockAny, mockAny).Return(func(ctx context.Context, in activities.WaitMembersInput) (activities.StepResult, error) {
		f.mu.Lock()
		f.waits = append(f.waits, in)
		f.mu.Unlock()
		if err := f.record(ctx, "wait "+in.Until+" "+strings.Join(in.Targets, ",")); err != nil {
			return activities.StepResult{}, err
		}
		return activities.StepResult{Notes: []string{"holds"}}, nil
	})
	env.OnActivity(a.RunSQL, mockAny, mockAny).Return(func(ctx context.Context, in activities.RunSQLInput) (activities.StepResult, error) {
		f.mu.Lock()
		f.sqls = append(f.sqls, in)
		f.mu.Unlock()
		call := "sql " + in.Node.Name
		if err := f.record(ctx, call); err != nil {
			return activities.StepResult{}, err
		}
		return f.result(call), nil
	})
	env.OnActivity(a.SetPassword, mockAny, mockAny).Return(func(ctx context.Context, in activities.SetPasswordInput) (activities.StepResult, error) {
		call := "password " + in.Node.Name + " " + in.Role + " " + in.Secret
		if err := f.record(ctx, call); err != nil {
			return activities.StepResult{}, err
		}
		return f.result(call), nil
	})
	env.OnActivity(a.Notify, mockAny, mockAny).Return("ok", nil)
	env.OnWorkflow(SwitchoverName, mockAny, mockAny).Return(func(_ workflow.Context, in SwitchoverInput) (SwitchoverResult, error) {
		f.mu.Lock()
		f.children = append(f.children, in)
		f.calls = append(f.calls, "switchover")
		res := f.childRes
		f.mu.Unlock()
		if res != nil {
			return res(in)
		}
		f.mu.Lock()
		f.leader = "pg-test-2"
		f.mu.Unlock()
		return SwitchoverResult{Cluster: in.Cluster, Outcome: "switched", Report: activities.SwitchoverReport{NewLeader: "pg-test-2"}}, nil
	})
	return env
}

// runbookResult is the run's result, from the failure's details when it failed.
func runbookResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) (RunbookResult, error) {
	t.Helper()
	return runOutcome[RunbookResult](t, env)
}

// progressOf is the run's progress as "node/step=state" rows.
func progressOf(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	p := queryProgress(t, env)
	rows := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		rows[i] = orDefault(s.Node, "-") + "/" + s.Step + "=" + s.State
	}
	return strings.Join(rows, " ")
}
