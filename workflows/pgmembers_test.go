package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// membersFake is a cluster for pg-reinit, pg-member-remove and pg-cluster-remove: the leader its
// agents name, the keys its DCS holds; it records the steps asked for, in order.
type membersFake struct {
	mu     sync.Mutex
	state  activities.ClusterState
	keys   activities.ClusterKeys
	busy   error
	failOn string // the step (its call's first word) that fails for good
	calls  []string
	keysIn []string // the Key of every node step
}

func (f *membersFake) record(call, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if key != "" {
		f.keysIn = append(f.keysIn, key)
	}
	if f.failOn != "" && strings.HasPrefix(call, f.failOn) {
		return temporal.NewNonRetryableApplicationError(call+": failed", activities.ErrConflict, nil)
	}
	return nil
}

func (f *membersFake) changed(call, key string, facts map[string]string) (activities.StepResult, error) {
	if err := f.record(call, key); err != nil {
		return activities.StepResult{}, err
	}
	return activities.StepResult{Step: call, Changed: true, Changes: []string{call}, Facts: facts}, nil
}

func newMembersEnv(f *membersFake) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(time.Date(2026, 11, 30, 17, 48, 0, 0, time.UTC))
	Register(env)
	a := &activities.Activities{Approvals: testApprovals}
	env.RegisterActivity(a)
	env.OnActivity(a.ClusterExclusive, mockAny, mockAny).Return(func(context.Context, activities.ExclusiveInput) (activities.StepResult, error) {
		return activities.StepResult{}, f.busy
	})
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(context.Context, activities.ClusterStateInput) (activities.ClusterState, error) {
		return f.state, f.record("read", "")
	})
	env.OnActivity(a.ReadClusterKeys, mockAny, mockAny).Return(func(context.Context, activities.ClusterKeysInput) (activities.ClusterKeys, error) {
		return f.keys, f.record("keys", "")
	})
	env.OnActivity(a.AgentStop, mockAny, mockAny).Return(func(_ context.Context, in activities.AgentStopInput) (activities.StepResult, error) {
		call := "stop " + in.Member
		if in.Disable {
			call += " disable"
		}
		if len(in.DCS.Endpoints) > 0 {
			call += " not-leader"
		}
		return f.changed(call, in.Key, nil)
	})
	env.OnActivity(a.AgentStart, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberNodeInput) (activities.StepResult, error) {
		return f.changed("start "+in.Member, in.Key, nil)
	})
	env.OnActivity(a.DataAside, mockAny, mockAny).Return(func(_ context.Context, in activities.DataAsideInput) (activities.StepResult, error) {
		return f.changed("aside "+in.Member+" "+in.Why, in.Key, map[string]string{"aside": activities.AsidePath(in.Spec.DataDir, in.Why, in.Key)})
	})
	env.OnActivity(a.DataPurge, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberNodeInput) (activities.StepResult, error) {
		return f.changed("purge "+in.Member, in.Key, nil)
	})
	env.OnActivity(a.WaitMembers, mockAny, mockAny).Return(func(_ context.Context, in activities.WaitMembersInput) (activities.StepResult, error) {
		return activities.StepResult{}, f.record("wait "+strings.Join(in.Targets, ",")+" "+in.Until, "")
	})
	env.OnActivity(a.MemberForget, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberForgetInput) (activities.StepResult, error) {
		return activities.StepResult{}, f.record("forget "+in.Member, "")
	})
	env.OnActivity(a.MemberSlotDrop, mockAny, mockAny).Return(func(_ context.Context, in activities.SlotDropInput) (activities.StepResult, error) {
		return f.changed("slot "+in.Member, "", nil)
	})
	env.OnActivity(a.ClusterKeysDelete, mockAny, mockAny).Return(func(_ context.Context, in activities.ClusterKeysInput) (activities.StepResult, error) {
		return f.changed("delete-keys "+in.DCS.Cluster, "", nil)
	})
	env.OnActivity(a.Notify, mockAny, mockAny).Return("ok", nil)
	return env
}

func membersTarget() PgMembersTarget {
	t := PgMembersTarget{Cluster: "pg-test", Members: pgRestartInput().Members, RequestedBy: "carol",
		DCS:  activities.DCSInput{Endpoints: []string{"https://10.0.0.1:2379"}, Namespace: "/pigwf", Cluster: "pg-test"},
		Spec: activities.PGSpec{Cluster: "pg-test", DataDir: "/pg/data", Port: 5432}}
	for _, m := range t.Members {
		t.Nodes = append(t.Nodes, activities.Node{Addr: "10.0.0." + m.Name[len(m.Name)-1:], Name: m.Name, SSHHost: m.Name, SSHPort: 22, SSHUser: "root"})
	}
	return t
}

func (f *membersFake) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func wantCalls(t *testing.T, f *membersFake, want ...string) {
	t.Helper()
	if got := f.got(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}

func wantErrType(t *testing.T, err error, typ, contains string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != typ {
		t.Fatalf("error = %v, want a %s", err, typ)
	}
	if !strings.Contains(app.Message(), contains) {
		t.Errorf("error %q does not say %q", app.Message(), contains)
	}
}

// pg-reinit stops the member's agent (refused there if it leads by then), moves its data aside
// under the run's key, starts the agent and waits until the member streams.
func TestPgReinitReplica(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	env.ExecuteWorkflow(PgReinitName, PgReinitInput{PgMembersTarget: membersTarget(), Member: "pg-test-3"})
	res, err := runOutcome[PgMemberResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, f, "read", "stop pg-test-3 not-leader", "aside pg-test-3 reinit", "start pg-test-3", "wait pg-test-3 streaming")
	if res.Outcome != "reinitialized" || res.Aside != "/pg/data.reinit-20261130T174800Z" || res.Leader != "pg-test-1" {
		t.Errorf("result = %+v", res)
	}
	if p := progressOf(t, env); strings.Contains(p, "pending") || strings.Contains(p, "approval") {
		t.Errorf("progress: %s", p)
	}
}

// pg-reinit of the leader, of a member the inventory does not name, or of a cluster without a
// leader or paused is refused before any change, naming the fix.
func TestPgReinitRefusals(t *testing.T) {
	noLeader := threeMemberState()
	noLeader.Leader, noLeader.LeaderPrimary = "", false
	paused := threeMemberState()
	paused.Paused = true
	for _, tc := range []struct {
		name, member string
		state        activities.ClusterState
		says         string
	}{
		{"leader", "pg-test-1", threeMemberState(), "--member pg-test-1 is the leader of pg-test: pg-reinit re-creates replicas only; switch over first (`pigwf start switchover --cluster pg-test`)"},
		{"unknown", "pg-test-9", threeMemberState(), "--member pg-test-9 is not a member of pg-test in the inventory"},
		{"no leader", "pg-test-3", noLeader, "the cluster has no leader"},
		{"paused", "pg-test-3", paused, "pigwf ha resume --cluster pg-test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &membersFake{state: tc.state}
			env := newMembersEnv(f)
			env.ExecuteWorkflow(PgReinitName, PgReinitInput{PgMembersTarget: membersTarget(), Member: tc.member})
			res, err := runOutcome[PgMemberResult](t, env)
			wantErrType(t, err, PgMembersRefusedType, tc.says)
			wantErrType(t, err, PgMembersRefusedType, "nothing was changed")
			wantCalls(t, f, "read")
			if res.Outcome != "refused" {
				t.Errorf("outcome = %q", res.Outcome)
			}
		})
	}
}

// Another run open on the cluster refuses pg-reinit before it reads anything (a run recorded
// before the cluster's lock: the check through visibility).
func TestPgReinitBusy(t *testing.T) {
	f := &membersFake{state: threeMemberState(), busy: temporal.NewNonRetryableApplicationError("cluster pg-test is busy: pg-backup/pg-test is running", activities.ErrClusterBusy, nil)}
	env := newMembersEnv(f)
	env.OnGetVersion(clusterLockChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(PgReinitName, PgReinitInput{PgMembersTarget: membersTarget(), Member: "pg-test-3"})
	_, err := runOutcome[PgMemberResult](t, env)
	wantErrType(t, err, PgMembersRefusedType, "pg-backup/pg-test is running")
	wantCalls(t, f)
}

// A dry run plans, reports the plan and changes nothing.
func TestPgReinitDryRun(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	tg := membersTarget()
	tg.DryRun = true
	env.ExecuteWorkflow(PgReinitName, PgReinitInput{PgMembersTarget: tg, Member: "pg-test-2"})
	res, err := runOutcome[PgMemberResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, f, "read")
	if res.Outcome != "dry run" || len(res.Plan) != 4 || !strings.Contains(res.Plan[1], "/pg/data.reinit-20261130T174800Z") {
		t.Errorf("result = %+v", res)
	}
	if p := progressOf(t, env); !strings.Contains(p, "pg-test-2/agent-stop=skipped") {
		t.Errorf("progress: %s", p)
	}
}

// A failed step ends the run saying what was done, and where the old data is.
func TestPgReinitStartFails(t *testing.T) {
	f := &membersFake{state: threeMemberState(), failOn: "start"}
	env := newMembersEnv(f)
	env.ExecuteWorkflow(PgReinitName, PgReinitInput{PgMembersTarget: membersTarget(), Member: "pg-test-3"})
	_, err := runOutcome[PgMemberResult](t, env)
	wantErrType(t, err, PgMembersFailedType, "the old data directory is kept at /pg/data.reinit-20261130T174800Z")
}

// pg-member-remove waits for an approval, then stops the agent for good, forgets the member,
// drops its slot and moves its data aside.
func TestPgMemberRemoveApproved(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(PgMemberRemoveName, PgMemberRemoveInput{PgMembersTarget: membersTarget(), Member: "pg-test-2", Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	res, err := runOutcome[PgMemberResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, f, "read", "stop pg-test-2 disable not-leader", "forget pg-test-2", "slot pg-test-2", "aside pg-test-2 removed")
	if res.Outcome != "removed" || res.Aside != "/pg/data.removed-20261130T174800Z" || res.Approval == nil || !res.Approval.Approved() {
		t.Errorf("result = %+v", res)
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "synchronous standby") }) {
		t.Errorf("notes do not say pg-test-2 is the synchronous standby: %q", res.Notes)
	}
}

// Without an approval nothing changes.
func TestPgMemberRemoveRejected(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob"})
	env.ExecuteWorkflow(PgMemberRemoveName, PgMemberRemoveInput{PgMembersTarget: membersTarget(), Member: "pg-test-3", Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	res, err := runOutcome[PgMemberResult](t, env)
	wantErrType(t, err, PgMembersRefusedType, "nothing was changed")
	wantCalls(t, f, "read")
	if res.Outcome != "rejected" {
		t.Errorf("outcome = %q", res.Outcome)
	}
}

// The leader is never removed: refused before the approval, naming the switchover.
func TestPgMemberRemoveLeaderRefused(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	env.ExecuteWorkflow(PgMemberRemoveName, PgMemberRemoveInput{PgMembersTarget: membersTarget(), Member: "pg-test-1", Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	_, err := runOutcome[PgMemberResult](t, env)
	wantErrType(t, err, PgMembersRefusedType, "pigwf never removes the leader; switch over first")
	wantCalls(t, f, "read")
	if p := progressOf(t, env); strings.Contains(p, "approval") {
		t.Errorf("a refused run asked for an approval: %s", p)
	}
}

// A dry run asks no approval and changes nothing.
func TestPgMemberRemoveDryRun(t *testing.T) {
	f := &membersFake{state: threeMemberState()}
	env := newMembersEnv(f)
	tg := membersTarget()
	tg.DryRun = true
	env.ExecuteWorkflow(PgMemberRemoveName, PgMemberRemoveInput{PgMembersTarget: tg, Member: "pg-test-3"})
	res, err := runOutcome[PgMemberResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, f, "read")
	if res.Outcome != "dry run" || len(res.Plan) != 4 {
		t.Errorf("result = %+v", res)
	}
}

func clusterKeys() activities.ClusterKeys {
	return activities.ClusterKeys{Prefix: "/pigwf/pg-test/", Keys: 9, Leader: "pg-test-2", Members: []string{"pg-test-1", "pg-test-2", "pg-test-3"}}
}

// pg-cluster-remove, approved: the agents stop replicas first and the leader last, the keys go,
// every data directory is moved aside; with --purge a second approval deletes them.
func TestPgClusterRemovePurged(t *testing.T) {
	f := &membersFake{keys: clusterKeys()}
	env := newMembersEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	signal(env, 10*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: membersTarget(), Purge: true, Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	res, err := runOutcome[PgClusterRemoveResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, f, "keys", "stop pg-test-1 disable", "stop pg-test-3 disable", "stop pg-test-2 disable", "delete-keys pg-test",
		"aside pg-test-1 removed", "aside pg-test-3 removed", "aside pg-test-2 removed", "purge pg-test-1", "purge pg-test-3", "purge pg-test-2")
	if res.Outcome != "removed and purged" || len(res.Purged) != 3 || res.Aside["pg-test-2"] != "/pg/data.removed-20261130T174800Z" {
		t.Errorf("result = %+v", res)
	}
	if res.Approval == nil || res.Approval.Approver != "alice" || res.PurgeApproval == nil || res.PurgeApproval.Approver != "bob" {
		t.Errorf("approvals: %+v, %+v", res.Approval, res.PurgeApproval)
	}
	for _, k := range f.keysIn {
		if k != "20261130T174800Z" {
			t.Errorf("a node step got key %q", k)
		}
	}
}

// The first approval does not purge: without the second, the data stays aside.
func TestPgClusterRemovePurgeRejected(t *testing.T) {
	f := &membersFake{keys: clusterKeys()}
	env := newMembersEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	signal(env, 10*time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob"})
	env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: membersTarget(), Purge: true, Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	res, err := runOutcome[PgClusterRemoveResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(f.got(), func(c string) bool { return strings.HasPrefix(c, "purge") }) {
		t.Errorf("purged without the second approval: %q", f.got())
	}
	if res.Outcome != "removed, purge rejected" || len(res.Aside) != 3 {
		t.Errorf("result = %+v", res)
	}
}

// Without --purge one approval removes, and nothing is deleted.
func TestPgClusterRemoveNoPurge(t *testing.T) {
	f := &membersFake{keys: clusterKeys()}
	env := newMembersEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: membersTarget(), Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
	res, err := runOutcome[PgClusterRemoveResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "removed" || res.PurgeApproval != nil {
		t.Errorf("result = %+v", res)
	}
	if p := progressOf(t, env); strings.Contains(p, "purge") {
		t.Errorf("progress: %s", p)
	}
}

// A rejected removal changes nothing; a member in the DCS the inventory does not name refuses
// the run before the approval.
func TestPgClusterRemoveRefusals(t *testing.T) {
	t.Run("rejected", func(t *testing.T) {
		f := &membersFake{keys: clusterKeys()}
		env := newMembersEnv(f)
		signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "alice"})
		env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: membersTarget(), Purge: true, Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
		_, err := runOutcome[PgClusterRemoveResult](t, env)
		wantErrType(t, err, PgMembersRefusedType, "nothing was changed")
		wantCalls(t, f, "keys")
	})
	t.Run("unknown member", func(t *testing.T) {
		k := clusterKeys()
		k.Members = append(k.Members, "pg-test-4")
		f := &membersFake{keys: k}
		env := newMembersEnv(f)
		env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: membersTarget(), Approval: ApprovalPolicy{Timeout: 30 * time.Minute}})
		_, err := runOutcome[PgClusterRemoveResult](t, env)
		wantErrType(t, err, PgMembersRefusedType, "pg-test-4 is registered in pg-test's DCS but not in the inventory")
		wantCalls(t, f, "keys")
	})
	t.Run("dry run", func(t *testing.T) {
		f := &membersFake{keys: clusterKeys()}
		env := newMembersEnv(f)
		tg := membersTarget()
		tg.DryRun = true
		env.ExecuteWorkflow(PgClusterRemoveName, PgClusterRemoveInput{PgMembersTarget: tg, Purge: true})
		res, err := runOutcome[PgClusterRemoveResult](t, env)
		if err != nil {
			t.Fatal(err)
		}
		wantCalls(t, f, "keys")
		if res.Outcome != "dry run" || len(res.Plan) != 10 || !strings.Contains(res.Plan[0], "stop pg-test-1") || !strings.Contains(res.Plan[2], "stop pg-test-2") {
			t.Errorf("result = %+v", res)
		}
	})
}
