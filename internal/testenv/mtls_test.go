package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/starter"
)

// The dev server with mutual TLS: the pigwf CLI, a pigwf worker and the `temporal` CLI connect
// with a client certificate from the server's CA, and are refused without one and with one from
// another CA.
func TestDevServerRequiresClientCertificates(t *testing.T) {
	if os.Getenv(EnvPigwfBin) == "" {
		if RequireIntegration() {
			t.Fatalf("%s is not set", EnvPigwfBin)
		}
		t.Skipf("needs the pigwf binary: set %s (make test does)", EnvPigwfBin)
	}
	env := Server(t)

	// Another deployment's CA and certificates: well-formed, but not this server's.
	foreign := devtls.Layout{Home: t.TempDir()}
	if _, err := devtls.Ensure(foreign, "127.0.0.1", time.Now()); err != nil {
		t.Fatal(err)
	}
	ours := env.TLS.Client(devtls.RoleCLI)
	theirs := foreign.Client(devtls.RoleCLI)
	type creds struct {
		name string
		args []string // pigwf's global flags after --address and --ui
		ok   bool
	}
	// pigwfCreds are the cases for a pigwf process connecting as role.
	pigwfCreds := func(role devtls.Role) []creds {
		ours, theirs := env.TLS.Client(role), foreign.Client(role)
		return []creds{
			{"our certificate", []string{"--tls-cert-path", ours.Cert, "--tls-key-path", ours.Key, "--tls-ca-path", ours.CA}, true},
			{"no certificate, plain text", []string{"--tls=false"}, false},
			{"no certificate, TLS with our CA", []string{"--tls-ca-path", ours.CA}, false},
			{"a certificate from another CA", []string{"--tls-cert-path", theirs.Cert, "--tls-key-path", theirs.Key, "--tls-ca-path", ours.CA}, false},
		}
	}

	// The pigwf CLI. Its home has no files of pigwf dev, so only the flags count.
	for _, c := range pigwfCreds(devtls.RoleCLI) {
		out, err := pigwfRun(t, env, t.TempDir(), c.args, "list")
		if (err == nil) != c.ok {
			t.Errorf("pigwf list, %s: err=%v, want ok=%v\n%s", c.name, err, c.ok, out)
		}
		if !c.ok && !strings.Contains(out, "while connecting to Temporal at "+env.TemporalAddr) {
			t.Errorf("pigwf list, %s: the refusal does not say what failed:\n%s", c.name, out)
		}
	}
	// The same through the environment, as the temporal CLI's variables.
	out, err := pigwfRunEnv(t, env, t.TempDir(), []string{"TEMPORAL_TLS_CERT=" + ours.Cert, "TEMPORAL_TLS_KEY=" + ours.Key, "TEMPORAL_TLS_CA=" + ours.CA}, nil, "list")
	if err != nil {
		t.Errorf("pigwf list with TEMPORAL_TLS_CERT/KEY/CA: %v\n%s", err, out)
	}

	// A pigwf worker: with our certificate it polls pigwf's task queue; otherwise it exits at once
	// with the connection error.
	cl := env.Dial(t)
	for _, c := range pigwfCreds(devtls.RoleWorker) {
		home := t.TempDir()
		args := append(append([]string{"--address", env.TemporalAddr, "--ui", env.UIURL}, c.args...), "worker", "--task-queue", "mtls-"+strings.ReplaceAll(c.name, " ", "-"))
		cmd := exec.Command(env.PigwfBin, args...)
		cmd.Env = append(os.Environ(), "PIGWF_HOME="+home)
		logPath := filepath.Join(home, "worker.log")
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		queue := args[len(args)-1]
		polling := waitForPoller(cl, queue, exited, 20*time.Second)
		if polling {
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		log, _ := os.ReadFile(logPath)
		t.Logf("worker, %s: polling=%v %.300s", c.name, polling, log)
		if polling != c.ok {
			t.Errorf("pigwf worker, %s: polling=%v, want %v\n%s", c.name, polling, c.ok, log)
		}
		if !c.ok && !strings.Contains(string(log), "while connecting to Temporal") {
			t.Errorf("pigwf worker, %s: the refusal does not say what failed:\n%s", c.name, log)
		}
	}

	// The temporal CLI, with its own flags.
	temporal := TemporalCLI()
	if temporal == "" {
		if RequireIntegration() {
			t.Fatalf("no temporal CLI: set %s, or run make build", EnvTemporalCLI)
		}
		t.Skipf("no temporal CLI (set %s, put it on PATH or run make build)", EnvTemporalCLI)
	}
	for _, c := range []creds{
		{"our certificate", env.TemporalCLIArgs(), true},
		{"no certificate", []string{"--address", env.TemporalAddr}, false},
		{"no certificate, TLS with our CA", []string{"--address", env.TemporalAddr, "--tls-ca-path", ours.CA}, false},
		{"a certificate from another CA", []string{"--address", env.TemporalAddr, "--tls-cert-path", theirs.Cert, "--tls-key-path", theirs.Key, "--tls-ca-path", ours.CA}, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := append([]string{"operator", "search-attribute", "list", "--namespace", "default", "--command-timeout", "10s"}, c.args...)
		cmd := exec.CommandContext(ctx, temporal, args...)
		cmd.Env = temporalCLIEnv()
		out, err := cmd.CombinedOutput()
		cancel()
		t.Logf("temporal, %s: %v %.300s", c.name, err, out)
		if (err == nil) != c.ok || (c.ok && !strings.Contains(string(out), "PgCluster")) {
			t.Errorf("temporal operator search-attribute list, %s: err=%v, want ok=%v and pigwf's attributes\n%s", c.name, err, c.ok, out)
		}
	}
}

// pigwfRun runs the pigwf CLI against env with PIGWF_HOME=home and the given connection flags.
func pigwfRun(t *testing.T, env *Env, home string, connArgs []string, args ...string) (string, error) {
	t.Helper()
	return pigwfRunEnv(t, env, home, nil, connArgs, args...)
}

func pigwfRunEnv(t *testing.T, env *Env, home string, vars, connArgs []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append(append([]string{"--address", env.TemporalAddr, "--ui", env.UIURL}, connArgs...), args...)
	cmd := exec.CommandContext(ctx, env.PigwfBin, all...)
	cmd.Env = append(append(temporalCLIEnv(), "PIGWF_HOME="+home), vars...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitForPoller reports whether a worker polls queue before timeout, giving up early when the
// worker process exits.
func waitForPoller(cl *starter.Client, queue string, exited <-chan error, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cl.C.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
		})
		cancel()
		if err == nil && len(resp.GetPollers()) > 0 {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}
