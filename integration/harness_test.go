// Package integration runs pigwf end to end on real parts: a real Temporal server (our
// pigwf-temporal build), lab nodes with real sshd, the pigwf binary as worker and CLI.
// It needs root and the lab's packages; `make test` provides both and sets
// PIGWF_REQUIRE_INTEGRATION=1 so that a missing prerequisite fails instead of skipping.
//
// The harness itself lives in internal/testenv (the chaos suite shares it); the helpers below
// only bind it to this package's server.
package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
)

// env is the private Temporal server of this test binary; nil when prerequisites are missing.
var env *testenv.Env

func TestMain(m *testing.M) {
	code := func() int {
		if reason := testenv.MissingPrereq(); reason != "" {
			if testenv.RequireIntegration() {
				fmt.Fprintln(os.Stderr, "integration prerequisites missing: "+reason)
				return 1
			}
			fmt.Println("skipping integration tests: " + reason)
			return m.Run() // every test skips itself
		}
		e, err := testenv.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer e.Stop()
		env = e
		return m.Run()
	}()
	os.Exit(code)
}

func requireIntegration(t *testing.T) {
	if env == nil {
		t.Skip("integration prerequisites missing")
	}
}

// testLab brings up a lab of its own for one test and removes it afterwards.
func testLab(t *testing.T, name, subnet string, nodes int) *lab.Status {
	t.Helper()
	return testenv.Lab(t, name, subnet, nodes)
}

// labHome is a PIGWF_HOME for a test on lab st: its CA directory is the lab's, so the worker's
// certificates (and the nodes' from NodeInit) are of the CA the lab's etcd trusts, as with
// `pigwf lab up`, which uses $PIGWF_HOME/ca.
func labHome(t *testing.T, st *lab.Status) string {
	t.Helper()
	return testenv.LabHome(t, st)
}

// workerProc is a `pigwf worker` subprocess, so it can be killed with SIGKILL like a real crash.
type workerProc struct{ *testenv.Worker }

func (w *workerProc) kill() { w.Kill() }

func startWorker(t *testing.T, home string, extra ...string) *workerProc {
	t.Helper()
	return &workerProc{env.StartWorker(t, home, extra...)}
}

// pigwf runs the CLI and returns its combined output and exit error.
func pigwf(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	return env.Pigwf(t, home, args...)
}

func dial(t *testing.T) *starter.Client {
	t.Helper()
	return env.Dial(t)
}

// nodeRun runs a shell command on lab node i (1-based) inside its namespaces.
func nodeRun(t *testing.T, st *lab.Status, i int, script string) string {
	t.Helper()
	return testenv.NodeRun(t, st, i, script)
}

// historyOf reads a run's whole history.
func historyOf(c *starter.Client, id string) (*historypb.History, error) {
	return testenv.HistoryOf(c, id)
}

// completedActivities counts the activities a run's history records as completed.
func completedActivities(hist *historypb.History) int {
	n := 0
	for _, ev := range hist.Events {
		if ev.GetActivityTaskCompletedEventAttributes() != nil {
			n++
		}
	}
	return n
}

// labPolicies is the approvals policy of the lab tests' workers: alice or bob approves anything on
// pg-test, under four eyes. The tests start runs as carol, who has a key but approves nothing.
const labPolicies = `  - { cluster: pg-test, runbook: "*", approvers: [alice, bob], four_eyes: true, quorum: 1 }` + "\n"

// setupApprovals makes, through the CLI, keys for alice, bob, carol, mallory (whom the worker does
// not know) and the ChatOps bridge (chatops) in home/keys, and the worker's approvals file
// home/approvals.yml with policies (YAML list items): people's keys, the bridge as a signer for
// alice and bob. The worker reads the file at every use, so a test may rewrite it between runs.
func setupApprovals(t *testing.T, home, policies string) {
	t.Helper()
	pub := map[string]string{}
	for _, n := range []string{"alice", "bob", "carol", "mallory", "chatops"} {
		if out, err := pigwf(t, home, "keys", "new", n); err != nil {
			t.Fatalf("keys new %s: %v\n%s", n, err, out)
		}
		b, err := os.ReadFile(filepath.Join(home, "keys", n+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		pub[n] = strings.TrimSpace(string(b))
	}
	text := fmt.Sprintf("keys:\n  alice: [%q]\n  bob: [%q]\n  carol: [%q]\nsigners:\n  chatops: { key: %q, vouch_for: [alice, bob] }\npolicies:\n%s",
		pub["alice"], pub["bob"], pub["carol"], pub["chatops"], policies)
	if err := os.WriteFile(filepath.Join(home, "approvals.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := pigwf(t, home, "approvals", "check", "--cluster", "pg-test"); err != nil {
		t.Fatalf("approvals check: %v\n%s", err, out)
	}
}
