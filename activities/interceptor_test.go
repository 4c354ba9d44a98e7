package activities

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// activityEnv runs activities through the worker's interceptor, on a fake remote.
func activityEnv(t *testing.T) (*testsuite.TestActivityEnvironment, *Activities, *fakeRemote) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&ValidateInputs{}}})
	remote := &fakeRemote{}
	a := &Activities{Remote: remote}
	env.RegisterActivity(a)
	return env, a, remote
}

var goodNode = Node{Addr: "10.0.0.1", Name: "pg-test-1", SSHHost: "10.0.0.1", SSHPort: 22, SSHUser: "root"}

// A hostile input is refused before the activity runs: nothing reaches the node, and the error
// is non-retryable, of type ErrInvalidInput, naming the activity and each bad field.
func TestInterceptorRefusesHostileInput(t *testing.T) {
	cases := []struct {
		name   string
		run    func(env *testsuite.TestActivityEnvironment, a *Activities) error
		fields []string
	}{
		{"a node address with a command", func(env *testsuite.TestActivityEnvironment, a *Activities) error {
			n := goodNode
			n.Addr = "10.0.0.1;rm -rf /"
			_, err := env.ExecuteActivity(a.NodeConnect, n)
			return err
		}, []string{"node.addr"}},
		{"a cluster name with a quote and an etcd port out of range", func(env *testsuite.TestActivityEnvironment, a *Activities) error {
			in := DCSInput{Endpoints: []string{"http://10.0.0.1:2379", "http://10.0.0.2:65536"}, Namespace: "/pigwf", Cluster: "pg-test'"}
			_, err := env.ExecuteActivity(a.DCSStatus, in)
			return err
		}, []string{"endpoints[1]", "cluster"}},
		{"a package that is an apt-get option", func(env *testsuite.TestActivityEnvironment, a *Activities) error {
			_, err := env.ExecuteActivity(a.NodePackages, NodePackagesInput{Node: goodNode, Packages: []string{"-oAPT::Get::AllowUnauthenticated=1"}})
			return err
		}, []string{"packages[0]"}},
	}
	for _, c := range cases {
		env, a, remote := activityEnv(t)
		err := c.run(env, a)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != ErrInvalidInput || !app.NonRetryable() {
			t.Errorf("%s: got %v, want a non-retryable %s", c.name, err, ErrInvalidInput)
			continue
		}
		for _, f := range c.fields {
			if !strings.Contains(app.Error(), f+": ") {
				t.Errorf("%s: the error does not name %s: %v", c.name, f, app)
			}
		}
		if n := len(remote.commands()); n != 0 {
			t.Errorf("%s: %d commands reached the node", c.name, n)
		}
	}
}

// A good input goes through to the activity.
func TestInterceptorPassesGoodInput(t *testing.T) {
	env, a, remote := activityEnv(t)
	if _, err := env.ExecuteActivity(a.NodeConnect, goodNode); err != nil {
		t.Fatal(err)
	}
	if n := len(remote.commands()); n != 1 {
		t.Errorf("%d commands reached the node, want 1", n)
	}
}
