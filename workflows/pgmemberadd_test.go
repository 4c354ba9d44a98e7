package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

const memberAddSysid = "7300000000000000001"

// memberAddInput: pg-test-1..3 are members, pg-test-4 (10.0.0.14) is the new host.
func memberAddInput() PgMemberAddInput {
	in := PgMemberAddInput{Cluster: "pg-test", APIPort: 8008, New: []string{"pg-test-4"},
		Spec: activities.PGSpec{Cluster: "pg-test", Port: 5432, DataDir: "/pg/data"},
		DCS:  activities.DCSInput{Endpoints: []string{"https://10.0.0.11:2379"}, Namespace: "/pigwf", Cluster: "pg-test"}}
	for i, role := range []string{"primary", "replica", "replica", "replica"} {
		addr := "10.0.0.1" + string(rune('1'+i))
		name := "pg-test-" + string(rune('1'+i))
		in.Hosts = append(in.Hosts, PgMember{Name: name, Role: role, Node: activities.Node{Addr: addr, Name: name, SSHHost: addr}})
	}
	in.NodeInit = NodeInitInput{Cluster: "pg-test", Nodes: []NodeSpec{{Node: in.Hosts[3].Node}}}
	return in
}

// memberAddFake is the cluster a PgMemberAdd run sees, and what the run asked of it, in order.
type memberAddFake struct {
	mu    sync.Mutex
	calls []string
	// states are ReadClusterState's answers in turn (the last one repeats).
	states   []activities.ClusterState
	reads    int
	dcs      activities.DCSState
	precheck []map[string]string // PgPrecheck's facts in turn (the last one repeats)
	checks   int
	clones   []activities.PgNodeInput
	// cloneFails: the first clone attempt fails as a killed worker's would (retried).
	cloneFails bool
	nodeInit   *NodeInitInput
}

func (f *memberAddFake) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

// healthy: pg-test-2 leads (after a failover: not the inventory's primary), 1 and 3 stream.
func healthyState() activities.ClusterState {
	return activities.ClusterState{Leader: "pg-test-2", LeaderPrimary: true, Replicas: []string{"pg-test-1", "pg-test-3"},
		Streaming: []string{"pg-test-1", "pg-test-3"}, View: "pg-test-2 leader; pg-test-1, pg-test-3 streaming"}
}

func newMemberAddEnv(f *memberAddFake) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{}
	env.RegisterActivity(a)
	if !f.dcs.Reachable {
		f.dcs = activities.DCSState{Reachable: true, Sysid: memberAddSysid, Leader: "pg-test-2"}
	}
	env.OnActivity(a.ClusterExclusive, mockAny, mockAny).Return(func(context.Context, activities.ExclusiveInput) (activities.StepResult, error) {
		f.record("exclusive")
		return activities.StepResult{}, nil
	})
	env.OnActivity(a.DCSStatus, mockAny, mockAny).Return(func(context.Context, activities.DCSInput) (activities.DCSState, error) {
		f.record("dcs")
		return f.dcs, nil
	})
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(_ context.Context, in activities.ClusterStateInput) (activities.ClusterState, error) {
		f.mu.Lock()
		st := f.states[min(f.reads, len(f.states)-1)]
		f.reads++
		f.mu.Unlock()
		f.record("read " + st.Leader)
		if len(in.Members) != 4 || in.Members[3].APIURL != "https://10.0.0.14:8008" {
			return st, errors.New("the agents of every inventory host are asked")
		}
		return st, nil
	})
	env.OnActivity(a.PgPrecheck, mockAny, mockAny).Return(func(_ context.Context, in activities.PgNodeInput) (activities.StepResult, error) {
		f.mu.Lock()
		facts := f.precheck[min(f.checks, len(f.precheck)-1)]
		f.checks++
		f.mu.Unlock()
		f.record("precheck " + in.Node.Name)
		return activities.StepResult{Facts: facts}, nil
	})
	env.OnWorkflow(NodeInit, mockAny, mockAny).Return(func(_ workflow.Context, in NodeInitInput) (NodeInitResult, error) {
		f.nodeInit = &in
		f.record("node-init " + in.Nodes[0].Node.Name)
		return NodeInitResult{Cluster: in.Cluster, Changed: 5, Unchanged: 3}, nil
	})
	env.OnActivity(a.PgHBA, mockAny, mockAny).Return(func(_ context.Context, in activities.PgHBAInput) (activities.StepResult, error) {
		f.record("hba " + in.Node.Name)
		return activities.StepResult{Changed: true}, nil
	})
	step := func(name string) func(context.Context, activities.PgNodeInput) (activities.StepResult, error) {
		return func(_ context.Context, in activities.PgNodeInput) (activities.StepResult, error) {
			f.record(name + " " + in.Node.Name)
			return activities.StepResult{Changed: true}, nil
		}
	}
	env.OnActivity(a.PgCredentials, mockAny, mockAny).Return(step("credentials"))
	env.OnActivity(a.BackupConfig, mockAny, mockAny).Return(step("backup-config"))
	env.OnActivity(a.PgClone, mockAny, mockAny).Return(func(_ context.Context, in activities.PgNodeInput) (activities.StepResult, error) {
		f.mu.Lock()
		f.clones = append(f.clones, in)
		attempt := len(f.clones)
		f.mu.Unlock()
		f.record("clone " + in.Node.Name + " from " + in.Primary.Name)
		if f.cloneFails && attempt == 1 {
			return activities.StepResult{}, errors.New("the worker died")
		}
		return activities.StepResult{Changed: true, Facts: map[string]string{"sysid": in.ClusterSysid}}, nil
	})
	env.OnActivity(a.HAAgent, mockAny, mockAny).Return(func(_ context.Context, in activities.AgentInput) (activities.StepResult, error) {
		f.record("agent " + in.Member)
		return activities.StepResult{Changed: true}, nil
	})
	env.OnActivity(a.WaitMembers, mockAny, mockAny).Return(func(_ context.Context, in activities.WaitMembersInput) (activities.StepResult, error) {
		f.record("wait " + strings.Join(in.Targets, ",") + " " + in.Until)
		return activities.StepResult{}, nil
	})
	return env
}

func runMemberAdd(t *testing.T, f *memberAddFake, in PgMemberAddInput) (PgMemberAddResult, error) {
	t.Helper()
	env := newMemberAddEnv(f)
	env.ExecuteWorkflow(PgMemberAddName, in)
	return runOutcome[PgMemberAddResult](t, env)
}

var unmanaged = map[string]string{"problem.managed": "node 10.0.0.14 is not managed by pigwf: run node-init first"}

// A new host without node-init: node-init as a child on it alone, its precheck again; then
// pg_hba.conf on every member, one at a time, before the leader is read again; the clone from
// that leader (pg-test-2, not the inventory's primary), the agent, streaming.
func TestPgMemberAddOrder(t *testing.T) {
	f := &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{unmanaged, {}}}
	res, err := runMemberAdd(t, f, memberAddInput())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dcs", "read pg-test-2", "precheck pg-test-4", "node-init pg-test-4", "precheck pg-test-4",
		"hba pg-test-1", "hba pg-test-2", "hba pg-test-3", "read pg-test-2",
		"credentials pg-test-4", "clone pg-test-4 from pg-test-2", "agent pg-test-4", "backup-config pg-test-4", "wait pg-test-4 streaming"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%v\nwant:\n%v", f.calls, want)
	}
	if c := f.clones[0]; c.ClusterSysid != memberAddSysid || c.Primary.Addr != "10.0.0.12" {
		t.Errorf("clone input: %+v", c)
	}
	if len(f.nodeInit.Nodes) != 1 || f.nodeInit.Nodes[0].Node.Name != "pg-test-4" {
		t.Errorf("node-init input: %+v", f.nodeInit)
	}
	if res.Leader != "pg-test-2" || !slices.Equal(res.Added, []string{"pg-test-4"}) || !slices.Equal(res.NodeInit, []string{"pg-test-4"}) ||
		res.Changed != 5+3+4 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "pg-service") {
		t.Errorf("result: %+v", res)
	}
}

// A failover between the plan and the clones: the clone comes from the leader read right before.
func TestPgMemberAddClonesFromCurrentLeader(t *testing.T) {
	moved := healthyState()
	moved.Leader, moved.Replicas, moved.Streaming = "pg-test-3", []string{"pg-test-1", "pg-test-2"}, []string{"pg-test-1", "pg-test-2"}
	f := &memberAddFake{states: []activities.ClusterState{healthyState(), moved}, precheck: []map[string]string{{}}}
	res, err := runMemberAdd(t, f, memberAddInput())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.clones) != 1 || f.clones[0].Primary.Name != "pg-test-3" || res.Leader != "pg-test-3" {
		t.Errorf("cloned from %+v (result %+v)", f.clones, res)
	}
	if slices.Contains(f.calls, "node-init pg-test-4") {
		t.Error("node-init ran on a managed host")
	}
}

// A worker killed during the clone: the step is retried (PgClone is idempotent) and the run ends
// as if nothing happened.
func TestPgMemberAddCloneRetried(t *testing.T) {
	f := &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{{}}, cloneFails: true}
	res, err := runMemberAdd(t, f, memberAddInput())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.clones) != 2 || !slices.Equal(res.Added, []string{"pg-test-4"}) {
		t.Errorf("clones %d, result %+v", len(f.clones), res)
	}
}

// Refusals change nothing: no pg_hba.conf written, no clone.
func TestPgMemberAddRefusals(t *testing.T) {
	noLeader := healthyState()
	noLeader.LeaderPrimary = false
	paused := healthyState()
	paused.Paused = true
	for name, tc := range map[string]struct {
		f    *memberAddFake
		in   func(*PgMemberAddInput)
		want string
	}{
		"no leader": {f: &memberAddFake{states: []activities.ClusterState{noLeader}, precheck: []map[string]string{{}}}, want: "does not answer as a primary"},
		"paused":    {f: &memberAddFake{states: []activities.ClusterState{paused}, precheck: []map[string]string{{}}}, want: "maintenance mode"},
		"no cluster": {f: &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{{}},
			dcs: activities.DCSState{Reachable: true}}, want: "pg-cluster-create"},
		"foreign data": {f: &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{{"sysid": "7399999999999999999"}}},
			want: "holds system 7399999999999999999"},
		"not empty": {f: &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{{"problem.datadir": "/pg/data is not empty"}}},
			want: "/pg/data is not empty"},
		"the leader": {f: &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{{}}},
			in: func(in *PgMemberAddInput) { in.New = []string{"pg-test-2"} }, want: "pg-test-2 leads the cluster"},
		"a member not in the inventory": {f: &memberAddFake{states: []activities.ClusterState{func() activities.ClusterState {
			st := healthyState()
			st.Replicas = append(st.Replicas, "pg-test-9")
			return st
		}()}, precheck: []map[string]string{{}}}, want: "member pg-test-9 is not a host"},
	} {
		t.Run(name, func(t *testing.T) {
			in := memberAddInput()
			if tc.in != nil {
				tc.in(&in)
			}
			_, err := runMemberAdd(t, tc.f, in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != PgMemberAddRefusedType || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("got %v, want a refusal saying %q", err, tc.want)
			}
			for _, c := range tc.f.calls {
				if strings.HasPrefix(c, "hba ") || strings.HasPrefix(c, "clone ") || strings.HasPrefix(c, "node-init ") {
					t.Errorf("a refused run did %s", c)
				}
			}
		})
	}
}

// A new member that streams already is left alone: a second run changes nothing.
func TestPgMemberAddAlreadyStreaming(t *testing.T) {
	st := healthyState()
	st.Replicas = append(st.Replicas, "pg-test-4")
	st.Streaming = append(st.Streaming, "pg-test-4")
	f := &memberAddFake{states: []activities.ClusterState{st}, precheck: []map[string]string{{}}}
	res, err := runMemberAdd(t, f, memberAddInput())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dcs", "read pg-test-2"}; !slices.Equal(f.calls, want) || !slices.Equal(res.Streaming, []string{"pg-test-4"}) || res.Changed != 0 {
		t.Errorf("calls %v, result %+v", f.calls, res)
	}
}

// A dry run runs the prechecks and reports the plan, node-init included; it changes nothing.
func TestPgMemberAddDryRun(t *testing.T) {
	f := &memberAddFake{states: []activities.ClusterState{healthyState()}, precheck: []map[string]string{unmanaged}}
	in := memberAddInput()
	in.DryRun = true
	res, err := runMemberAdd(t, f, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dcs", "read pg-test-2", "precheck pg-test-4"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %v", f.calls)
	}
	plan := strings.Join(res.Plan, "\n")
	for _, want := range []string{"node-init (a child run) on pg-test-4", "pg-test-1: write pg_hba.conf", "pg-test-4: clone from the leader", "pg-test-4: ha-agent", "wait until pg-test-4 stream"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}
