package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/haproxy"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// psqlPort runs SQL through host:port (an HAProxy service) as the inventory's user, with libpq.
func psqlPort(host string, port int, sql string) (string, error) {
	return psqlAs(host, port, "dbuser_meta", "DBUser.Meta", "meta", sql)
}

// psqlAs runs SQL on host:port as user (its password in the environment, never on the command
// line) in database db, with libpq from the lab host.
func psqlAs(host string, port int, user, password, db, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-At", "-h", host, "-p", strconv.Itoa(port), "-U", user, "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=2")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// routedTo makes n connections through host:port and returns, per connection, the address of
// the server and whether it is a standby ("10.213.25.12 t"); a failed connection is "error: ...".
func routedTo(host string, port, n int) []string {
	var out []string
	for range n {
		got, err := psqlPort(host, port, "SELECT host(inet_server_addr()) || CASE WHEN pg_is_in_recovery() THEN ' t' ELSE ' f' END")
		if err != nil {
			got = "error: " + firstLine(got)
		}
		out = append(out, got)
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// allRouted: every answer is want's server and recovery state ("<leader addr> f" for a primary
// service, or "t" alone: any standby).
func allRouted(answers []string, want string) bool {
	for _, a := range answers {
		if a != want && !(len(want) == 1 && strings.HasSuffix(a, " "+want)) {
			return false
		}
	}
	return len(answers) > 0
}

// waitRouted waits up to within for n connections in a row through host:port to all answer want.
func waitRouted(t *testing.T, what, host string, port int, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := routedTo(host, port, 12)
		if allRouted(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: connections through %s:%d reached %v; want every one at %q", what, host, port, got, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// startHAProxy runs a real HAProxy in the control host's namespace with text as its
// configuration, stopped at the end of the test.
func startHAProxy(t *testing.T, text string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, text)
	}
	cmd := exec.Command("haproxy", "-W", "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// The access layer on the lab (issue: access layer and observability). pg-service puts HAProxy
// with Pigsty's services on every member; a real HAProxy with Patroni's sample configuration
// (a bare `option httpchk`: OPTIONS /) checks the same agents. Through both, every primary-port
// connection reaches the writable primary and every replica-port connection a standby, before
// and after a failover; a configuration change reloads HAProxy without cutting an open session;
// a rerun changes nothing.
func TestAccessLayerOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwsvc", "10.213.25")
	t.Cleanup(func() {
		if t.Failed() {
			agentHistory(t, st)
		}
	})
	workerMetrics := freeAddr(t)
	startWorker(t, home, "--metrics-listen", workerMetrics)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	out, err := pigwf(t, home, "start", "pg-service", "--cluster", "pg-test", "--inventory", st.Inventory, "--dry-run")
	if err != nil || !strings.Contains(out, "listen pg-test-primary") || !strings.Contains(out, "http-check send meth OPTIONS uri /primary") {
		t.Fatalf("pg-service --dry-run: %v\n%s", err, out)
	}
	if got := nodeRun(t, st, 2, "ls /etc/haproxy/haproxy.cfg 2>/dev/null; pgrep -x haproxy || true"); strings.TrimSpace(got) != "" {
		t.Fatalf("the dry run changed node 2: %q", got)
	}
	if out, err := pigwf(t, home, "start", "pg-service", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-service: %v\n%s", err, out)
	} else {
		t.Logf("pg-service:\n%s", out)
	}

	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, "pg-service/pg-test")
	}
	leader := leaderOf(t, home, st)
	leaderAddr := addrOfMember(t, st, leader)
	via := st.Nodes[1].Addr // clients use the HAProxy of a member (node 2)
	waitRouted(t, "Pigsty's primary service", via, 5433, leaderAddr+" f", 5*time.Second)
	waitRouted(t, "Pigsty's default service", via, 5436, leaderAddr+" f", 5*time.Second)
	waitRouted(t, "Pigsty's replica service", via, 5434, "t", 5*time.Second)
	waitRouted(t, "Pigsty's offline service (replicas as its backup)", via, 5438, "t", 5*time.Second)

	// Patroni's sample haproxy.cfg shape against pigwf's agents: OPTIONS / must be the primary
	// check, or two thirds of these connections land on standbys.
	sample := haproxy.Cluster{Name: "batman", Services: []haproxy.Service{{Name: "primary", Port: 15000}}, Timing: haproxy.PatroniSampleTiming(),
		CAFile: filepath.Join(home, "ca", "ca.crt")}
	inv, err := inventory.LoadInventory(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range inv.Clusters["pg-test"].Hosts {
		sample.Members = append(sample.Members, haproxy.Member{Name: "postgresql_" + strings.ReplaceAll(h.Addr, ".", "_") + "_5432", Addr: h.Addr, PGPort: 5432, APIPort: starter.AgentAPIPort, VerifyHost: h.Node.Nodename})
	}
	sampleCfg, _, err := haproxy.ClusterConfig(sample, "Patroni's sample haproxy.cfg (bare option httpchk), HTTPS checks against the deployment CA")
	if err != nil {
		t.Fatal(err)
	}
	sampleText, err := haproxy.Render(sampleCfg)
	if err != nil {
		t.Fatal(err)
	}
	sampleText = strings.Replace(sampleText, "bind *:15000", "bind 127.0.0.1:15000", 1)
	startHAProxy(t, sampleText)
	waitRouted(t, "Patroni's sample config", "127.0.0.1", 15000, leaderAddr+" f", 15*time.Second)

	// A real Prometheus scraping the agents (HTTPS, the deployment CA), the worker and HAProxy.
	prom := startPrometheus(t, st, home, workerMetrics)
	if now := leaderOf(t, home, st); now != leader {
		// Nothing so far moves the leader: a change here is a spurious failover, and the
		// agents' logs say why.
		agentHistory(t, st)
		t.Fatalf("the leader moved from %s to %s with no fault injected", leader, now)
	}
	checkMonitoring(t, prom, leader)

	// A rerun changes nothing.
	if out, err := pigwf(t, home, "start", "pg-service", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-service rerun: %v\n%s", err, out)
	} else if strings.Contains(out, "[changed]") || !strings.Contains(out, "[unchanged] pg-test-3") {
		t.Errorf("a rerun changed something:\n%s", out)
	}

	// A new service: HAProxy reloads, the open session through the primary port keeps working.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "host="+via+" port=5433 user=dbuser_meta password=DBUser.Meta dbname=meta sslmode=require connect_timeout=3")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS svc_probe(id int)"); err != nil {
		t.Fatal(err)
	}
	invText, err := os.ReadFile(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	const clusterLine = "        pg_cluster: pg-test\n"
	withStandby := filepath.Join(home, "inventory-services.yml")
	if err := os.WriteFile(withStandby, []byte(strings.Replace(string(invText), clusterLine,
		clusterLine+"        pg_services: [ { name: standby, port: 5435, dest: postgres, check: /replica, selector: [replica] } ]\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := pigwf(t, home, "start", "pg-service", "--cluster", "pg-test", "--inventory", withStandby, "--wait"); err != nil || !strings.Contains(out, "reloaded haproxy") {
		t.Fatalf("pg-service with a new service: %v (want 'reloaded haproxy')\n%s", err, out)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO svc_probe VALUES (1)"); err != nil {
		t.Errorf("the session opened before the reload was cut: %v", err)
	}
	waitRouted(t, "the new standby service", via, 5435, "t", 5*time.Second)

	// A failover: kill -9 of the leader's postmaster. The services follow the new leader.
	leaderIdx := nodeIndex(t, st, leaderAddr)
	pid := strings.TrimSpace(nodeRun(t, st, leaderIdx, "head -n1 /pg/data/postmaster.pid"))
	start := time.Now()
	nodeRun(t, st, leaderIdx, "kill -9 "+pid)
	var newLeader string
	for {
		if l := leaderOf(t, home, st); l != "" && l != leader {
			newLeader = l
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("no new leader within 30 s of the crash")
		}
		time.Sleep(100 * time.Millisecond)
	}
	newAddr := addrOfMember(t, st, newLeader)
	t.Logf("failover: %s -> %s", leader, newLeader)
	via = addrOfOther(st, leaderAddr, newAddr)
	waitRouted(t, "Pigsty's primary service after the failover", via, 5433, newAddr+" f", 10*time.Second)
	waitRouted(t, "Patroni's sample config after the failover", "127.0.0.1", 15000, newAddr+" f", 30*time.Second)
	// The old primary rejoins as a standby; until then the replica service has the third member.
	waitRouted(t, "Pigsty's replica service after the failover", via, 5434, "t", 60*time.Second)

	// Prometheus saw it: the new leader, its failover time, the old one's timeline behind.
	prom.waitSeries(t, "patroni_primary == 1", 30*time.Second, func(s []promSample) bool { return len(s) == 1 && s[0].Metric["name"] == newLeader })
	rto := prom.waitSeries(t, fmt.Sprintf(`pigwf_ha_last_failover_seconds{member=%q}`, newLeader), 30*time.Second, func(s []promSample) bool { return len(s) == 1 && s[0].value() > 0 })
	t.Logf("the new leader's agent reports its failover took %.3f s", rto[0].value())

	// An approval-gated switchover through the CLI: the approval metrics, and the primary
	// service follows the switch.
	ch := startSwitchover(t, home, st)
	prom.waitSeries(t, `pigwf_approvals_waiting{cluster="pg-test"} > 0`, 60*time.Second, func(s []promSample) bool { return len(s) > 0 })
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "alice"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out := wait(t, ch); !strings.Contains(out, "exit: <nil>") {
		t.Fatalf("switchover:\n%s", out)
	}
	switched := leaderOf(t, home, st)
	waitRouted(t, "Pigsty's primary service after the switchover", via, 5433, addrOfMember(t, st, switched)+" f", 10*time.Second)
	prom.waitSeries(t, `pigwf_approval_wait_seconds_count{cluster="pg-test",decision="approve"}`, 30*time.Second, func(s []promSample) bool { return len(s) > 0 })
	prom.checkScraped(t, map[string]string{
		"temporal_activity_execution_failed_total": "counted once an activity attempt failed",
		"temporal_workflow_failed_total":           "counted once a run failed",
	})
}

// addrOfMember is the address the inventory gives member (a nodename).
func addrOfMember(t *testing.T, st *lab.Status, member string) string {
	t.Helper()
	inv, err := inventory.LoadInventory(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range inv.Clusters["pg-test"].Hosts {
		if h.Node.Nodename == member {
			return h.Addr
		}
	}
	t.Fatalf("no host of the lab inventory is member %q", member)
	return ""
}

func nodeIndex(t *testing.T, st *lab.Status, addr string) int {
	t.Helper()
	for i, n := range st.Nodes {
		if n.Addr == addr {
			return i + 1
		}
	}
	t.Fatalf("no lab node has address %s", addr)
	return 0
}

// addrOfOther is a node that is neither a nor b (a client's HAProxy that survived).
func addrOfOther(st *lab.Status, a, b string) string {
	for _, n := range st.Nodes {
		if n.Addr != a && n.Addr != b {
			return n.Addr
		}
	}
	return st.Nodes[0].Addr
}
