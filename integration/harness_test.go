// Package integration runs pigwf end to end on real parts: a real Temporal server (our
// pigwf-temporal build), lab nodes with real sshd, the pigwf binary as worker and CLI.
// It needs root and the lab's packages; `make test` provides both and sets
// PIGWF_REQUIRE_INTEGRATION=1 so that a missing prerequisite fails instead of skipping.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/starter"
)

var (
	temporalAddr string
	pigwfBin     string
)

func TestMain(m *testing.M) {
	code := func() int {
		if reason := missingPrereq(); reason != "" {
			if os.Getenv("PIGWF_REQUIRE_INTEGRATION") == "1" {
				fmt.Fprintln(os.Stderr, "integration prerequisites missing: "+reason)
				return 1
			}
			fmt.Println("skipping integration tests: " + reason)
			return m.Run() // every test skips itself
		}
		stop, err := startTemporal()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
		return m.Run()
	}()
	os.Exit(code)
}

func missingPrereq() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces)"
	}
	for _, env := range []string{"PIGWF_TEMPORAL_BIN", "PIGWF_BIN"} {
		p := os.Getenv(env)
		if p == "" {
			return env + " is not set (make test sets it)"
		}
		if _, err := os.Stat(p); err != nil {
			return env + "=" + p + " does not exist (run make build)"
		}
	}
	for _, bin := range []string{"/usr/sbin/sshd", "/usr/bin/pgbackrest", "/usr/lib/postgresql/15/bin/postgres"} {
		if _, err := os.Stat(bin); err != nil {
			return bin + " missing (run make deps)"
		}
	}
	pigwfBin = os.Getenv("PIGWF_BIN")
	return ""
}

func requireIntegration(t *testing.T) {
	if temporalAddr == "" {
		t.Skip("integration prerequisites missing")
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTemporal runs a private in-memory Temporal server on random loopback ports.
func startTemporal() (func(), error) {
	port := freePort()
	cmd := exec.Command(os.Getenv("PIGWF_TEMPORAL_BIN"), "--port", fmt.Sprint(port), "--ui-port", "0", "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting the Temporal server: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("the Temporal server did not become ready in 60 s")
	}
	temporalAddr = fmt.Sprintf("127.0.0.1:%d", port)
	return func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() }, nil
}

// testLab brings up a lab of its own for one test and removes it afterwards.
func testLab(t *testing.T, name, subnet string, nodes int) *lab.Status {
	t.Helper()
	cfg := lab.Config{Name: name, Subnet: subnet, Nodes: nodes}.WithDefaults()
	_ = lab.Down(context.Background(), cfg) // a leftover of a crashed run
	st, err := lab.Up(context.Background(), cfg)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), cfg); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return st
}

// workerProc is a `pigwf worker` subprocess, so it can be killed with SIGKILL like a real crash.
type workerProc struct {
	cmd *exec.Cmd
	log *os.File
}

func startWorker(t *testing.T, home string, extra ...string) *workerProc {
	t.Helper()
	args := append([]string{"--address", temporalAddr, "worker"}, extra...)
	cmd := exec.Command(pigwfBin, args...)
	cmd.Env = append(os.Environ(), "PIGWF_HOME="+home)
	logf, err := os.OpenFile(filepath.Join(home, "worker.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProc{cmd: cmd, log: logf}
	t.Cleanup(func() { w.kill() })
	return w
}

func (w *workerProc) kill() {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Signal(syscall.SIGKILL)
		w.cmd.Wait()
	}
	w.log.Close()
}

// pigwf runs the CLI and returns its combined output and exit error.
func pigwf(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pigwfBin, append([]string{"--address", temporalAddr}, args...)...)
	cmd.Env = append(os.Environ(), "PIGWF_HOME="+home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func dial(t *testing.T) *starter.Client {
	t.Helper()
	c, err := starter.Dial(context.Background(), temporalAddr, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// nodeRun runs a shell command on lab node i (1-based) inside its namespaces.
func nodeRun(t *testing.T, st *lab.Status, i int, script string) string {
	t.Helper()
	out, err := st.Exec(context.Background(), i, "sh", "-c", script)
	if err != nil {
		t.Fatalf("node %d: %s: %v\n%s", i, script, err, out)
	}
	return string(out)
}

// historyOf reads a run's whole history.
func historyOf(c *starter.Client, id string) (*historypb.History, error) {
	iter := c.C.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return nil, fmt.Errorf("while reading the history of %s: %w", id, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	return hist, nil
}
