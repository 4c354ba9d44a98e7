package workflows

import (
	"context"
	"errors"
	"reflect"
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

func pgInput() PgClusterCreateInput {
	in := PgClusterCreateInput{Cluster: "pg-test", APIPort: 8008,
		Spec: activities.PGSpec{Cluster: "pg-test", Port: 5432, DataDir: "/pg/data"},
		DCS:  activities.DCSInput{Endpoints: []string{"http://10.0.0.11:2379"}, Namespace: "/pigwf", Cluster: "pg-test"}}
	for i, role := range []string{"primary", "replica", "replica"} {
		addr := "10.0.0.1" + string(rune('1'+i))
		name := "pg-test-" + string(rune('1'+i))
		in.Members = append(in.Members, PgMember{Name: name, Role: role, Node: activities.Node{Addr: addr, Name: name, SSHHost: addr}})
	}
	return in
}

// pgFake records which steps ran, in order, and lets a test shape precheck answers.
type pgFake struct {
	mu        sync.Mutex
	calls     []string
	precheck  map[string]map[string]string // node addr -> facts
	dcsSysid  string
	dcsLeader string
	register  activities.DCSRegisterInput // what DCSRegister was given
	// failRoles: the roles step fails on these primaries (by address), as on a member that is no
	// longer the primary, and the DCS then names leaderAfter[addr] as the leader.
	failRoles   map[string]bool
	leaderAfter map[string]string
	// electing: the DCS names no leader for this many reads after a failed roles step (an
	// election), then leaderAfter's.
	electing, electionLeft int
	elected                string
}

func (f *pgFake) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *pgFake) ran(step string) int {
	n := 0
	for _, c := range f.calls {
		if strings.HasSuffix(c, "/"+step) {
			n++
		}
	}
	return n
}

func newPgEnv(f *pgFake) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{Approvals: testApprovals}
	env.RegisterActivity(a)
	ok := func(step string) func(context.Context, activities.PgNodeInput) (activities.StepResult, error) {
		return func(_ context.Context, in activities.PgNodeInput) (activities.StepResult, error) {
			f.record(in.Node.Addr + "/" + step)
			r := activities.StepResult{Changed: true, Changes: []string{"did " + step}}
			if step == activities.StepInitdb || step == activities.StepClone {
				r.Facts = map[string]string{"sysid": "7300000000000000001"}
			}
			return r, nil
		}
	}
	env.OnActivity(a.DCSStatus, mockAny, mockAny).Return(func(context.Context, activities.DCSInput) (activities.DCSState, error) {
		f.record("control/dcs-status")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.electionLeft > 0 {
			if f.electionLeft--; f.electionLeft == 0 {
				f.dcsLeader = f.elected
			}
			return activities.DCSState{Reachable: true, Sysid: f.dcsSysid}, nil
		}
		return activities.DCSState{Reachable: true, Sysid: f.dcsSysid, Leader: f.dcsLeader}, nil
	})
	env.OnActivity(a.PgPrecheck, mockAny, mockAny).Return(func(_ context.Context, in activities.PgNodeInput) (activities.StepResult, error) {
		f.record(in.Node.Addr + "/precheck")
		return activities.StepResult{Facts: f.precheck[in.Node.Addr]}, nil
	})
	env.OnActivity(a.PgCredentials, mockAny, mockAny).Return(ok(activities.StepCredentials))
	env.OnActivity(a.PgInitdb, mockAny, mockAny).Return(ok(activities.StepInitdb))
	env.OnActivity(a.PgConfigure, mockAny, mockAny).Return(ok(activities.StepConfigure))
	env.OnActivity(a.PgClone, mockAny, mockAny).Return(ok(activities.StepClone))
	env.OnActivity(a.PgWaitStreaming, mockAny, mockAny).Return(ok(activities.StepStreaming))
	env.OnActivity(a.BackupConfig, mockAny, mockAny).Return(ok(activities.StepBackupConf))
	env.OnActivity(a.BackupStanza, mockAny, mockAny).Return(ok(activities.StepStanza))
	env.OnActivity(a.BackupFull, mockAny, mockAny).Return(ok(activities.StepFullBackup))
	env.OnActivity(a.DCSRegister, mockAny, mockAny).Return(func(_ context.Context, in activities.DCSRegisterInput) (activities.StepResult, error) {
		f.record("control/" + activities.StepRegisterDCS)
		f.mu.Lock()
		f.register = in
		f.mu.Unlock()
		return activities.StepResult{Changed: true}, nil
	})
	env.OnActivity(a.HAAgent, mockAny, mockAny).Return(func(_ context.Context, in activities.AgentInput) (activities.StepResult, error) {
		f.record(in.Node.Addr + "/" + activities.StepAgent)
		return activities.StepResult{Changed: true}, nil
	})
	env.OnActivity(a.WaitLeader, mockAny, mockAny).Return(func(context.Context, activities.WaitLeaderInput) (activities.StepResult, error) {
		f.record("control/" + activities.StepLeader)
		return activities.StepResult{}, nil
	})
	env.OnActivity(a.PgRoles, mockAny, mockAny).Return(func(_ context.Context, in activities.SQLInput) (activities.StepResult, error) {
		f.record(in.Primary.Addr + "/" + in.Step)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failRoles[in.Primary.Addr] {
			if l, ok := f.leaderAfter[in.Primary.Addr]; ok {
				f.dcsLeader = l
				if f.electing > 0 {
					f.dcsLeader, f.elected, f.electionLeft = "", l, f.electing
				}
			}
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(in.Primary.Addr+" is not the primary (PostgreSQL there is in recovery)", activities.ErrConflict, nil)
		}
		return activities.StepResult{Changed: true}, nil
	})
	env.OnActivity(a.PgMoveAside, mockAny, mockAny).Return(ok("move-aside"))
	env.OnActivity(a.Verify, mockAny, mockAny).Return(func(context.Context, activities.VerifyInput) (activities.StepResult, error) {
		f.record("control/" + activities.StepVerify)
		return activities.StepResult{}, nil
	})
	return env
}

// The inventory's pg_parameters seed the DCS config; a run that started before the seeding
// (GetVersion's default branch on its replay) registers without them, as it did.
func TestPgClusterCreateSeedsTheConfigsParameters(t *testing.T) {
	params := map[string]string{"work_mem": "64MB", "shared_buffers": "1GB"}
	for _, c := range []struct {
		name    string
		version workflow.Version
		want    map[string]string
	}{{"new run", 1, params}, {"run from before the seeding", workflow.DefaultVersion, nil}} {
		f := &pgFake{}
		env := newPgEnv(f)
		env.OnGetVersion(seedParametersChange, workflow.DefaultVersion, 1).Return(c.version)
		in := pgInput()
		in.PgParameters = params
		env.ExecuteWorkflow(PgClusterCreate, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(f.register.Parameters, c.want) {
			t.Errorf("%s: DCSRegister got parameters %v, want %v", c.name, f.register.Parameters, c.want)
		}
	}
}

// Every node's problems come back together, and nothing after the prechecks runs.
func TestPgClusterCreatePrechecksRefuseBeforeAnyChange(t *testing.T) {
	f := &pgFake{precheck: map[string]map[string]string{
		"10.0.0.12": {"problem.managed": "node pg-test-2 (10.0.0.12) is not managed by pigwf: run `pigwf start node-init --cluster pg-test` first"},
		"10.0.0.13": {"problem.port": "port 5432 is in use by another process (nginx): stop it or set pg_port"},
	}}
	env := newPgEnv(f)
	env.ExecuteWorkflow(PgClusterCreate, pgInput())
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("want refusal")
	}
	for _, want := range []string{"refused before changing anything", "pg-test-2 (10.0.0.12): node pg-test-2 (10.0.0.12) is not managed by pigwf: run `pigwf start node-init --cluster pg-test` first", "port 5432 is in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, c := range f.calls {
		if !strings.HasSuffix(c, "/precheck") && c != "control/dcs-status" {
			t.Errorf("%s ran after a failed precheck", c)
		}
	}
}

// A data directory from another system (by the DCS's record) is refused.
func TestPgClusterCreateRefusesForeignData(t *testing.T) {
	f := &pgFake{dcsSysid: "7300000000000000001", precheck: map[string]map[string]string{"10.0.0.12": {"sysid": "7399999999999999999"}}}
	env := newPgEnv(f)
	env.ExecuteWorkflow(PgClusterCreate, pgInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "holds system 7399999999999999999 but cluster pg-test is system 7300000000000000001") {
		t.Fatalf("err = %v", err)
	}
	if f.ran(activities.StepInitdb) != 0 {
		t.Error("initdb ran")
	}
}

// A failover during the build: the run reads the DCS after the failed step and, when another
// member leads, builds again on it (its steps that belong on the primary run there; the former
// primary's failed step no longer fails the run), at most maxLeaderFollows times; a leader that
// did not move, or a run from before the change, fails as it did.
func TestPgClusterCreateFollowsANewLeader(t *testing.T) {
	always := map[string]bool{"10.0.0.11": true, "10.0.0.12": true, "10.0.0.13": true}
	for i, c := range []struct {
		failRoles   map[string]bool
		leaderAfter map[string]string
		electing    int // reads of the DCS that find no leader before leaderAfter's
		version     workflow.Version
		wantPrimary string // "" when the run fails
		wantErr     string
		followed    int
	}{
		// 1: the leader moved to pg-test-2: built again there
		{map[string]bool{"10.0.0.11": true}, map[string]string{"10.0.0.11": "pg-test-2"}, 0, 1, "pg-test-2", "", 1},
		// 2: the step failed but the leader did not move: the run fails with the step's error
		{map[string]bool{"10.0.0.11": true}, nil, 0, 1, "", "roles on pg-test-1: 10.0.0.11 is not the primary", 0},
		// 3: the leader keeps moving: the run stops after following it maxLeaderFollows times
		{always, map[string]string{"10.0.0.11": "pg-test-2", "10.0.0.12": "pg-test-3", "10.0.0.13": "pg-test-1"}, 0, 1, "",
			"the leader moved during the build; the run followed it 3 times", 3},
		// 4: a run from before the change fails as it did
		{map[string]bool{"10.0.0.11": true}, map[string]string{"10.0.0.11": "pg-test-2"}, 0, workflow.DefaultVersion, "", "roles on pg-test-1: 10.0.0.11 is not the primary", 0},
		// 5: mid-election (no leader for 3 reads): the run waits for the new leader and follows it
		{map[string]bool{"10.0.0.11": true}, map[string]string{"10.0.0.11": "pg-test-2"}, 3, 1, "pg-test-2", "", 1},
		// 6: no leader for longer than electionReads: the run fails with the step's error
		{map[string]bool{"10.0.0.11": true}, map[string]string{"10.0.0.11": "pg-test-2"}, electionReads + 1, 1, "", "roles on pg-test-1: 10.0.0.11 is not the primary", 0},
	} {
		f := &pgFake{failRoles: c.failRoles, leaderAfter: c.leaderAfter, electing: c.electing}
		env := newPgEnv(f)
		env.OnGetVersion(followLeaderChange, workflow.DefaultVersion, 1).Return(c.version)
		env.ExecuteWorkflow(PgClusterCreate, pgInput())
		err := env.GetWorkflowError()
		var res PgClusterCreateResult
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%d: err = %v, want %q", i+1, err, c.wantErr)
			}
			var app *temporal.ApplicationError
			if errors.As(err, &app) {
				_ = app.Details(&res)
			}
		} else {
			if err != nil {
				t.Errorf("%d: %v; calls %v", i+1, err, f.calls)
				continue
			}
			_ = env.GetWorkflowResult(&res)
			if res.Primary != c.wantPrimary || f.ran("users-databases") != 1 || !slices.Contains(f.calls, "10.0.0.12/users-databases") {
				t.Errorf("%d: primary %q, want %q; calls %v", i+1, res.Primary, c.wantPrimary, f.calls)
			}
			prog := queryProgress(t, env)
			for _, st := range prog.Steps {
				if st.State == StateFailed {
					t.Errorf("%d: step %s on %s still failed after the build went on: %s", i+1, st.Step, st.Node, st.Detail)
				}
			}
		}
		if len(res.Followed) != c.followed {
			t.Errorf("%d: followed %v, want %d", i+1, res.Followed, c.followed)
		}
	}
}

func TestPgClusterCreateOrder(t *testing.T) {
	f := &pgFake{}
	env := newPgEnv(f)
	env.ExecuteWorkflow(PgClusterCreate, pgInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	pos := func(call string) int {
		for i, c := range f.calls {
			if c == call {
				return i
			}
		}
		t.Fatalf("%s did not run; calls: %v", call, f.calls)
		return -1
	}
	order := []string{"10.0.0.11/initdb", "10.0.0.11/configure", "control/dcs-register", "10.0.0.11/ha-agent", "control/leader",
		"10.0.0.11/roles", "10.0.0.12/clone", "10.0.0.12/ha-agent", "10.0.0.11/streaming", "10.0.0.11/users-databases",
		"10.0.0.11/backup-stanza", "10.0.0.11/full-backup", "control/verify"}
	for i := 1; i < len(order); i++ {
		if pos(order[i-1]) > pos(order[i]) {
			t.Errorf("%s ran after %s", order[i-1], order[i])
		}
	}
	if pos("10.0.0.13/clone") < pos("control/leader") {
		t.Error("a replica cloned before the primary led")
	}
	if f.ran(activities.StepInitdb) != 1 || f.ran(activities.StepClone) != 2 || f.ran(activities.StepBackupConf) != 3 {
		t.Errorf("calls = %v", f.calls)
	}
	var res PgClusterCreateResult
	env.GetWorkflowResult(&res)
	if res.Sysid != "7300000000000000001" || res.Primary != "pg-test-1" {
		t.Errorf("result = %+v", res)
	}
}

func TestPgClusterCreateDryRunChangesNothing(t *testing.T) {
	f := &pgFake{}
	env := newPgEnv(f)
	in := pgInput()
	in.DryRun = true
	env.ExecuteWorkflow(PgClusterCreate, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PgClusterCreateResult
	env.GetWorkflowResult(&res)
	for _, c := range f.calls {
		if !strings.HasSuffix(c, "/precheck") && c != "control/dcs-status" {
			t.Errorf("dry run ran %s", c)
		}
	}
	if len(res.Plan) == 0 || !strings.Contains(strings.Join(res.Plan, "\n"), "pg-test-1: initdb") {
		t.Errorf("plan = %v", res.Plan)
	}
}

// With no DCS record, data pigwf did not create (no marker) is another system's.
func TestPgClusterCreateRefusesUnmarkedData(t *testing.T) {
	f := &pgFake{precheck: map[string]map[string]string{"10.0.0.11": {"sysid": "7311111111111111111"}}}
	env := newPgEnv(f)
	env.ExecuteWorkflow(PgClusterCreate, pgInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "holds system 7311111111111111111, which pigwf did not create for pg-test") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v", err)
	}
	// The marker makes it ours: a resumed run after a crash between initdb and registration.
	f2 := &pgFake{precheck: map[string]map[string]string{"10.0.0.11": {"sysid": "7311111111111111111", "marker": "pg-test 7311111111111111111"}}}
	env2 := newPgEnv(f2)
	env2.ExecuteWorkflow(PgClusterCreate, pgInput())
	if err := env2.GetWorkflowError(); err != nil {
		t.Fatalf("marked data refused: %v", err)
	}
}

func TestPgClusterCreateForceWaitsForApproval(t *testing.T) {
	for _, decision := range []string{DecisionApprove, DecisionReject} {
		f := &pgFake{dcsSysid: "7300000000000000001", precheck: map[string]map[string]string{"10.0.0.13": {"sysid": "7399999999999999999"}}}
		env := newPgEnv(f)
		in := pgInput()
		in.Force = true
		in.Approval = ApprovalPolicy{Approvers: []string{"alice"}, Timeout: time.Hour}
		signal := func(d ApprovalDecision) {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(ApproveSignal, signed(d)) }, time.Minute)
		}
		signal(ApprovalDecision{Decision: decision, Approver: "alice"})
		env.ExecuteWorkflow(PgClusterCreate, in)
		err := env.GetWorkflowError()
		moved := f.ran("move-aside")
		if decision == DecisionApprove {
			if err != nil || moved != 1 || f.ran(activities.StepInitdb) != 1 {
				t.Errorf("approved: err %v, move-aside %d, calls %v", err, moved, f.calls)
			}
			if pos := strings.Index(strings.Join(f.calls, " "), "10.0.0.13/move-aside"); pos > strings.Index(strings.Join(f.calls, " "), "10.0.0.11/initdb") {
				t.Error("moved aside after initdb")
			}
		} else {
			if err == nil || !strings.Contains(err.Error(), "nothing was changed") || moved != 0 || f.ran(activities.StepInitdb) != 0 {
				t.Errorf("rejected: err %v, calls %v", err, f.calls)
			}
		}
	}
}

// After a failover the current leader, not the inventory's primary, gets the primary's steps.
func TestPgClusterCreateRerunFollowsTheCurrentLeader(t *testing.T) {
	f := &pgFake{dcsSysid: "7300000000000000001", dcsLeader: "pg-test-2", precheck: map[string]map[string]string{
		"10.0.0.11": {"sysid": "7300000000000000001"}, "10.0.0.12": {"sysid": "7300000000000000001"}, "10.0.0.13": {"sysid": "7300000000000000001"}}}
	env := newPgEnv(f)
	env.ExecuteWorkflow(PgClusterCreate, pgInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(f.calls, " ")
	for _, want := range []string{"10.0.0.12/initdb", "10.0.0.12/roles", "10.0.0.11/clone", "10.0.0.13/clone", "10.0.0.12/full-backup"} {
		if !strings.Contains(calls, want) {
			t.Errorf("%s did not run: %v", want, f.calls)
		}
	}
	if strings.Contains(calls, "10.0.0.11/initdb") || strings.Contains(calls, "10.0.0.12/clone") {
		t.Errorf("the inventory's primary was treated as the primary: %v", f.calls)
	}
	var res PgClusterCreateResult
	env.GetWorkflowResult(&res)
	if res.Primary != "pg-test-2" {
		t.Errorf("result primary = %q", res.Primary)
	}
}
