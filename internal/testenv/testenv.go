// Package testenv is the harness shared by pigwf's end-to-end tests (integration/, chaos/):
// a private Temporal server (our pigwf-temporal build) and its Web UI on random loopback ports,
// with pigwf's search attributes registered and mutual TLS from a CA of its own, labs that a
// test brings up and removes, `pigwf worker` subprocesses that can be killed like real crashes,
// the pigwf CLI, and small helpers to run commands on lab nodes and read run histories.
//
// It needs root (network namespaces) and the lab's packages. Tests call MissingPrereq first
// and skip (or, with PIGWF_REQUIRE_INTEGRATION=1, fail) when something is missing.
package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/internal/workerid"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// Environment variables the harness reads.
const (
	EnvTemporalBin       = "PIGWF_TEMPORAL_BIN"        // the pigwf-temporal dev server binary
	EnvPigwfBin          = "PIGWF_BIN"                 // the pigwf binary (CLI and worker)
	EnvTemporalCLI       = "PIGWF_TEMPORAL_CLI"        // the `temporal` CLI (default: next to PIGWF_BIN, on PATH, ~/go/bin)
	EnvRequireIntegrated = "PIGWF_REQUIRE_INTEGRATION" // "1": a missing prerequisite fails instead of skipping
)

// RequireIntegration says whether missing prerequisites must fail the run (make test sets it).
func RequireIntegration() bool { return os.Getenv(EnvRequireIntegrated) == "1" }

// MissingPrereq returns why end-to-end tests cannot run here, or "" when they can.
func MissingPrereq() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces)"
	}
	for _, env := range []string{EnvTemporalBin, EnvPigwfBin} {
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
	return ""
}

// FreePort returns a TCP port on the loopback interface that nobody listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("while looking for a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Env is a running private Temporal server and the pigwf binary the tests drive it with.
type Env struct {
	TemporalAddr string // host:port of the server's gRPC endpoint
	UIURL        string // base URL of the server's Web UI, e.g. http://127.0.0.1:41234
	PigwfBin     string // the pigwf binary (CLI and worker)
	// TLS is the server's own CA and certificates, as `pigwf dev` issues them: its frontend
	// requires a client certificate from that CA.
	TLS  devtls.Layout
	stop func()
}

// Start runs a private in-memory Temporal server (PIGWF_TEMPORAL_BIN) with its Web UI on random
// loopback ports, every attribute of workflows.CustomSearchAttributes registered, and mutual TLS
// from a CA of its own (devtls.Ensure in a temporary directory, as `pigwf dev` does), and returns
// it with PIGWF_BIN; Stop ends it and removes the CA.
func Start() (*Env, error) {
	dir, err := os.MkdirTemp("", "pigwf-testenv-tls-")
	if err != nil {
		return nil, err
	}
	env, err := start(devtls.Layout{Home: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stopServer := env.stop
	env.stop = func() { stopServer(); os.RemoveAll(dir) }
	return env, nil
}

// Server is Start for one test: skipped without PIGWF_TEMPORAL_BIN (failed when integration is
// required), stopped when the test ends.
func Server(t testing.TB) *Env {
	t.Helper()
	if os.Getenv(EnvTemporalBin) == "" {
		if RequireIntegration() {
			t.Fatalf("%s is not set", EnvTemporalBin)
		}
		t.Skipf("needs a Temporal dev server: set %s (make test does)", EnvTemporalBin)
	}
	env, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	return env
}

func start(layout devtls.Layout) (*Env, error) {
	if _, err := devtls.Ensure(layout, "127.0.0.1", time.Now()); err != nil {
		return nil, fmt.Errorf("while issuing the test server's certificates: %w", err)
	}
	port, uiPort, err := serverPorts()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort), "--log-level", "error"}, serverTLSArgs(layout)...)
	for _, sa := range workflows.CustomSearchAttributes() {
		args = append(args, "--search-attribute", sa.Flag())
	}
	srv, err := startServer(os.Getenv(EnvTemporalBin), args, os.Stderr)
	if err != nil {
		return nil, err
	}
	return &Env{
		TemporalAddr: fmt.Sprintf("127.0.0.1:%d", port),
		UIURL:        srv.ui,
		PigwfBin:     os.Getenv(EnvPigwfBin),
		TLS:          layout,
		stop:         func() { srv.stop(syscall.SIGINT) },
	}, nil
}

// serverPorts are two distinct free loopback ports: the gRPC frontend's and the Web UI's.
func serverPorts() (port, uiPort int, err error) {
	if port, err = FreePort(); err != nil {
		return 0, 0, err
	}
	uiPort, err = FreePort()
	for err == nil && uiPort == port {
		uiPort, err = FreePort()
	}
	return port, uiPort, err
}

// serverTLSArgs are pigwf-temporal's mutual-TLS flags with layout's certificates, as `pigwf dev`
// gives them.
func serverTLSArgs(layout devtls.Layout) []string {
	fe, internal := layout.Frontend(), layout.Client(devtls.RoleInternal)
	return []string{"--tls-cert", fe.Cert, "--tls-key", fe.Key, "--tls-ca", fe.CA, "--tls-internal-cert", internal.Cert, "--tls-internal-key", internal.Key}
}

// serverReadyTimeout bounds a pigwf-temporal's start until its ready line.
const serverReadyTimeout = 60 * time.Second

// serverProcess is a running pigwf-temporal.
type serverProcess struct {
	cmd *exec.Cmd
	ui  string // the Web UI's base URL, from the ready line
}

// startServer runs pigwf-temporal (bin) with args, its stderr to errOut, and waits for its ready
// line ("pigwf-temporal ready grpc=HOST:PORT ui=URL", the server's readiness contract).
func startServer(bin string, args []string, errOut io.Writer) (*serverProcess, error) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("while starting the Temporal server: %w", err)
	}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting the Temporal server: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- sc.Text()
				break
			}
		}
		for sc.Scan() { // keep draining so the server never blocks on a full pipe
		}
	}()
	p := &serverProcess{cmd: cmd}
	var line string
	select {
	case line = <-ready:
	case <-time.After(serverReadyTimeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the Temporal server did not become ready in %v", serverReadyTimeout)
	}
	p.ui = readyField(line, "ui")
	if !strings.HasPrefix(p.ui, "http") {
		p.stop(syscall.SIGINT)
		return nil, fmt.Errorf("the Temporal server's ready line names no Web UI: %q", line)
	}
	return p, nil
}

// serverStopTimeout bounds a clean stop; the server stops itself within 15 s.
const serverStopTimeout = 30 * time.Second

// stop sends sig and waits for the process to end, killing it after serverStopTimeout. It
// reports whether it stopped in time.
func (p *serverProcess) stop(sig os.Signal) bool {
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(serverStopTimeout):
		_ = p.cmd.Process.Kill()
		<-done
		return false
	}
}

// readyField is the value of key=value in pigwf-temporal's ready line, or "".
func readyField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// GlobalArgs are the pigwf global flags (given before the subcommand) that bind a CLI call or
// the ChatOps bridge to this server: its frontend with the CLI's client certificate, and its Web
// UI so that the links pigwf prints and sends open this test's UI.
func (e *Env) GlobalArgs() []string { return e.ArgsAs(devtls.RoleCLI) }

// ArgsAs are GlobalArgs with role's client certificate.
func (e *Env) ArgsAs(role devtls.Role) []string {
	f := e.TLS.Client(role)
	return []string{"--address", e.TemporalAddr, "--ui", e.UIURL, "--tls-cert-path", f.Cert, "--tls-key-path", f.Key, "--tls-ca-path", f.CA}
}

// Connection is how a test process itself reaches the server, as role.
func (e *Env) Connection(role devtls.Role) starter.Connection {
	f := e.TLS.Client(role)
	return starter.Connection{Address: e.TemporalAddr, Namespace: "default", TLS: starter.TLSSettings{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}}
}

// TemporalCLIArgs are the `temporal` CLI's flags that reach this server with the CLI's client
// certificate.
func (e *Env) TemporalCLIArgs() []string {
	f := e.TLS.Client(devtls.RoleCLI)
	return []string{"--address", e.TemporalAddr, "--tls-cert-path", f.Cert, "--tls-key-path", f.Key, "--tls-ca-path", f.CA}
}

// TemporalCLI finds the `temporal` CLI: PIGWF_TEMPORAL_CLI, then next to PIGWF_BIN (make puts it
// there), then PATH, then ~/go/bin; "" when there is none.
func TemporalCLI() string {
	if p := os.Getenv(EnvTemporalCLI); p != "" {
		return p
	}
	candidates := []string{}
	if b := os.Getenv(EnvPigwfBin); b != "" {
		candidates = append(candidates, filepath.Join(filepath.Dir(b), "temporal"))
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		candidates = append(candidates, p)
	}
	if h, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(h, "go", "bin", "temporal"))
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// temporalCLIEnv is this process's environment without any TEMPORAL_* variable, so that only
// what a test passes counts.
func temporalCLIEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// Stop stops the Temporal server and waits for it.
func (e *Env) Stop() {
	if e != nil && e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

// Lab brings up a lab of its own for one test (removing a leftover of a crashed run first) and
// removes it when the test ends.
func Lab(t testing.TB, name, subnet string, nodes int) *lab.Status {
	t.Helper()
	return LabWith(t, lab.Config{Name: name, Subnet: subnet, Nodes: nodes})
}

// LabWith is Lab with a whole lab configuration.
func LabWith(t testing.TB, c lab.Config) *lab.Status {
	t.Helper()
	cfg := c.WithDefaults()
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

// LabHome is a PIGWF_HOME for a test on lab st whose CA directory is the lab's (a link to
// st.CADir), as `pigwf lab up` shares $PIGWF_HOME/ca with the worker.
func LabHome(t testing.TB, st *lab.Status) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Symlink(st.CADir, pki.HomeDir(home)); err != nil {
		t.Fatal(err)
	}
	return home
}

// Worker is a `pigwf worker` subprocess, so it can be killed with SIGKILL like a real crash.
type Worker struct {
	cmd *exec.Cmd
	log *os.File
}

// StartWorker starts `pigwf worker` against the server with PIGWF_HOME=home, logging to
// home/worker.log; the worker is killed when the test ends.
func (e *Env) StartWorker(t testing.TB, home string, extra ...string) *Worker {
	t.Helper()
	args := append(append(e.ArgsAs(devtls.RoleWorker), "worker"), extra...)
	cmd := exec.Command(e.PigwfBin, args...)
	cmd.Env = append(os.Environ(), "PIGWF_HOME="+home)
	logf, err := os.OpenFile(filepath.Join(home, "worker.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	w := &Worker{cmd: cmd, log: logf}
	t.Cleanup(w.Kill)
	return w
}

// PID is the worker's process ID.
func (w *Worker) PID() int { return w.cmd.Process.Pid }

// RanAs says whether identity, as Temporal records who ran a task (an activity's
// LastWorkerIdentity, an ActivityTaskStarted event's Identity), is this worker's: the SDK's
// default identity "PID@host@" or pigwf's "pigwf-worker@host/pid-PID/build-...".
func (w *Worker) RanAs(identity string) bool {
	if _, pid, _, ok := workerid.Parse(identity); ok {
		return pid == w.PID()
	}
	return strings.HasPrefix(identity, strconv.Itoa(w.PID())+"@")
}

// Kill kills the worker with SIGKILL (if it still runs) and waits for it. Killing twice is fine.
func (w *Worker) Kill() {
	if w.cmd.ProcessState == nil {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		_ = w.cmd.Wait()
	}
	w.log.Close()
}

// Pigwf runs the CLI against the server with PIGWF_HOME=home and returns its combined output
// and exit error. It gives up after 5 minutes.
func (e *Env) Pigwf(t testing.TB, home string, args ...string) (string, error) {
	t.Helper()
	return e.PigwfWithin(t, home, 5*time.Minute, args...)
}

// PigwfWithin is Pigwf that gives up after limit (the CLI is killed; a run it started goes on).
func (e *Env) PigwfWithin(t testing.TB, home string, limit time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.PigwfBin, append(e.GlobalArgs(), args...)...)
	cmd.Env = append(os.Environ(), "PIGWF_HOME="+home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Dial connects a starter client to the server, closed when the test ends.
func (e *Env) Dial(t testing.TB) *starter.Client {
	t.Helper()
	c, err := starter.Dial(context.Background(), e.Connection(devtls.RoleCLI), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// NodeRun runs a shell command on lab node i (1-based) inside its namespaces and fails the
// test when it fails.
func NodeRun(t testing.TB, st *lab.Status, i int, script string) string {
	t.Helper()
	out, err := st.Exec(context.Background(), i, "sh", "-c", script)
	if err != nil {
		t.Fatalf("node %d: %s: %v\n%s", i, script, err, out)
	}
	return string(out)
}

// HistoryOf reads a run's whole history.
func HistoryOf(c *starter.Client, id string) (*historypb.History, error) {
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

// UIHistory is a run's history as the Web UI's HTTP API gives it (the HTTP rule of
// GetWorkflowExecutionHistory, which the UI's run page reads): the events, in JSON. It shows
// that what the UI shows comes from the server the test means, e.g. after a restart.
func (e *Env) UIHistory(workflowID, runID string) ([]json.RawMessage, error) {
	u := fmt.Sprintf("%s/api/v1/namespaces/default/workflows/%s/history?execution.runId=%s&maximumPageSize=10000",
		e.UIURL, url.PathEscape(workflowID), url.QueryEscape(runID))
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.500s", u, resp.Status, body)
	}
	var page struct {
		History struct {
			Events []json.RawMessage `json:"events"`
		} `json:"history"`
		NextPageToken string `json:"nextPageToken"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("GET %s: %w: %.500s", u, err, body)
	}
	if page.NextPageToken != "" {
		return nil, fmt.Errorf("GET %s: the history has more than one page; this helper reads one", u)
	}
	return page.History.Events, nil
}
