package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// haMembers is `pigwf ha list --json`: the leader and the members the DCS holds.
func haMembers(t *testing.T, home string, st *lab.Status) haState {
	t.Helper()
	out, err := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", st.Inventory, "--json")
	if err != nil {
		t.Fatalf("ha list: %v\n%s", err, out)
	}
	var h haState
	if err := jsonUnmarshal(out, &h); err != nil {
		t.Fatalf("ha list --json: %v\n%s", err, out)
	}
	return h
}

// memberNames are the members of h.
func (h haState) memberNames() []string {
	var out []string
	for _, m := range h.Members {
		out = append(out, m.Name)
	}
	return out
}

// streamingReplica waits until member streams from the leader, as the leader's
// pg_stat_replication says.
func streamingReplica(t *testing.T, st *lab.Status, leader, member string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		last = onLeader(t, st, leader, "SELECT state FROM pg_stat_replication WHERE application_name = '"+member+"'")
		if last == "streaming" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s does not stream from %s after %s (pg_stat_replication: %q)", member, leader, within, last)
}

// startRun starts `pigwf start RUNBOOK --cluster pg-test --inventory inv --wait --as carol [args]`
// in the background; its output and exit arrive on the channel.
func startRun(t *testing.T, home, inv, runbook string, args ...string) <-chan string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		out, err := pigwf(t, home, append([]string{"start", runbook, "--cluster", "pg-test", "--inventory", inv, "--wait", "--as", "carol"}, args...)...)
		ch <- fmt.Sprintf("%s\nexit: %v", out, err)
	}()
	return ch
}

// endOf waits for a run started by startRun to end.
func endOf(t *testing.T, what string, ch <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case out := <-ch:
		t.Logf("%s:\n%s", what, out)
		return out
	case <-time.After(within):
		t.Fatalf("%s did not end within %s", what, within)
		return ""
	}
}

// waitGate waits until run id waits for an approval whose plan says planHas (a run with two
// gates shows its second only once the first is passed).
func waitGate(t *testing.T, c *starter.Client, id, planHas string, ch <-chan string) workflows.ApprovalState {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := c.C.QueryWorkflow(ctx, id, "", workflows.ApprovalQuery)
		cancel()
		var s workflows.ApprovalState
		if err == nil && v.Get(&s) == nil && s.Waiting && strings.Contains(s.Plan, planHas) {
			return s
		}
		select {
		case out := <-ch:
			t.Fatalf("%s ended before it waited for the approval of %q:\n%s", id, planHas, out)
		case <-time.After(300 * time.Millisecond):
		}
	}
	t.Fatalf("%s never waited for the approval of %q", id, planHas)
	return workflows.ApprovalState{}
}

// approveRun approves run id as by.
func approveRun(t *testing.T, home, id, by string, extra ...string) {
	t.Helper()
	if out, err := pigwf(t, home, append([]string{"approve", id, "--by", by}, extra...)...); err != nil {
		t.Fatalf("approve %s as %s: %v\n%s", id, by, err, out)
	}
}

// agentRuns: lab node i runs a pg-ha-agent.
func agentRuns(t *testing.T, st *lab.Status, i int) bool {
	t.Helper()
	return strings.TrimSpace(nodeRun(t, st, i, "pgrep -f '^/usr/local/bin/pg-ha-agent (supervise|run)' >/dev/null && echo yes || echo no")) == "yes"
}

// clusterKeyCount is how many keys the cluster has in the lab's etcd, read as the CLI reads them.
func clusterKeyCount(t *testing.T, st *lab.Status, home string) int64 {
	t.Helper()
	inv, err := inventory.LoadInventory(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	cl := inv.Clusters["pg-test"]
	files, err := starter.ClientTLS(inv, pki.HomeDir(home))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dcs.Connect(dcs.ClientOptions{Endpoints: inv.Etcd, TLS: files, Plaintext: inv.Plaintext, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s, err := dcs.New(cli, cl.PG.Namespace, cl.Name, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, s.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// pg-reinit and pg-member-remove on the lab (issue #14): a replica whose data directory was
// deleted is re-created by pg-reinit and streams; pg-reinit and pg-member-remove of the leader are
// refused with nothing changed; a dry run changes nothing; a replica is removed after an approval
// (its agent stopped for good, its data kept aside, its slot gone on the leader, gone from `ha
// list`), and a failover after the removal still works with the two members left.
func TestReinitAndRemoveOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwmemb", "10.213.52")
	startWorker(t, home)
	inv := st.Inventory
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", inv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	c := dial(t)
	leader := leaderOf(t, home, st)
	var replica string
	for _, m := range haMembers(t, home, st).memberNames() {
		if m != leader {
			replica = m // the last replica by name
		}
	}
	ri := nodeIndex(t, st, addrOfMember(t, st, replica))
	t.Logf("leader %s; the replica reinitialized and removed: %s (node %d)", leader, replica, ri)

	// 1. Refusals, before anything changes.
	objStart(t, home, inv, "pg-reinit", false, []string{"is the leader of pg-test: pg-reinit re-creates replicas only; switch over first", "nothing was changed"}, "--member", leader)
	objStart(t, home, inv, "pg-member-remove", false, []string{"pigwf never removes the leader; switch over first", "nothing was changed"}, "--member", leader)
	objStart(t, home, inv, "pg-reinit", true, []string{"dry run: prechecks passed; nothing was changed"}, "--member", replica, "--dry-run")
	if got := haMembers(t, home, st).memberNames(); len(got) != 3 {
		t.Fatalf("after the refusals and the dry run, ha list shows %v", got)
	}

	// 2. The replica's data directory deleted, then re-created by pg-reinit from the leader.
	sysid := strings.TrimSpace(onLeader(t, st, leader, "SELECT system_identifier FROM pg_control_system()"))
	// PostgreSQL runs on meanwhile and writes files back (WAL from its receiver, stats), so rm
	// may find the directory not empty: it is deleted all the same (PG_VERSION and the catalog
	// are gone).
	nodeRun(t, st, ri, "for i in 1 2 3 4 5; do rm -rf /pg/data 2>/dev/null && break; sleep 0.2; done; test ! -e /pg/data/PG_VERSION")
	start := time.Now()
	reinitOut := objStart(t, home, inv, "pg-reinit", true, []string{"reinitialized"}, "--member", replica)
	streamingReplica(t, st, leader, replica, time.Minute)
	t.Logf("PG-REINIT: %s re-created and streaming %s after the start", replica, time.Since(start).Round(100*time.Millisecond))
	if got := strings.TrimSpace(nodeRun(t, st, ri, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c 'SELECT system_identifier FROM pg_control_system()'")); got != sysid {
		t.Errorf("the re-created %s is system %q, the leader's is %q", replica, got, sysid)
	}
	// What was left of the deleted directory (files PostgreSQL wrote back) is moved aside, or,
	// when nothing was left, an empty one made: never deleted.
	// The run says which, and the node agrees.
	aside := strings.TrimSpace(nodeRun(t, st, ri, "ls -d /pg/data.reinit-* 2>/dev/null || true"))
	switch {
	case aside != "" && strings.Contains(reinitOut, "aside to "+aside):
		t.Logf("pg-reinit moved what was left aside on %s: %s", replica, aside)
	case aside == "" && strings.Contains(reinitOut, "left an empty /pg/data"):
		t.Logf("pg-reinit found no data directory on %s to move aside", replica)
	default:
		t.Errorf("pg-reinit on %s: on the node %q moved aside; the run said:\n%s", replica, aside, reinitOut)
	}

	// 3. pg-member-remove of the replica, approved by alice: the agent stops for good, the data
	// stays aside, the slot goes on the leader, the member goes from `ha list`.
	slot := pgctl.SlotName(replica)
	if got := onLeader(t, st, leader, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"+slot+"'"); got != "1" {
		t.Fatalf("the leader has %s slots named %s before the removal", got, slot)
	}
	ch := startRun(t, home, inv, "pg-member-remove", "--member", replica, "--reason", "members test")
	waitGate(t, c, "pg-member-remove/pg-test", "remove "+replica, ch)
	if !agentRuns(t, st, ri) {
		t.Fatalf("%s's agent stopped before the approval", replica)
	}
	approveRun(t, home, "pg-member-remove/pg-test", "alice", "--comment", "members test")
	if out := endOf(t, "pg-member-remove", ch, 5*time.Minute); !strings.Contains(out, "exit: <nil>") || !strings.Contains(out, replica+": removed") {
		t.Fatalf("pg-member-remove did not remove %s", replica)
	}
	if got := haMembers(t, home, st).memberNames(); slices.Contains(got, replica) || len(got) != 2 {
		t.Errorf("ha list after the removal: %v", got)
	}
	if got := onLeader(t, st, leader, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"+slot+"'"); got != "0" {
		t.Errorf("slot %s is still on the leader %s", slot, leader)
	}
	if agentRuns(t, st, ri) {
		t.Errorf("%s's agent still runs", replica)
	}
	if got := nodeRun(t, st, ri, "ls /pg/data.removed-*/PG_VERSION 2>/dev/null; test -e /pg/data && echo still-there; test -e /etc/pigwf/boot.d/50-pg-ha-agent && echo boots; true"); !strings.Contains(got, "/PG_VERSION") || strings.Contains(got, "still-there") || strings.Contains(got, "boots") {
		t.Errorf("on %s after the removal: %q (want the data aside, no /pg/data, no boot script)", replica, got)
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		for _, id := range []string{"pg-reinit/pg-test", "pg-member-remove/pg-test"} {
			saveHistory(t, id)
		}
	}

	// 4. A failover after the removal: kill -9 of the leader's postmaster; the other member
	// takes over, and the removed one stays out.
	li := nodeIndex(t, st, addrOfMember(t, st, leader))
	nodeRun(t, st, li, "kill -9 $(head -n1 /pg/data/postmaster.pid)")
	start = time.Now()
	var newLeader string
	for newLeader == "" || newLeader == leader {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no new leader within 30 s of the crash (ha list: %+v)", haMembers(t, home, st))
		}
		time.Sleep(200 * time.Millisecond)
		newLeader = haMembers(t, home, st).Leader
	}
	t.Logf("failover after the removal: %s -> %s in %s", leader, newLeader, time.Since(start).Round(100*time.Millisecond))
	if newLeader == replica {
		t.Fatalf("the removed %s took over", replica)
	}
	if out, err := psqlAt(addrOfMember(t, st, newLeader), "CREATE TABLE IF NOT EXISTS members_probe(id int); INSERT INTO members_probe VALUES (1)"); err != nil {
		t.Errorf("the new leader %s takes no writes: %v\n%s", newLeader, err, out)
	}
	streamingReplica(t, st, newLeader, leader, 2*time.Minute) // the old leader rejoins as its replica
	if got := haMembers(t, home, st).memberNames(); slices.Contains(got, replica) {
		t.Errorf("the removed %s is back in ha list: %v", replica, got)
	}
}

// pg-cluster-remove on the lab (issue #14): a dry run and a rejected run change nothing; the
// approved run stops every agent, deletes the cluster's DCS keys and moves every data directory
// aside; with --purge, only the second approval deletes them.
func TestClusterRemoveOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwcrm", "10.213.53")
	startWorker(t, home)
	inv := st.Inventory
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", inv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	c := dial(t)
	id := "pg-cluster-remove/pg-test"
	keys := clusterKeyCount(t, st, home)
	if keys == 0 {
		t.Fatal("the cluster has no DCS keys after pg-cluster-create")
	}

	// 1. A dry run, then a rejected run: nothing changed.
	objStart(t, home, inv, "pg-cluster-remove", true, []string{"dry run: nothing was changed", "stop pg-test-"}, "--dry-run", "--purge")
	ch := startRun(t, home, inv, "pg-cluster-remove")
	waitGate(t, c, id, "remove cluster pg-test", ch)
	approveRun(t, home, id, "alice", "--reject", "--comment", "not today")
	if out := endOf(t, "pg-cluster-remove (rejected)", ch, time.Minute); !strings.Contains(out, "nothing was changed") {
		t.Fatalf("the rejected removal did not say nothing was changed")
	}
	if h := haMembers(t, home, st); h.Leader == "" || len(h.Members) != 3 {
		t.Fatalf("after the dry run and the rejection, ha list: %+v", h)
	}

	// 2. Approved, with --purge: agents stopped, keys deleted, data aside; then the purge's own
	// approval deletes what was moved aside.
	ch = startRun(t, home, inv, "pg-cluster-remove", "--purge", "--reason", "members test")
	waitGate(t, c, id, "remove cluster pg-test", ch)
	approveRun(t, home, id, "alice", "--comment", "remove it")
	purge := waitGate(t, c, id, "purge pg-test", ch)
	t.Logf("the purge's approval asks: %s", purge.Plan)
	for i := range st.Nodes {
		if agentRuns(t, st, i+1) {
			t.Errorf("node %d's agent still runs after the removal", i+1)
		}
		if got := nodeRun(t, st, i+1, "ls /pg/data.removed-*/PG_VERSION 2>/dev/null; test -e /pg/data && echo still-there; true"); !strings.Contains(got, "/PG_VERSION") || strings.Contains(got, "still-there") {
			t.Errorf("node %d before the purge: %q (want the data aside, no /pg/data)", i+1, got)
		}
	}
	if n := clusterKeyCount(t, st, home); n != 0 {
		t.Errorf("%d DCS keys of pg-test left after the removal (%d before)", n, keys)
	}
	approveRun(t, home, id, "bob", "--comment", "purge it")
	if out := endOf(t, "pg-cluster-remove --purge", ch, 5*time.Minute); !strings.Contains(out, "exit: <nil>") || !strings.Contains(out, "removed and purged") {
		t.Fatalf("pg-cluster-remove --purge did not purge")
	}
	for i := range st.Nodes {
		if got := nodeRun(t, st, i+1, "ls -d /pg/data.removed-* 2>/dev/null; true"); strings.TrimSpace(got) != "" {
			t.Errorf("node %d after the purge still has %q", i+1, got)
		}
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, id)
	}
}
