package workflows

import (
	"context"
	"errors"
	"slices"
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
)

func pgRestartInput() PgRestartInput {
	in := PgRestartInput{Cluster: "pg-test", RequestedBy: "carol", Approval: ApprovalPolicy{Timeout: 30 * time.Minute}}
	for _, n := range []string{"pg-test-1", "pg-test-2", "pg-test-3"} {
		in.Members = append(in.Members, activities.MemberAPI{Name: n, APIURL: "https://" + n + ":8008"})
	}
	return in
}

// threeMemberState: pg-test-1 leads; pg-test-2 is its synchronous standby; pg-test-3 streams.
func threeMemberState() activities.ClusterState {
	return activities.ClusterState{Leader: "pg-test-1", LeaderPrimary: true, Replicas: []string{"pg-test-2", "pg-test-3"},
		Streaming: []string{"pg-test-2", "pg-test-3"}, SyncStandbys: []string{"pg-test-2"}, View: "pg-test-1 leader/running; ..."}
}

// restartFake records what a PgRestart run asks of the cluster, in order.
type restartFake struct {
	mu      sync.Mutex
	state   activities.ClusterState // what ReadClusterState answers
	calls   []string                // "restart pg-test-2", "wait pg-test-2", "read", "switchover → pg-test-2"
	before  map[string][]time.Time  // StartedBefore of each attempt, by member
	pending []bool                  // MemberRestartInput.Pending of each attempt
	// failFirst: the first restart attempt of this member fails as a dead worker's would.
	failFirst string
	// leads: this member's agent answers 409, as the leader's does.
	leads string
	// child is the Switchover input; childErr its failure, when set.
	child    *SwitchoverInput
	childErr error
}

func (f *restartFake) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

// newRestartEnv is a PgRestart test environment with fake member steps; the switchover child is
// faked too unless realChild, when the real Switchover runs with fake agents and the gate's
// activities run for real against trust.
func newRestartEnv(f *restartFake, trust activities.ApprovalTrust, realChild bool) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{Approvals: trust}
	env.RegisterActivity(a)
	f.before = map[string][]time.Time{}
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(context.Context, activities.ClusterStateInput) (activities.ClusterState, error) {
		f.record("read")
		return f.state, nil
	})
	env.OnActivity(a.MemberRestart, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberRestartInput) (activities.StepResult, error) {
		f.mu.Lock()
		f.before[in.Member.Name] = append(f.before[in.Member.Name], in.StartedBefore)
		f.pending = append(f.pending, in.Pending)
		attempt := len(f.before[in.Member.Name])
		f.mu.Unlock()
		f.record("restart " + in.Member.Name)
		switch {
		case in.Member.Name == f.leads:
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(in.Member.Name+" leads the cluster", activities.ErrLeaderRestartRefused, nil)
		case in.Member.Name == f.failFirst && attempt == 1:
			return activities.StepResult{}, errors.New("the worker died")
		}
		// The old leader was restarted by the switchover's demotion: not again.
		if f.child != nil && in.Member.Name == f.state.Leader {
			return activities.StepResult{Node: in.Member.Name, Step: activities.StepMemberRestart, Notes: []string{"not restarted: started after started_before"},
				Facts: map[string]string{"postmaster_start": in.StartedBefore.Add(time.Minute).Format(time.RFC3339Nano)}}, nil
		}
		return activities.StepResult{Node: in.Member.Name, Step: activities.StepMemberRestart, Changed: true, Changes: []string{"restarted PostgreSQL"},
			Facts: map[string]string{"postmaster_start": in.StartedBefore.Add(time.Second).Format(time.RFC3339Nano)}}, nil
	})
	env.OnActivity(a.WaitMembers, mockAny, mockAny).Return(func(_ context.Context, in activities.WaitMembersInput) (activities.StepResult, error) {
		f.record("wait " + strings.Join(in.Targets, ",") + " " + in.Until)
		return activities.StepResult{Notes: []string{"streams"}}, nil
	})
	if !realChild {
		env.OnWorkflow(Switchover, mockAny, mockAny).Return(func(_ workflow.Context, in SwitchoverInput) (SwitchoverResult, error) {
			f.child = &in
			f.record("switchover → " + in.Candidate)
			if f.childErr != nil {
				return SwitchoverResult{}, f.childErr
			}
			return SwitchoverResult{Cluster: in.Cluster, Outcome: "switched", Report: activities.SwitchoverReport{NewLeader: orDefault(in.Candidate, "pg-test-3"), WriteDowntimeMs: 150}}, nil
		})
		return env
	}
	env.OnActivity(a.SwitchoverPrecheck, mockAny, mockAny).Return(func(ctx context.Context, in activities.SwitchoverCheckInput) (activities.SwitchoverPlan, error) {
		f.child = &SwitchoverInput{Candidate: in.Candidate}
		f.record("switchover → " + in.Candidate)
		info := activity.GetInfo(ctx).WorkflowExecution
		f.mu.Lock()
		f.calls = append(f.calls, "child "+info.ID+" "+info.RunID)
		f.mu.Unlock()
		return activities.SwitchoverPlan{Leader: "pg-test-1", Candidate: in.Candidate, Why: "sync_standby/streaming"}, nil
	})
	env.OnActivity(a.SwitchoverExecute, mockAny, mockAny).Return(activities.SwitchoverReport{NewLeader: "pg-test-2", WriteDowntimeMs: 150}, nil)
	env.OnActivity(a.Verify, mockAny, mockAny).Return(activities.StepResult{}, nil)
	env.OnActivity(a.Notify, mockAny, mockAny).Return("ok", nil)
	return env
}

// runRestart runs PgRestart and returns its result (from the failure's details when it failed).
func runRestart(t *testing.T, env *testsuite.TestWorkflowEnvironment, in PgRestartInput) (PgRestartResult, error) {
	t.Helper()
	env.ExecuteWorkflow(PgRestartName, in)
	return runOutcome[PgRestartResult](t, env)
}

// The replicas one at a time, each streaming before the next; then the switchover child onto the
// restarted synchronous standby, carrying the requester's signed request; then the old leader as
// a replica. Every restart passes the same StartedBefore, the run's start.
func TestPgRestartOrder(t *testing.T) {
	f := &restartFake{state: threeMemberState()}
	env := newRestartEnv(f, testApprovals, false)
	requestSignal(env, "carol")
	res, err := runRestart(t, env, pgRestartInput())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "restart pg-test-2", "wait pg-test-2 streaming", "restart pg-test-3", "wait pg-test-3 streaming",
		"read", "switchover → pg-test-2", "restart pg-test-1", "wait pg-test-1 streaming"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls\n  %v\nwant\n  %v", f.calls, want)
	}
	if res.Outcome != "restarted" || !slices.Equal(res.Restarted, []string{"pg-test-2", "pg-test-3", "pg-test-1"}) || res.Switchover == nil {
		t.Errorf("result %+v", res)
	}
	var all []time.Time
	for _, ts := range f.before {
		all = append(all, ts...)
	}
	for _, ts := range all {
		if !ts.Equal(all[0]) || ts.IsZero() {
			t.Fatalf("StartedBefore %v: want one instant for every restart", f.before)
		}
	}
	c := f.child
	if c.Cluster != "pg-test" || c.Candidate != "pg-test-2" || c.Parent == nil || len(c.Parent.Requests) != 1 || c.Parent.Requests[0].Approver != "carol" ||
		!strings.Contains(c.Reason, "restart the leader pg-test-1 as a replica") {
		t.Errorf("switchover input %+v", c)
	}
}

// --pending restarts only the members that wait for a restart, and asks their agents to restart
// only if they still do; a leader that waits for nothing needs no switchover.
func TestPgRestartPendingOnly(t *testing.T) {
	f := &restartFake{state: threeMemberState()}
	f.state.PendingRestart = []string{"pg-test-3"}
	env := newRestartEnv(f, testApprovals, false)
	in := pgRestartInput()
	in.Pending = true
	res, err := runRestart(t, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"read", "restart pg-test-3", "wait pg-test-3 streaming"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if !slices.Equal(f.pending, []bool{true}) || !slices.Equal(res.Plan.Left, []string{"pg-test-1: nothing waits for a restart", "pg-test-2: nothing waits for a restart"}) {
		t.Errorf("pending %v, plan %+v", f.pending, res.Plan)
	}
}

// --member restarts that member only: a replica by itself, the leader through a switchover.
func TestPgRestartOneMember(t *testing.T) {
	for _, tc := range []struct {
		member string
		want   []string
	}{
		{"pg-test-3", []string{"read", "restart pg-test-3", "wait pg-test-3 streaming"}},
		{"pg-test-1", []string{"read", "read", "switchover → ", "restart pg-test-1", "wait pg-test-1 streaming"}},
	} {
		f := &restartFake{state: threeMemberState()}
		// Nothing was restarted before the switchover, and pg-test-2 waits for a restart
		// itself: it is no candidate of pg-restart's choosing (the switchover chooses).
		f.state.PendingRestart = []string{"pg-test-2"}
		env := newRestartEnv(f, testApprovals, false)
		in := pgRestartInput()
		in.Member = tc.member
		if _, err := runRestart(t, env, in); err != nil {
			t.Fatalf("--member %s: %v", tc.member, err)
		}
		if !slices.Equal(f.calls, tc.want) {
			t.Errorf("--member %s: calls %v, want %v", tc.member, f.calls, tc.want)
		}
	}
}

func TestPgRestartNothingToDo(t *testing.T) {
	f := &restartFake{state: threeMemberState()}
	env := newRestartEnv(f, testApprovals, false)
	in := pgRestartInput()
	in.Pending = true
	res, err := runRestart(t, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "nothing to restart" || !slices.Equal(f.calls, []string{"read"}) || !res.Plan.Nothing() {
		t.Errorf("result %+v, calls %v", res, f.calls)
	}
}

// Refused before anything changes, with what to do.
func TestPgRestartRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*activities.ClusterState, *PgRestartInput)
		want   string
	}{
		{"unknown member", func(_ *activities.ClusterState, in *PgRestartInput) { in.Member = "pg-test-9" },
			"--member pg-test-9 is not a member of pg-test (members: pg-test-1, pg-test-2, pg-test-3)"},
		{"no leader", func(st *activities.ClusterState, _ *PgRestartInput) { st.Leader, st.LeaderPrimary = "", false }, "the cluster has no leader"},
		{"a leader that does not take writes", func(st *activities.ClusterState, _ *PgRestartInput) { st.LeaderPrimary = false },
			"its leader pg-test-1 does not answer as a primary"},
		{"paused", func(st *activities.ClusterState, _ *PgRestartInput) { st.Paused = true }, "`pigwf ha resume --cluster pg-test` first"},
		{"a member pigwf cannot reach", func(_ *activities.ClusterState, in *PgRestartInput) { in.Members = in.Members[:2] },
			"pg-test-3 is a member of pg-test in the DCS but not in the inventory"},
		{"a leader with no replica to take over", func(st *activities.ClusterState, _ *PgRestartInput) { st.Streaming, st.SyncStandbys = nil, nil },
			"restarting the leader pg-test-1 needs a switchover, and no replica streams to take over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &restartFake{state: threeMemberState()}
			in := pgRestartInput()
			tc.change(&f.state, &in)
			_, err := runRestart(t, newRestartEnv(f, testApprovals, false), in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != PgRestartRefusedType || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("error %v, want %s saying %q", err, PgRestartRefusedType, tc.want)
			}
			if !slices.Equal(f.calls, []string{"read"}) {
				t.Errorf("calls %v: something ran after the refusal", f.calls)
			}
		})
	}
}

// A restart retried after its worker died passes the StartedBefore of the first attempt, so
// the agent finds the postmaster it already restarted and leaves it alone.
func TestPgRestartRetryKeepsStartedBefore(t *testing.T) {
	f := &restartFake{state: threeMemberState(), failFirst: "pg-test-2"}
	env := newRestartEnv(f, testApprovals, false)
	in := pgRestartInput()
	in.Member = "pg-test-2"
	start := env.Now()
	if _, err := runRestart(t, env, in); err != nil {
		t.Fatal(err)
	}
	got := f.before["pg-test-2"]
	if len(got) != 2 || !got[0].Equal(start) || !got[1].Equal(start) {
		t.Errorf("StartedBefore of the attempts: %v, want two, both the run's start %s", got, start)
	}
}

// A member that leads when the plan said replica (a failover meanwhile) stops the run, typed
// by the agent's 409, with what was restarted before.
func TestPgRestartMemberLeadsNow(t *testing.T) {
	f := &restartFake{state: threeMemberState(), leads: "pg-test-3"}
	res, err := runRestart(t, newRestartEnv(f, testApprovals, false), pgRestartInput())
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgRestartFailedType || !strings.Contains(err.Error(), "pg-test-3 leads the cluster now") ||
		!strings.Contains(err.Error(), "restarted before that: pg-test-2") {
		t.Fatalf("error %v", err)
	}
	if f.child != nil || slices.Contains(f.calls, "restart pg-test-1") || !slices.Equal(res.Restarted, []string{"pg-test-2"}) {
		t.Errorf("calls %v, result %+v: the run went on", f.calls, res)
	}
}

// A switchover that is not approved leaves the leader alone, and the run says so.
func TestPgRestartSwitchoverNotApproved(t *testing.T) {
	f := &restartFake{state: threeMemberState(),
		childErr: temporal.NewNonRetryableApplicationError("switchover of pg-test rejected by bob: nothing was changed", SwitchoverRejectedType, nil)}
	_, err := runRestart(t, newRestartEnv(f, testApprovals, false), pgRestartInput())
	if err == nil || !strings.Contains(err.Error(), "the switchover did not happen (switchover of pg-test rejected by bob") ||
		!strings.Contains(err.Error(), "the leader pg-test-1 was not restarted") {
		t.Fatalf("error %v", err)
	}
	if slices.Contains(f.calls, "restart pg-test-1") {
		t.Errorf("calls %v: the leader was restarted", f.calls)
	}
}

// The real Switchover as the child, under four eyes: the requester's signed request to the
// pg-restart run proves carol the requester of the child too, so bob's approval counts and
// carol's does not.
func TestPgRestartChildSwitchoverKnowsTheRequester(t *testing.T) {
	f := &restartFake{state: threeMemberState()}
	env := newRestartEnv(f, approvalsWith(t, `  - { cluster: "*", approvers: [bob, carol], four_eyes: true }`+"\n"), true)
	requestSignal(env, "carol")
	decide := func(after time.Duration, approver string) {
		env.RegisterDelayedCallback(func() {
			f.mu.Lock()
			var id, runID string
			for _, c := range f.calls {
				if rest, ok := strings.CutPrefix(c, "child "); ok {
					id, runID, _ = strings.Cut(rest, " ")
				}
			}
			f.mu.Unlock()
			d := ApprovalDecision{Decision: DecisionApprove, Approver: approver}
			if err := approval.Sign(&d, testKeys[approver], id, runID, time.Now()); err != nil {
				t.Error(err)
			}
			if err := env.SignalWorkflowByID(id, ApproveSignal, d); err != nil {
				t.Error(err)
			}
		}, after)
	}
	decide(5*time.Minute, "carol")
	decide(6*time.Minute, "bob")
	res, err := runRestart(t, env, pgRestartInput())
	if err != nil {
		t.Fatal(err)
	}
	ap := res.Switchover.Approval
	if ap.RequestedBy != "carol" || ap.Approver != "bob" || !ignoredWith(ap, "carol", "four eyes: carol requested this run") {
		t.Errorf("the child's approval %+v", ap)
	}
	if !slices.ContainsFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, "child switchover/pg-test ") }) {
		t.Errorf("calls %v: the child's workflow ID is not switchover/pg-test", f.calls)
	}
}

// A request passed on by a "parent" to a switchover that no run started proves nothing: the
// input is not believed.
func TestSwitchoverIgnoresAParentRequestWithoutAParent(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob], four_eyes: true }`+"\n"))
	in := switchoverInput()
	in.Parent = &ParentRequest{Started: time.Now(), Requests: []ApprovalDecision{signedFor("pg-restart/pg-test", ApprovalDecision{Decision: approval.Request, Approver: "carol"})}}
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, in)
	res, err := switchResult(t, env)
	if err == nil || f.executed != 0 {
		t.Fatalf("err %v, executed %d: a parent's request proved a requester", err, f.executed)
	}
	if res.Approval.RequestedBy != "" || !ignoredWith(res.Approval, "carol", "in a run that no run started") || !ignoredWith(res.Approval, "bob", "requester is unknown") {
		t.Errorf("approval %+v", res.Approval)
	}
}
