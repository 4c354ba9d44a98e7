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

	"github.com/pigwf/pigwf/activities"
)

// objectsFake is a cluster for pg-users and pg-databases: the leader its agents name, and each
// object's state as a plan against its catalog finds it (by name; an object not listed is as
// specified). It records the plans and the steps the run asks for.
type objectsFake struct {
	mu      sync.Mutex
	state   activities.ClusterState
	catalog map[string]activities.ObjectChange
	plans   []activities.PgObjectsInput
	applied []activities.PgObjectsInput
	failOn  string // the apply of this object fails for good
}

func (f *objectsFake) change(kind, name string) activities.ObjectChange {
	if c, ok := f.catalog[name]; ok {
		c.Kind, c.Name = kind, name
		return c
	}
	return activities.ObjectChange{Kind: kind, Name: name, Action: activities.ActionUnchanged}
}

func (f *objectsFake) plan(in activities.PgObjectsInput) activities.ObjectsPlan {
	var p activities.ObjectsPlan
	for _, u := range in.Users {
		p.Changes = append(p.Changes, f.change(activities.KindUser, u.Name))
	}
	for _, d := range in.Databases {
		p.Changes = append(p.Changes, f.change(activities.KindDatabase, d.Name))
	}
	return p
}

func newObjectsEnv(f *objectsFake) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{Approvals: testApprovals}
	env.RegisterActivity(a)
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(context.Context, activities.ClusterStateInput) (activities.ClusterState, error) {
		return f.state, nil
	})
	env.OnActivity(a.PgObjectsPlan, mockAny, mockAny).Return(func(_ context.Context, in activities.PgObjectsInput) (activities.ObjectsPlan, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.plans = append(f.plans, in)
		return f.plan(in), nil
	})
	env.OnActivity(a.PgObjectsApply, mockAny, mockAny).Return(func(_ context.Context, in activities.PgObjectsInput) (activities.StepResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.applied = append(f.applied, in)
		c := f.plan(in).Changes[0]
		if c.Name == f.failOn {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(c.Kind+" "+c.Name+": permission denied", activities.ErrConflict, nil)
		}
		delete(f.catalog, c.Name) // as specified from now on
		return activities.StepResult{Node: in.Leader.Name, Step: activities.StepObjects, Changed: true, Changes: []string{c.Done()}}, nil
	})
	env.OnActivity(a.Notify, mockAny, mockAny).Return("ok", nil)
	return env
}

// objectsTarget is pg-test, whose leader is pg-test-2 (a failover since the inventory was written).
func objectsTarget() PgObjectsTarget {
	t := PgObjectsTarget{Cluster: "pg-test", Members: pgRestartInput().Members, Port: 5432, InventoryFile: "/etc/pigwf/inventory.yml", RequestedBy: "carol"}
	for _, m := range t.Members {
		t.Nodes = append(t.Nodes, activities.Node{Addr: "10.0.0." + m.Name[len(m.Name)-1:], Name: m.Name, SSHHost: m.Name, SSHPort: 22, SSHUser: "root"})
	}
	return t
}

func leaderTwo() activities.ClusterState {
	st := threeMemberState()
	st.Leader, st.Replicas = "pg-test-2", []string{"pg-test-1", "pg-test-3"}
	return st
}

func usersInput() PgUsersInput {
	return PgUsersInput{PgObjectsTarget: objectsTarget(), Users: []activities.RoleSpec{
		{Name: "old_app", Absent: true}, {Name: "app", Login: true, Password: "user"}, {Name: "meta", Login: true}, {Name: "app2", Login: true},
	}}
}

func databasesInput() PgDatabasesInput {
	return PgDatabasesInput{PgObjectsTarget: objectsTarget(), Approval: ApprovalPolicy{Timeout: 30 * time.Minute}, Databases: []activities.DatabaseSpec{
		{Name: "app", Owner: "app"}, {Name: "old", Absent: true}, {Name: "meta", Owner: "meta"},
	}}
}

func appliedNames(f *objectsFake) []string {
	var out []string
	for _, in := range f.applied {
		for _, u := range in.Users {
			out = append(out, u.Name)
		}
		for _, d := range in.Databases {
			out = append(out, d.Name)
		}
	}
	return out
}

// pg-users plans on the leader the agents name, then one step per user that is not as
// specified, on that leader, drops last; the users as specified are reported unchanged without
// a step. A rerun finds every user as specified and changes nothing.
func TestPgUsersAppliesOnTheLeader(t *testing.T) {
	f := &objectsFake{state: leaderTwo(), catalog: map[string]activities.ObjectChange{
		"old_app": {Action: activities.ActionDrop},
		"app":     {Action: activities.ActionAlter, Attrs: []string{"connection limit 5 → 10"}},
		"app2":    {Action: activities.ActionCreate, Attrs: []string{"login"}},
	}}
	env := newObjectsEnv(f)
	env.ExecuteWorkflow(PgUsersName, usersInput())
	res, err := runOutcome[PgObjectsResult](t, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := appliedNames(f); !slices.Equal(got, []string{"app", "app2", "old_app"}) {
		t.Errorf("applied %v, want app, app2, then the drop of old_app", got)
	}
	for _, in := range slices.Concat(f.plans, f.applied) {
		if in.Leader.Name != "pg-test-2" || in.Leader.SSHHost != "pg-test-2" || in.AllowDrop || in.Port != 5432 || in.Cluster != "pg-test" {
			t.Errorf("an activity's input %+v: want pg-test-2, the leader, and no drop allowed", in)
		}
	}
	if res.Leader != "pg-test-2" || res.Outcome != "applied" || len(res.Plan) != 4 || len(res.Steps) != 3 || res.Approval != nil {
		t.Errorf("result %+v", res)
	}
	want := "-/exclusive=unchanged -/leader=unchanged -/plan=unchanged pg-test-2/user old_app=changed pg-test-2/user app=changed pg-test-2/user meta=unchanged pg-test-2/user app2=changed"
	if got := progressOf(t, env); got != want {
		t.Errorf("progress\n  %s\nwant\n  %s", got, want)
	}

	// The rerun: every user as specified, no step.
	f.applied = nil
	env = newObjectsEnv(f)
	env.ExecuteWorkflow(PgUsersName, usersInput())
	res, err = runOutcome[PgObjectsResult](t, env)
	if err != nil || res.Outcome != "unchanged" || len(f.applied) != 0 {
		t.Fatalf("rerun: %+v, %v, applied %v", res, err, appliedNames(f))
	}
	if got := progressOf(t, env); strings.Count(got, "=unchanged") != 7 {
		t.Errorf("rerun: %s, want seven rows unchanged (the lock's, the leader's, the plan's, four users')", got)
	}
}

// --name plans and applies that one user only.
func TestPgUsersName(t *testing.T) {
	f := &objectsFake{state: leaderTwo(), catalog: map[string]activities.ObjectChange{
		"app":  {Action: activities.ActionAlter, Attrs: []string{"password"}},
		"app2": {Action: activities.ActionCreate},
	}}
	env := newObjectsEnv(f)
	in := usersInput()
	in.Name = "app"
	env.ExecuteWorkflow(PgUsersName, in)
	if _, err := runOutcome[PgObjectsResult](t, env); err != nil {
		t.Fatal(err)
	}
	if len(f.plans) != 1 || len(f.plans[0].Users) != 1 || f.plans[0].Users[0].Name != "app" || !slices.Equal(appliedNames(f), []string{"app"}) {
		t.Errorf("planned %+v, applied %v", f.plans, appliedNames(f))
	}

	in.Name = "nobody"
	env = newObjectsEnv(f)
	env.ExecuteWorkflow(PgUsersName, in)
	_, err := runOutcome[PgObjectsResult](t, env)
	if err == nil || !strings.Contains(err.Error(), "no user nobody in the input (--name)") {
		t.Errorf("an unknown --name: %v", err)
	}
}

// A database drop waits for an approval: approved, the drop's step carries it (AllowDrop) and runs
// after the others; rejected or timed out, nothing is changed at all.
func TestPgDatabasesDropNeedsApproval(t *testing.T) {
	catalog := func() map[string]activities.ObjectChange {
		return map[string]activities.ObjectChange{"old": {Action: activities.ActionDrop}, "app": {Action: activities.ActionCreate}}
	}
	t.Run("approved", func(t *testing.T) {
		f := &objectsFake{state: leaderTwo(), catalog: catalog()}
		env := newObjectsEnv(f)
		var st ApprovalState
		queryApproval(t, env, time.Minute, &st)
		signal(env, 2*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
		env.ExecuteWorkflow(PgDatabasesName, databasesInput())
		res, err := runOutcome[PgObjectsResult](t, env)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Waiting || !strings.Contains(st.Plan, "drop database old") || !strings.Contains(st.Plan, "create database app") {
			t.Errorf("while waiting: %+v", st)
		}
		if !slices.Equal(appliedNames(f), []string{"app", "old"}) || !f.applied[1].AllowDrop {
			t.Errorf("applied %v (%+v)", appliedNames(f), f.applied)
		}
		if res.Approval == nil || res.Approval.Approver != "alice" || res.Outcome != "applied" {
			t.Errorf("result %+v", res)
		}
	})
	for _, tc := range []struct {
		name   string
		decide func(env *testsuite.TestWorkflowEnvironment)
		says   string
	}{
		{"rejected", func(env *testsuite.TestWorkflowEnvironment) {
			signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob"})
		}, "dropping database old was rejected by bob"},
		{"timed out", func(*testsuite.TestWorkflowEnvironment) {}, "the approval timed out"},
		{"a bare signal", func(env *testsuite.TestWorkflowEnvironment) {
			bareSignal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
		}, "the approval timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &objectsFake{state: leaderTwo(), catalog: catalog()}
			env := newObjectsEnv(f)
			tc.decide(env)
			env.ExecuteWorkflow(PgDatabasesName, databasesInput())
			_, err := runOutcome[PgObjectsResult](t, env)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != PgObjectsRefusedType || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("error %v, want %s saying %q", err, PgObjectsRefusedType, tc.says)
			}
			if len(f.applied) != 0 {
				t.Errorf("applied %v without an approval", appliedNames(f))
			}
		})
	}
}

// A plan with an object that cannot be done as asked refuses the run before any change; so does
// a cluster without a leader that takes writes.
func TestPgObjectsRefusals(t *testing.T) {
	f := &objectsFake{state: leaderTwo(), catalog: map[string]activities.ObjectChange{
		"app":     {Action: activities.ActionCreate},
		"old_app": {Action: activities.ActionUnchanged, Refused: "cannot be dropped: it owns database legacy"},
	}}
	env := newObjectsEnv(f)
	env.ExecuteWorkflow(PgUsersName, usersInput())
	_, err := runOutcome[PgObjectsResult](t, env)
	if err == nil || !strings.Contains(err.Error(), "pg-users of pg-test refused: user old_app: cannot be dropped: it owns database legacy; nothing was changed") || len(f.applied) != 0 {
		t.Errorf("a refused object: %v, applied %v", err, appliedNames(f))
	}

	f = &objectsFake{state: leaderTwo()}
	f.state.LeaderPrimary = false
	env = newObjectsEnv(f)
	env.ExecuteWorkflow(PgDatabasesName, databasesInput())
	_, err = runOutcome[PgObjectsResult](t, env)
	if err == nil || !strings.Contains(err.Error(), "its leader pg-test-2 does not answer as a primary") || len(f.plans) != 0 {
		t.Errorf("no leader: %v, plans %d", err, len(f.plans))
	}
}

// A dry run plans and reports, and runs no step; a drop does not wait for an approval.
func TestPgObjectsDryRun(t *testing.T) {
	f := &objectsFake{state: leaderTwo(), catalog: map[string]activities.ObjectChange{"old": {Action: activities.ActionDrop}}}
	env := newObjectsEnv(f)
	in := databasesInput()
	in.DryRun = true
	env.ExecuteWorkflow(PgDatabasesName, in)
	res, err := runOutcome[PgObjectsResult](t, env)
	if err != nil || res.Outcome != "dry run" || len(f.applied) != 0 || res.Approval != nil {
		t.Fatalf("dry run: %+v, %v, applied %v", res, err, appliedNames(f))
	}
	if got := progressOf(t, env); !strings.Contains(got, "pg-test-2/database old=skipped") || strings.Contains(got, "approval") {
		t.Errorf("progress %s", got)
	}
}

// A step that fails stops the run: the next objects are not reached, and the error says what was
// done before.
func TestPgObjectsStepFails(t *testing.T) {
	f := &objectsFake{state: leaderTwo(), failOn: "app2", catalog: map[string]activities.ObjectChange{
		"app": {Action: activities.ActionCreate}, "app2": {Action: activities.ActionCreate}, "old_app": {Action: activities.ActionDrop},
	}}
	env := newObjectsEnv(f)
	env.ExecuteWorkflow(PgUsersName, usersInput())
	_, err := runOutcome[PgObjectsResult](t, env)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgObjectsFailedType || !strings.Contains(err.Error(), "user app2: user app2: permission denied; done before that: created user app") {
		t.Fatalf("error %v", err)
	}
	if got := progressOf(t, env); !strings.Contains(got, "pg-test-2/user old_app=skipped") || !strings.Contains(got, "pg-test-2/user app2=failed") {
		t.Errorf("progress %s", got)
	}
}
