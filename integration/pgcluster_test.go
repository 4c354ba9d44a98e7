package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// clusterLab is a lab whose nodes ran NodeInit, ready for PgClusterCreate, and a PIGWF_HOME with
// keys and the approvals file of labPolicies (setupApprovals).
func clusterLab(t *testing.T, name, subnet string) (*lab.Status, string) {
	t.Helper()
	st := testLab(t, name, subnet, 3)
	home := labHome(t, st)
	endOpenRuns(t)
	setupApprovals(t, home, labPolicies)
	w := startWorker(t, home)
	if out, err := pigwf(t, home, "start", "node-init", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("node-init: %v\n%s", err, out)
	}
	w.kill()
	return st, home
}

// checkCluster asserts what PgClusterCreate promises: a primary with two streaming replicas
// managed by agents, the inventory's user and database usable with psql, and a full backup.
func checkCluster(t *testing.T, st *lab.Status, home string) {
	t.Helper()
	primary := st.Nodes[0].Addr
	out := nodeRun(t, st, 1, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c \"SELECT application_name||' '||state||' '||sync_state FROM pg_stat_replication ORDER BY 1\"")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "pg-test-2 streaming") || !strings.HasPrefix(lines[1], "pg-test-3 streaming") {
		t.Errorf("pg_stat_replication on the primary:\n%s", out)
	}
	for i := 2; i <= 3; i++ {
		if got := strings.TrimSpace(nodeRun(t, st, i, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c 'SELECT pg_is_in_recovery()'")); got != "t" {
			t.Errorf("node %d is not a replica: %q", i, got)
		}
	}
	// The inventory's user and database, from the control host over the lab network.
	cmd := exec.Command("psql", "-X", "-At", "-h", primary, "-U", "dbuser_meta", "-d", "meta", "-c", "CREATE TABLE IF NOT EXISTS pigwf_check(x int); INSERT INTO pigwf_check VALUES (1); SELECT current_user, current_database()")
	cmd.Env = append(os.Environ(), "PGPASSWORD=DBUser.Meta", "PGCONNECT_TIMEOUT=5")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "dbuser_meta|meta") {
		t.Errorf("psql as dbuser_meta to meta: %v\n%s", err, out)
	}
	info := nodeRun(t, st, 1, "runuser -u postgres -- pgbackrest --stanza=pg-test info")
	if !strings.Contains(info, "full backup") {
		t.Errorf("pgbackrest info lists no full backup:\n%s", info)
	}
	list, err := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", st.Inventory)
	if err != nil || !strings.Contains(list, "Leader") || strings.Count(list, "streaming") != 2 {
		t.Errorf("pigwf ha list: %v\n%s", err, list)
	}
}

func TestPgClusterCreateOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwpg1", "10.213.14")
	startWorker(t, home)

	start := time.Now()
	out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")
	t.Logf("first run (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("pg-cluster-create: %v", err)
	}
	checkCluster(t, st, home)
	checkPostgresTLS(t, st)
	checkBackupList(t, st, home)
	checkRestorePoint(t, st, home)
	checkAgentAPI(t, st)
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, starter.WorkflowID(workflows.PgClusterCreateRunbook, "pg-test"))
	}

	// Second run: every step unchanged, in a few seconds.
	start = time.Now()
	out, err = pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")
	took := time.Since(start)
	t.Logf("second run (%s):\n%s", took.Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("second pg-cluster-create: %v", err)
	}
	if strings.Contains(out, "[changed]") {
		t.Errorf("second run changed something")
	}
	if took > 30*time.Second {
		t.Errorf("second run took %s; an unchanged cluster should take seconds", took)
	}
}

// checkPostgresTLS: PostgreSQL serves TLS with a certificate from the lab's CA, which a client
// over the lab network verifies in full (and refuses under a name the certificate lacks), and
// replication runs over it: every standby's WAL sender on the primary is a TLS connection, and a
// standby's WAL receiver connected with sslmode=verify-full.
func checkPostgresTLS(t *testing.T, st *lab.Status) {
	t.Helper()
	if st.Plaintext {
		t.Log("plain-text lab: PostgreSQL runs without TLS")
		return
	}
	ca := pki.CA{Dir: st.CADir}.Files().CA
	outside := func(host string) (string, error) {
		conninfo := libpq.Conninfo(libpq.P("host", host), libpq.P("hostaddr", st.Nodes[0].Addr), libpq.P("port", "5432"),
			libpq.P("user", "dbuser_meta"), libpq.P("dbname", "meta"), libpq.P("sslmode", "verify-full"), libpq.P("sslrootcert", ca))
		cmd := exec.Command("psql", "-X", "-At", "-d", conninfo, "-c", "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		cmd.Env = append(os.Environ(), "PGPASSWORD=DBUser.Meta", "PGCONNECT_TIMEOUT=5")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := outside(st.Nodes[0].Addr); err != nil || !strings.HasPrefix(out, "t|TLSv1.") {
		t.Errorf("psql with sslmode=verify-full to %s: %v\n%s", st.Nodes[0].Addr, err, out)
	}
	if out, err := outside("not-this-node.example"); err == nil || !strings.Contains(out, "does not match host name") {
		t.Errorf("psql with sslmode=verify-full under a name the certificate lacks: %v, want refused\n%s", err, out)
	}
	standbys := len(st.Nodes) - 1
	out := strings.TrimSpace(nodeRun(t, st, 1, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c "+
		"\"SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl\""))
	if out != fmt.Sprint(standbys) {
		t.Errorf("WAL senders over TLS on the primary: %q, want %d", out, standbys)
	}
	out = nodeRun(t, st, 2, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c 'SELECT conninfo FROM pg_stat_wal_receiver'")
	if !strings.Contains(out, "sslmode=verify-full") || !strings.Contains(out, "sslrootcert="+pki.NodeCAPath) {
		t.Errorf("the standby's WAL receiver does not verify its upstream: %q", out)
	}
}

// checkBackupList: `pigwf backup list` shows the cluster's one full backup and a window on
// timeline 1 that starts at its stop, in --json and in the table.
func checkBackupList(t *testing.T, st *lab.Status, home string) {
	t.Helper()
	out, err := pigwf(t, home, "backup", "list", "--cluster", "pg-test", "--inventory", st.Inventory, "--json")
	if err != nil {
		t.Fatalf("pigwf backup list --json: %v\n%s", err, out)
	}
	var l starter.BackupList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("pigwf backup list --json: %v\n%s", err, out)
	}
	if len(l.Backups) != 1 || l.Backups[0].Type != "full" || l.Backups[0].Timeline != 1 {
		t.Fatalf("want one full backup on timeline 1:\n%s", out)
	}
	b := l.Backups[0]
	if len(l.Windows) != 1 || l.Windows[0].Timeline != 1 || l.Windows[0].From == nil ||
		!l.Windows[0].From.Equal(b.Stop) || l.Windows[0].FromLSN != b.LSNStop || l.Windows[0].FromBackup != b.Label {
		t.Errorf("want a window on timeline 1 from the stop of %s (%s, LSN %s):\n%s", b.Label, b.Stop, b.LSNStop, out)
	}
	table, err := pigwf(t, home, "backup", "list", "--cluster", "pg-test", "--inventory", st.Inventory)
	t.Logf("pigwf backup list:\n%s", table)
	if err != nil || !strings.Contains(table, b.Label) || !strings.Contains(table, "timeline 1: from") {
		t.Errorf("pigwf backup list: %v\n%s", err, table)
	}
}

// checkRestorePoint: `pigwf restore-point` makes a point on the leader and reports it archived,
// and pigwf backup list, asked afterwards, shows the archive reaching at least its LSN. A bad name
// is refused with the rule in the message.
func checkRestorePoint(t *testing.T, st *lab.Status, home string) {
	t.Helper()
	out, err := pigwf(t, home, "restore-point", "--cluster", "pg-test", "--inventory", st.Inventory, "--json", "before-change")
	t.Logf("pigwf restore-point --json before-change:\n%s", out)
	if err != nil {
		t.Fatalf("pigwf restore-point: %v", err)
	}
	var rp starter.RestorePoint
	if err := json.Unmarshal([]byte(out), &rp); err != nil {
		t.Fatalf("pigwf restore-point --json: %v", err)
	}
	lsn, err := pitr.ParseLSN(rp.LSN) // refuses 0/0
	if err != nil {
		t.Fatalf("restore point LSN: %v", err)
	}
	if rp.Name != "before-change" || rp.Leader != "pg-test-1" || !rp.Archived || rp.Time.IsZero() {
		t.Errorf("want before-change made on pg-test-1 and archived: %+v", rp)
	}
	out, err = pigwf(t, home, "backup", "list", "--cluster", "pg-test", "--inventory", st.Inventory, "--json")
	if err != nil {
		t.Fatalf("pigwf backup list --json: %v\n%s", err, out)
	}
	var l starter.BackupList
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Windows) != 1 {
		t.Fatalf("pigwf backup list --json: want one window: %v\n%s", err, out)
	}
	if end, err := pitr.ParseLSN(l.Windows[0].EndLSN); err != nil || end < lsn {
		t.Errorf("the archive ends at %s (%v), before the restore point at %s", l.Windows[0].EndLSN, err, lsn)
	}
	out, err = pigwf(t, home, "restore-point", "--cluster", "pg-test", "--inventory", st.Inventory, "x; drop")
	if err == nil || !strings.Contains(out, "restore point NAME") || !strings.Contains(out, "1 to 63 letters") {
		t.Errorf("a bad name: want a refusal naming the argument and the rule: %v\n%s", err, out)
	}
}

// A node that never ran NodeInit: refused before anything changes, with the fix in the message.
func TestPgClusterCreateRefusesUnmanagedNode(t *testing.T) {
	requireIntegration(t)
	st := testLab(t, "pwpg2", "10.213.15", 3)
	home := labHome(t, st)
	startWorker(t, home)
	out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")
	t.Logf("%s", out)
	if err == nil {
		t.Fatal("pg-cluster-create accepted nodes without node-init")
	}
	for i := 1; i <= 3; i++ {
		want := "node pg-test-" + string(rune('0'+i)) + " (" + st.Nodes[i-1].Addr + ") is not managed by pigwf: run `pigwf start node-init --cluster pg-test` first"
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if got := nodeRun(t, st, 1, "ls -A /pg 2>/dev/null | wc -l; test -e /etc/pigwf/ha-agent.yml && echo agent || true"); strings.TrimSpace(got) != "0" {
		t.Errorf("something changed on node 1: %q", got)
	}
}

// kill -9 of the worker after initdb, during a replica clone and during the backup: each time a
// new worker finishes the run with a correct cluster.
func TestPgClusterCreateSurvivesWorkerKill(t *testing.T) {
	requireIntegration(t)
	points := []struct {
		name       string
		activities []string // kill when one of these is running
	}{
		// Configure alone takes ~30 ms, less than a poll round: any step between initdb and the
		// first leader is "after initdb".
		{"after initdb", []string{"/" + activities.StepConfigure, "/" + activities.StepRegisterDCS, "pg-test-1/" + activities.StepAgent, "/" + activities.StepLeader}},
		{"during a clone", []string{"pg-test-2/" + activities.StepClone}},
		{"during the backup", []string{"pg-test-1/" + activities.StepFullBackup}},
	}
	for i, p := range points {
		t.Run(strings.ReplaceAll(p.name, " ", "-"), func(t *testing.T) {
			st, home := clusterLab(t, "pwpgk", "10.213.16")
			_ = i
			w1 := startWorker(t, home)
			c := dial(t)
			inv, err := inventory.LoadInventory(st.Inventory)
			if err != nil {
				t.Fatal(err)
			}
			cl, _ := inv.Cluster("pg-test")
			in, err := starter.PgClusterCreateInput(inv, cl, st.Inventory)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			run, err := c.Start(ctx, workflows.PgClusterCreateRunbook, workflows.PgClusterCreateName, "pg-test", in, starter.PgClusterCreateMeta(in, starter.NewRequest(st.Inventory)))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for killed := false; !killed; {
				if time.Now().After(deadline) {
					t.Fatalf("never saw %v running", p.activities)
				}
				d, err := c.C.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
				if err != nil {
					t.Fatal(err)
				}
				if d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					t.Fatalf("the run ended before the kill point")
				}
				for _, pa := range d.PendingActivities {
					if slices.ContainsFunc(p.activities, func(a string) bool { return strings.HasSuffix(pa.ActivityId, a) }) &&
						pa.State == enumspb.PENDING_ACTIVITY_STATE_STARTED && !killed {
						w1.kill()
						killed = true
						t.Logf("killed the worker with %s running", pa.ActivityId)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			startWorker(t, home)
			var res workflows.PgClusterCreateResult
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			if err := c.Wait(wctx, run.GetID(), run.GetRunID(), &res, nil); err != nil {
				agentLogTails(t, st)
				t.Fatalf("the run did not complete after the kill: %v", err)
			}
			checkCluster(t, st, home)
		})
	}
}

// agentLogTails logs the end of every member's HA agent log: when a run fails because the leader
// moved, they say why.
func agentLogTails(t *testing.T, st *lab.Status) {
	t.Helper()
	for i := range st.Nodes {
		t.Logf("pg-test-%d's agent log, last lines:\n%s", i+1,
			nodeRun(t, st, i+1, "tail -n 40 /pg/log/ha-agent/ha-agent.log 2>&1 || true"))
	}
}

// agentHistory logs every member's leadership events (promotions, demotions, lost leases,
// slow loops) from its whole HA agent log: when the leader moved unasked, they say why.
func agentHistory(t *testing.T, st *lab.Status) {
	t.Helper()
	for i := range st.Nodes {
		t.Logf("pg-test-%d's agent log, leadership events:\n%s", i+1,
			nodeRun(t, st, i+1, "grep -iE 'lease|leader|promot|demot|fence|slow|stall|lost|took' /pg/log/ha-agent/ha-agent.log 2>&1 | tail -n 60 || true"))
	}
}

// endOpenRuns terminates, when the test ends, the runs it left open (a run waiting for an
// approval the failed test never gave, say): every lab test's cluster is pg-test and the
// Temporal server is shared, so one would make every later test's start refuse a busy cluster.
func endOpenRuns(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		c := dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		runs, err := c.OpenRuns(ctx)
		if err != nil {
			t.Logf("could not list the runs left open: %v", err)
			return
		}
		for _, r := range runs {
			if err := c.C.TerminateWorkflow(ctx, r.WorkflowID, "", "the test that started it ended"); err != nil {
				t.Logf("could not end %s: %v", r.WorkflowID, err)
			} else {
				t.Logf("ended %s, left open by the test", r.WorkflowID)
			}
		}
	})
}
