package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities"
)

func testInput() NodeInitInput {
	in := NodeInitInput{Cluster: "pg-test"}
	for i, addr := range []string{"10.213.0.11", "10.213.0.12", "10.213.0.13"} {
		n := activities.Node{Addr: addr, Name: "pg-test-" + string(rune('1'+i)), SSHHost: addr, SSHPort: 22, SSHUser: "root"}
		in.Nodes = append(in.Nodes, NodeSpec{Node: n, Packages: []string{"postgresql-15"}, Sysctl: map[string]string{"net.core.somaxconn": "4096"}})
		in.Hosts = append(in.Hosts, activities.HostEntry{Addr: addr, Name: n.Name})
	}
	return in
}

// fakeSteps stands in for the remote steps: it records calls and answers per node.
type fakeSteps struct {
	mu      sync.Mutex
	calls   map[string]int // "addr/step" -> attempts
	changed bool
	fail    func(addr, step string, attempt int) error
}

func (f *fakeSteps) step(addr, step string) (activities.StepResult, error) {
	f.mu.Lock()
	f.calls[addr+"/"+step]++
	attempt := f.calls[addr+"/"+step]
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(addr, step, attempt); err != nil {
			return activities.StepResult{}, err
		}
	}
	r := activities.StepResult{Node: addr, Step: step, Changed: f.changed}
	if f.changed {
		r.Changes = []string{"did " + step}
	}
	return r, nil
}

func newEnv(t *testing.T, f *fakeSteps) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(NodeInit, workflowOpts(NodeInitName))
	env.RegisterWorkflowWithOptions(ClusterLock, workflowOpts(ClusterLockName))
	a := &activities.Activities{}
	env.RegisterActivity(a)
	env.OnActivity(a.EnsureCA, mockAny).Return(activities.CAInfo{Fingerprint: strings.Repeat("ab", 32), Created: f.changed}, nil)
	env.OnActivity(a.NodeConnect, mockAny, mockAny).Return(func(_ context.Context, n activities.Node) (activities.StepResult, error) {
		return f.step(n.Addr, activities.StepConnect)
	})
	env.OnActivity(a.NodeIdentity, mockAny, mockAny).Return(func(_ context.Context, in activities.NodeIdentityInput) (activities.StepResult, error) {
		return f.step(in.Node.Addr, activities.StepIdentity)
	})
	env.OnActivity(a.NodeOSUser, mockAny, mockAny).Return(func(_ context.Context, n activities.Node) (activities.StepResult, error) {
		return f.step(n.Addr, activities.StepOSUser)
	})
	env.OnActivity(a.NodePackages, mockAny, mockAny).Return(func(_ context.Context, in activities.NodePackagesInput) (activities.StepResult, error) {
		return f.step(in.Node.Addr, activities.StepPackages)
	})
	env.OnActivity(a.NodeDirectories, mockAny, mockAny).Return(func(_ context.Context, n activities.Node) (activities.StepResult, error) {
		return f.step(n.Addr, activities.StepDirectories)
	})
	env.OnActivity(a.NodeKernel, mockAny, mockAny).Return(func(_ context.Context, in activities.NodeKernelInput) (activities.StepResult, error) {
		return f.step(in.Node.Addr, activities.StepKernel)
	})
	env.OnActivity(a.NodeCert, mockAny, mockAny).Return(func(_ context.Context, in activities.NodeCertInput) (activities.StepResult, error) {
		if in.Fingerprint != strings.Repeat("ab", 32) {
			return activities.StepResult{}, errors.New("wrong fingerprint passed")
		}
		return f.step(in.Node.Addr, activities.StepNodeCert)
	})
	env.OnActivity(a.NodeCACert, mockAny, mockAny).Return(func(_ context.Context, in activities.NodeCACertInput) (activities.StepResult, error) {
		if in.Fingerprint != strings.Repeat("ab", 32) {
			return activities.StepResult{}, errors.New("wrong fingerprint passed")
		}
		return f.step(in.Node.Addr, activities.StepCACert)
	})
	return env
}

func TestNodeInitAllNodesChanged(t *testing.T) {
	f := &fakeSteps{calls: map[string]int{}, changed: true}
	env := newEnv(t, f)
	env.ExecuteWorkflow(NodeInit, testInput())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow error: %v", env.GetWorkflowError())
	}
	var res NodeInitResult
	env.GetWorkflowResult(&res)
	if res.Changed != 3*len(activities.NodeInitSteps) || res.Unchanged != 0 || res.Failed != 0 {
		t.Fatalf("result = %+v", res)
	}
	for k, n := range f.calls {
		if n != 1 {
			t.Errorf("%s ran %d times", k, n)
		}
	}
	val, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	val.Get(&p)
	// The cluster's lock (unchanged), the CA, every node's steps.
	if p.Phase != "done" || len(p.Steps) != 2+3*len(activities.NodeInitSteps) || p.Steps[0].Step != exclusiveStep.name || p.Steps[0].State != StateUnchanged {
		t.Fatalf("progress = %+v", p)
	}
	for _, s := range p.Steps[1:] {
		if s.State != StateChanged {
			t.Errorf("step %s/%s state %s", s.Node, s.Step, s.State)
		}
	}
}

func TestNodeInitSecondRunUnchanged(t *testing.T) {
	f := &fakeSteps{calls: map[string]int{}, changed: false}
	env := newEnv(t, f)
	env.ExecuteWorkflow(NodeInit, testInput())
	var res NodeInitResult
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	env.GetWorkflowResult(&res)
	if res.Changed != 0 || res.Unchanged != 3*len(activities.NodeInitSteps) {
		t.Fatalf("result = %+v", res)
	}
}

// A node with a wrong host key fails at once (no retries), later steps are skipped (the CA
// marker is not written there), and the other nodes complete.
func TestNodeInitHostKeyFailureIsNotRetried(t *testing.T) {
	f := &fakeSteps{calls: map[string]int{}, changed: true}
	f.fail = func(addr, step string, attempt int) error {
		if addr == "10.213.0.12" && step == activities.StepConnect {
			return temporal.NewNonRetryableApplicationError("connect on pg-test-2 (10.213.0.12): host key of 10.213.0.12 does not match /lab/known_hosts", activities.ErrHostKey, nil)
		}
		return nil
	}
	env := newEnv(t, f)
	env.ExecuteWorkflow(NodeInit, testInput())
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("want failure")
	}
	for _, want := range []string{"node-init failed on 1 of 3 nodes of pg-test", "pg-test-2 (10.213.0.12)", "does not match /lab/known_hosts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := f.calls["10.213.0.12/connect"]; n != 1 {
		t.Errorf("connect attempted %d times, want 1 (non-retryable)", n)
	}
	if n := f.calls["10.213.0.12/ca-cert"]; n != 0 {
		t.Errorf("ca-cert ran on the failed node")
	}
	if n := f.calls["10.213.0.13/ca-cert"]; n != 1 {
		t.Errorf("other nodes did not complete: %v", f.calls)
	}
	val, _ := env.QueryWorkflow(ProgressQuery)
	var p Progress
	val.Get(&p)
	states := map[string]string{}
	for _, s := range p.Steps {
		states[s.Node+"/"+s.Step] = s.State
	}
	if states["pg-test-2 (10.213.0.12)/connect"] != StateFailed || states["pg-test-2 (10.213.0.12)/ca-cert"] != StateSkipped || p.Phase != "failed" {
		t.Errorf("progress states = %v phase %s", states, p.Phase)
	}
}

// A transient failure (a dropped connection) is retried and the run completes.
func TestNodeInitRetriesTransientFailures(t *testing.T) {
	f := &fakeSteps{calls: map[string]int{}, changed: true}
	f.fail = func(addr, step string, attempt int) error {
		if addr == "10.213.0.11" && step == activities.StepPackages && attempt < 3 {
			return errors.New("while connecting to 10.213.0.11:22: connection refused")
		}
		return nil
	}
	env := newEnv(t, f)
	env.ExecuteWorkflow(NodeInit, testInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := f.calls["10.213.0.11/packages"]; n != 3 {
		t.Errorf("packages attempts = %d, want 3", n)
	}
}

// mockAny matches any argument in testsuite expectations.
var mockAny = mock.Anything
