package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/replaytests"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

var recapRE = regexp.MustCompile(`(?m)^  (\S+(?: \(\S+\))?)\s+changed=(\d+) unchanged=(\d+) failed=(\d+) skipped=(\d+)`)

// NodeInit on the lab through the CLI, a second run that changes nothing, and the one-runbook-
// at-a-time guard. With PIGWF_REFRESH_HISTORIES=1 the first run's history is saved for the
// replay tests.
func TestNodeInitOnLab(t *testing.T) {
	requireIntegration(t)
	st := testLab(t, "pwit1", "10.213.11", 3)
	home := labHome(t, st)
	startWorker(t, home)

	out, err := pigwf(t, home, "start", "node-init", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")
	t.Logf("first run:\n%s", out)
	if err != nil {
		t.Fatalf("node-init failed: %v", err)
	}
	recap := recapRE.FindAllStringSubmatch(out, -1)
	if len(recap) != 4 { // control + 3 nodes
		t.Fatalf("recap lines = %v", recap)
	}
	for _, r := range recap {
		if r[1] != "control" && (r[2] == "0" || r[4] != "0") {
			t.Errorf("first run on %s: changed=%s failed=%s, want changes and no failure", r[1], r[2], r[4])
		}
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, starter.WorkflowID(workflows.NodeInitRunbook, "pg-test"))
	}

	// The nodes are what NodeInit promised.
	caPEM, err := os.ReadFile(filepath.Join(home, "ca", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		want := "pg-test-" + string(rune('0'+i))
		if got := strings.TrimSpace(nodeRun(t, st, i, "hostname; cat /etc/hostname")); got != want+"\n"+want {
			t.Errorf("node %d hostname: %q", i, got)
		}
		if got := nodeRun(t, st, i, "cat "+pki.NodeCAPath); strings.TrimSpace(got) != strings.TrimSpace(string(caPEM)) {
			t.Errorf("node %d: %s is not the deployment CA", i, pki.NodeCAPath)
		}
		// the node certificate: of the deployment CA, for the node's name and address (as
		// openssl checks it), key root:postgres 0640
		if got := nodeRun(t, st, i, "openssl verify -CAfile "+pki.NodeCAPath+" -verify_ip "+st.Nodes[i-1].Addr+" -verify_hostname "+want+" -purpose sslserver "+pki.NodeCertPath+" && stat -c '%U:%G %a' "+pki.NodeKeyPath); got != pki.NodeCertPath+": OK\nroot:postgres 640\n" {
			t.Errorf("node %d certificate: %q", i, got)
		}
		if got := nodeRun(t, st, i, "stat -c '%U %a' /pg/data /var/run/postgresql"); got != "postgres 700\npostgres 2775\n" {
			t.Errorf("node %d dirs: %q", i, got)
		}
		if got := nodeRun(t, st, i, "grep -c pg-test- /etc/hosts"); strings.TrimSpace(got) != "3" {
			t.Errorf("node %d /etc/hosts: %q", i, got)
		}
	}
	// The CA private key never left the control side: the only private key on a node is its own.
	caKey, err := os.ReadFile(filepath.Join(home, "ca", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if got := nodeRun(t, st, i, "grep -rl 'PRIVATE KEY' /etc/pki /var/lib/pigwf 2>/dev/null || true"); strings.TrimSpace(got) != pki.NodeKeyPath {
			t.Errorf("node %d holds private keys: %s", i, got)
		}
		if got := nodeRun(t, st, i, "cat "+pki.NodeKeyPath); strings.TrimSpace(got) == strings.TrimSpace(string(caKey)) {
			t.Errorf("node %d holds the CA's key", i)
		}
	}
	journalBefore := nodeRun(t, st, 1, "cat "+activities.JournalPath)

	// Second run: every step unchanged, and nothing journaled.
	out, err = pigwf(t, home, "start", "node-init", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")
	t.Logf("second run:\n%s", out)
	if err != nil {
		t.Fatalf("second node-init failed: %v", err)
	}
	for _, r := range recapRE.FindAllStringSubmatch(out, -1) {
		if r[2] != "0" || r[4] != "0" {
			t.Errorf("second run on %s: changed=%s failed=%s, want every step unchanged", r[1], r[2], r[4])
		}
	}
	if strings.Contains(out, "[changed]") {
		t.Errorf("second run reported a change")
	}
	if after := nodeRun(t, st, 1, "cat "+activities.JournalPath); after != journalBefore {
		t.Errorf("journal grew on an unchanged run:\n%s", after)
	}

}

// The one-runbook-per-cluster guard, with no worker so the first run stays open.
func TestSecondStartIsRefused(t *testing.T) {
	requireIntegration(t)
	home := t.TempDir()
	inv := filepath.Join(home, "inv.yml")
	os.WriteFile(inv, []byte(`all:
  children:
    pg-busy:
      hosts:
        127.0.0.99: { pg_seq: 1, pg_role: primary }
      vars: { pg_cluster: pg-busy }
`), 0o644)
	out, err := pigwf(t, home, "start", "node-init", "--cluster", "pg-busy", "--inventory", inv)
	if err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		c := dial(t)
		c.C.TerminateWorkflow(context.Background(), "node-init/pg-busy", "", "test cleanup")
	})
	out, err = pigwf(t, home, "start", "node-init", "--cluster", "pg-busy", "--inventory", inv)
	if err == nil {
		t.Fatalf("second start was accepted:\n%s", out)
	}
	if !strings.Contains(out, "cluster pg-busy is busy: node-init/pg-busy is running") || !strings.Contains(out, "pigwf status node-init/pg-busy") {
		t.Errorf("message does not name the running run:\n%s", out)
	}
}

// Bad inventories: a clear error, exit status not 0, and no workflow started.
func TestBadInventoryStartsNothing(t *testing.T) {
	requireIntegration(t)
	home := t.TempDir()
	c := dial(t)
	cases := map[string]string{
		"no-primary":   "all:\n  children:\n    pg-bad:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: replica}\n      vars: {pg_cluster: pg-bad}\n",
		"two-primary":  "all:\n  children:\n    pg-bad:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: primary}\n        127.0.0.2: {pg_seq: 2, pg_role: primary}\n      vars: {pg_cluster: pg-bad}\n",
		"dup-seq":      "all:\n  children:\n    pg-bad:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: primary}\n        127.0.0.2: {pg_seq: 1, pg_role: replica}\n      vars: {pg_cluster: pg-bad}\n",
		"bad-name":     "all:\n  children:\n    pg-bad:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: primary}\n      vars: {pg_cluster: Pg_Bad}\n",
		"bad-role":     "all:\n  children:\n    pg-bad:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: master}\n      vars: {pg_cluster: pg-bad}\n",
		"syntax":       "all:\n  children:\n    pg-bad:\n      hosts: [\n",
		"unknown-clus": "all:\n  children:\n    pg-other:\n      hosts:\n        127.0.0.1: {pg_seq: 1, pg_role: primary}\n      vars: {pg_cluster: pg-other}\n",
	}
	for name, body := range cases {
		inv := filepath.Join(home, name+".yml")
		os.WriteFile(inv, []byte(body), 0o644)
		out, err := pigwf(t, home, "start", "node-init", "--cluster", "pg-bad", "--inventory", inv)
		if err == nil {
			t.Errorf("%s: exit status 0:\n%s", name, out)
			continue
		}
		if !strings.Contains(out, inv) && name != "unknown-clus" || strings.Count(strings.TrimSpace(out), "\n") > 3 {
			t.Errorf("%s: want one short error naming the file:\n%s", name, out)
		}
		if name == "unknown-clus" && !strings.Contains(out, `cluster "pg-bad" is not in the inventory; clusters there: pg-other`) {
			t.Errorf("unknown cluster message:\n%s", out)
		}
	}
	runs, err := c.Recent(context.Background(), "pg-bad", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Errorf("bad inventories started runs: %+v", runs)
	}
}

// A node whose host key does not match known_hosts fails at once, naming host and file; the
// other nodes complete.
func TestNodeInitHostKeyMismatch(t *testing.T) {
	requireIntegration(t)
	st := testLab(t, "pwit3", "10.213.13", 3)
	home := labHome(t, st)
	startWorker(t, home)

	// known_hosts with node 2's key replaced by a stranger's.
	kh, _ := os.ReadFile(st.KnownHosts)
	stranger := "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		if strings.HasPrefix(l, st.Nodes[1].Addr+" ") {
			l = st.Nodes[1].Addr + " ssh-ed25519 " + stranger
		}
		lines = append(lines, l)
	}
	badKH := filepath.Join(home, "known_hosts")
	os.WriteFile(badKH, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	invData, _ := os.ReadFile(st.Inventory)
	inv := filepath.Join(home, "inventory.yml")
	os.WriteFile(inv, []byte(strings.ReplaceAll(string(invData), st.KnownHosts, badKH)), 0o644)

	start := time.Now()
	out, err := pigwf(t, home, "start", "node-init", "--cluster", "pg-test", "--inventory", inv, "--wait")
	took := time.Since(start)
	t.Logf("run (%s):\n%s", took, out)
	if err == nil {
		t.Fatal("node-init succeeded with a wrong host key")
	}
	for _, want := range []string{"node-init failed on 1 of 3 nodes", "host key of " + st.Nodes[1].Addr + " does not match " + badKH} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if took > 60*time.Second {
		t.Errorf("took %s: a host key mismatch must not be retried", took)
	}
	// Node 2 got nothing (not even the marker); nodes 1 and 3 finished.
	if got := nodeRun(t, st, 2, "test -e /etc/pki/ca.crt && echo present || echo absent"); strings.TrimSpace(got) != "absent" {
		t.Errorf("node 2 has the CA marker")
	}
	for _, i := range []int{1, 3} {
		if got := nodeRun(t, st, i, "test -e /etc/pki/ca.crt && echo present || echo absent"); strings.TrimSpace(got) != "present" {
			t.Errorf("node %d did not finish", i)
		}
	}
	// History confirms a single attempt at node 2's connect: the failure was not retried.
	c := dial(t)
	hist, err := historyOf(c, "node-init/pg-test")
	if err != nil {
		t.Fatal(err)
	}
	activityOf := map[int64]string{}
	attempts := map[string]int32{}
	for _, ev := range hist.Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			activityOf[ev.EventId] = a.ActivityId
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempts[activityOf[a.ScheduledEventId]] = a.Attempt
		}
	}
	connect2 := st.Nodes[1].Addr + "/" + activities.StepConnect
	if n, ok := attempts[connect2]; !ok || n != 1 {
		t.Errorf("%s attempts = %d (recorded %v), want exactly 1", connect2, n, ok)
	}
}

// saveHistory adds a run's history to the replay tests' histories, next to (never over) the
// ones saved before: see replaytests.Save.
func saveHistory(t *testing.T, id string) {
	t.Helper()
	c := dial(t)
	hist, err := historyOf(c, id)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := replaytests.Save(filepath.Join("..", "replaytests", "testdata"), hist)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved history of %s to %s", id, dst)
}
