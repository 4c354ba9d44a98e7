package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// psqlAt runs SQL as the inventory's user from the control host.
func psqlAt(host, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-At", "-h", host, "-U", "dbuser_meta", "-d", "meta", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD=DBUser.Meta", "PGCONNECT_TIMEOUT=2")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// A synchronous-mode cluster: `pigwf ha list` shows "Sync Standby" exactly where the primary's
// pg_stat_replication says sync (seed 002), and one failover on the lab: kill -9 of the
// primary's postmaster, a synchronous standby takes over with every acknowledged row, and the
// old primary comes back as a streaming replica by itself.
func TestHAListAndFailoverOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwha", "10.213.18")
	// The lab inventory, in synchronous mode.
	inv, err := os.ReadFile(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	const clusterLine = "        pg_cluster: pg-test\n"
	if !strings.Contains(string(inv), clusterLine) {
		t.Fatalf("the lab inventory has no %q line to add pg_synchronous_mode after:\n%s", clusterLine, inv)
	}
	syncInv := home + "/inventory-sync.yml"
	if err := os.WriteFile(syncInv, []byte(strings.Replace(string(inv), clusterLine, clusterLine+"        pg_synchronous_mode: true\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", syncInv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}

	// Wait for the agents to name a synchronous standby, then compare the table with PostgreSQL.
	var stateRows map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := nodeRun(t, st, 1, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c \"SELECT application_name||'='||sync_state FROM pg_stat_replication\"")
		stateRows = map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				stateRows[k] = v
			}
		}
		if len(stateRows) == 2 && (stateRows["pg-test-2"] == "sync") != (stateRows["pg-test-3"] == "sync") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want one sync and one async standby, pg_stat_replication says %v", stateRows)
		}
		time.Sleep(300 * time.Millisecond)
	}
	list, err := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", syncInv)
	t.Logf("pg_stat_replication: %v\n%s", stateRows, list)
	if err != nil {
		t.Fatal(err)
	}
	for member, sync := range stateRows {
		var row string
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, "| "+member+" ") {
				row = l
			}
		}
		wantSync := sync == "sync"
		if got := strings.Contains(row, "Sync Standby"); got != wantSync {
			t.Errorf("%s: pg_stat_replication says %s, ha list row %q", member, sync, row)
		}
	}
	if strings.Count(list, "Sync Standby") != 1 || !strings.Contains(list, "| Leader ") {
		t.Errorf("ha list:\n%s", list)
	}

	// One failover: rows acknowledged before the crash survive on the new primary.
	if _, err := psqlAt(st.Nodes[0].Addr, "CREATE TABLE ack(id int primary key); INSERT INTO ack SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(nodeRun(t, st, 1, "head -n1 /pg/data/postmaster.pid"))
	start := time.Now()
	nodeRun(t, st, 1, "kill -9 "+pid)
	var newPrimary string
	for newPrimary == "" {
		for _, n := range st.Nodes {
			if _, err := psqlAt(n.Addr, "INSERT INTO ack VALUES (101)"); err == nil {
				newPrimary = n.Addr
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("no primary took writes within 30 s of the crash")
		}
	}
	t.Logf("first write accepted on %s %s after kill -9 of the primary's postmaster", newPrimary, time.Since(start).Round(time.Millisecond))
	if out, err := psqlAt(newPrimary, "SELECT count(*) FROM ack"); err != nil || out != "101" {
		t.Errorf("rows on the new primary: %q %v (want the 100 acknowledged plus 1)", out, err)
	}
	// The old primary rejoins as a streaming replica by itself.
	deadline = time.Now().Add(60 * time.Second)
	for {
		list, _ = pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", syncInv)
		old := ""
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, "| pg-test-1 ") {
				old = l
			}
		}
		if strings.Contains(old, "streaming") && !strings.Contains(old, "Leader") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old primary did not come back as a streaming replica:\n%s", list)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after the failover:\n%s", list)
}
