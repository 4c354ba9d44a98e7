package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/starter"
)

// The new user, database and HBA rule of TestUsersDatabasesHBAOnLab, added to the lab's inventory.
const (
	objUser     = "app_obj"
	objPassword = "AppObj.Secret1"
	objRuleLine = "host    app_obj      app_obj        10.0.0.0/8         scram-sha-256"
)

// objectsInventory is a copy of the lab's inventory with an entry added at the head of each list
// entries names (pg_users, pg_databases, pg_hba_rules: the YAML flow mapping), written as
// home/inventory-<name>.yml.
func objectsInventory(t *testing.T, st *lab.Status, home, name string, entries map[string]string) string {
	t.Helper()
	text, err := os.ReadFile(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	inv := string(text)
	for key, entry := range entries {
		marker := "        " + key + ":\n"
		if strings.Count(inv, marker) != 1 {
			t.Fatalf("the lab's inventory has no single %q list:\n%s", key, inv)
		}
		inv = strings.Replace(inv, marker, marker+"          - "+entry+"\n", 1)
	}
	path := filepath.Join(home, "inventory-"+name+".yml")
	if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// objStart runs `pigwf start RUNBOOK --cluster pg-test --inventory inv --wait [args]` as carol and
// fails the test when want is not in its output, or when it failed and should not have.
func objStart(t *testing.T, home, inv, runbook string, ok bool, want []string, args ...string) string {
	t.Helper()
	out, err := pigwf(t, home, append([]string{"start", runbook, "--cluster", "pg-test", "--inventory", inv, "--wait", "--as", "carol"}, args...)...)
	t.Logf("%s %v:\n%s", runbook, args, out)
	if (err == nil) != ok {
		t.Fatalf("%s %v: %v (want it to succeed: %v)\n%s", runbook, args, err, ok, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s %v: no %q in its output", runbook, args, w)
		}
	}
	return out
}

// onLeader runs SQL as postgres on the node of member (a nodename) over its socket.
func onLeader(t *testing.T, st *lab.Status, member, sql string) string {
	t.Helper()
	return strings.TrimSpace(nodeRun(t, st, nodeIndex(t, st, addrOfMember(t, st, member)), "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c \""+sql+"\""))
}

// waitApproval waits until run id waits for approval.
func waitApproval(t *testing.T, c *starter.Client, id string, ch <-chan string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if runs, err := c.PendingApprovals(context.Background()); err == nil {
			for _, r := range runs {
				if r.WorkflowID == id {
					return
				}
			}
		}
		select {
		case out := <-ch:
			t.Fatalf("%s ended before it waited for approval:\n%s", id, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("%s never waited for approval", id)
}

// Users, databases and HBA rules on a running cluster (issue #14): the inventory's new user,
// database and rule applied by pg-users, pg-databases and pg-hba, the user logging in from the
// lab host with libpq; an attribute changed (altered); a rerun changing nothing; the rule still in
// force on the new leader after a switchover; then state: absent refused while the database is in
// use and while the user owns it, and dropped once the drop is approved.
func TestUsersDatabasesHBAOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwobj", "10.213.37")
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	c := dial(t)
	leader := leaderOf(t, home, st)
	login := func(member string) (string, error) {
		return psqlAs(addrOfMember(t, st, member), 5432, objUser, objPassword, objUser, "SELECT current_user || ' ' || current_database()")
	}

	// 1. Created: the user, its database, then the rule on every member.
	v1 := objectsInventory(t, st, home, "v1", map[string]string{
		"pg_users":     fmt.Sprintf("{ name: %s, password: %s, roles: [dbrole_readwrite], connlimit: 5, comment: 'pigwf objects test' }", objUser, objPassword),
		"pg_databases": fmt.Sprintf("{ name: %s, owner: %s, comment: 'pigwf objects test' }", objUser, objUser),
		"pg_hba_rules": fmt.Sprintf("{ user: %s, db: %s, addr: intra, auth: pwd, title: 'objects test' }", objUser, objUser),
	})
	objStart(t, home, v1, "pg-users", true, []string{"[changed]", "created user app_obj (login, connection limit 5, password, member of dbrole_readwrite, comment)",
		"[unchanged] " + leader, "user dbuser_meta as specified"})
	objStart(t, home, v1, "pg-databases", true, []string{"created database app_obj (owner app_obj, comment)", "database meta as specified"})
	if out, err := login(leader); err == nil || !strings.Contains(out, "no pg_hba.conf entry") {
		t.Errorf("%s logged in before pg-hba wrote its rule: %v\n%s", objUser, err, out)
	}
	objStart(t, home, v1, "pg-hba", true, []string{"would add to pg_hba.conf: " + objRuleLine}, "--dry-run")
	for i := range st.Nodes {
		if strings.Contains(nodeRun(t, st, i+1, "cat /pg/data/pg_hba.conf"), objRuleLine) {
			t.Fatalf("the dry run wrote node %d's pg_hba.conf", i+1)
		}
	}
	out := objStart(t, home, v1, "pg-hba", true, []string{"wrote /pg/data/pg_hba.conf; reloaded PostgreSQL"})
	if n := strings.Count(out, "[changed]"); n != len(st.Nodes) {
		t.Errorf("pg-hba changed %d members, want every one of %d", n, len(st.Nodes))
	}
	if got, err := login(leader); err != nil || got != objUser+" "+objUser {
		t.Fatalf("psql as %s to %s on the leader %s: %v\n%s", objUser, objUser, leader, err, got)
	}

	// 2. An attribute changed: altered, that attribute only.
	v2 := objectsInventory(t, st, home, "v2", map[string]string{
		"pg_users":     fmt.Sprintf("{ name: %s, password: %s, roles: [dbrole_readwrite], connlimit: 7, comment: 'pigwf objects test' }", objUser, objPassword),
		"pg_databases": fmt.Sprintf("{ name: %s, owner: %s, comment: 'pigwf objects test' }", objUser, objUser),
		"pg_hba_rules": fmt.Sprintf("{ user: %s, db: %s, addr: intra, auth: pwd, title: 'objects test' }", objUser, objUser),
	})
	objStart(t, home, v2, "pg-users", true, []string{"altered user app_obj: connection limit 5 → 7"})
	if got := onLeader(t, st, leader, "SELECT rolconnlimit FROM pg_roles WHERE rolname = '"+objUser+"'"); got != "7" {
		t.Errorf("app_obj's connection limit on the leader: %q, want 7", got)
	}

	// 3. A rerun of each: every object unchanged.
	for _, rb := range []string{"pg-users", "pg-databases", "pg-hba"} {
		if out := objStart(t, home, v2, rb, true, []string{"[unchanged]"}); strings.Contains(out, "[changed]") {
			t.Errorf("a rerun of %s changed something", rb)
		}
	}

	// 4. A switchover (approved by alice): the new leader has the rule, and the user logs in there.
	run := startSwitchover(t, home, st, "--reason", "test: pg_hba.conf after a switchover")
	waitPending(t, c)
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "alice"); err != nil {
		t.Fatalf("approve the switchover: %v\n%s", err, out)
	}
	if out := wait(t, run); !strings.Contains(out, "exit: <nil>") {
		t.Fatalf("switchover:\n%s", out)
	}
	newLeader := leaderOf(t, home, st)
	if newLeader == leader {
		t.Fatalf("the leader is still %s after the switchover", leader)
	}
	if hba := nodeRun(t, st, nodeIndex(t, st, addrOfMember(t, st, newLeader)), "cat /pg/data/pg_hba.conf"); !strings.Contains(hba, objRuleLine) {
		t.Errorf("the new leader %s's pg_hba.conf has no %q:\n%s", newLeader, objRuleLine, hba)
	}
	if got, err := login(newLeader); err != nil || got != objUser+" "+objUser {
		t.Errorf("psql as %s on the new leader %s: %v\n%s", objUser, newLeader, err, got)
	}

	// 5. state: absent. Refused, with nothing changed, while a session uses the database and while
	// the user owns it; then the database dropped once alice approves carol's run, then the user.
	v3 := objectsInventory(t, st, home, "v3", map[string]string{
		"pg_users":     fmt.Sprintf("{ name: %s, state: absent }", objUser),
		"pg_databases": fmt.Sprintf("{ name: %s, state: absent }", objUser),
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname=%s sslmode=prefer connect_timeout=3",
		addrOfMember(t, st, newLeader), objUser, objPassword, objUser))
	if err != nil {
		t.Fatal(err)
	}
	objStart(t, home, v3, "pg-databases", false, []string{"database app_obj: cannot be dropped: it is in use: 1 session (app_obj)", "nothing was changed"})
	conn.Close(ctx)
	objStart(t, home, v3, "pg-users", false, []string{"user app_obj: cannot be dropped: it owns database app_obj", "nothing was changed"})
	if got := onLeader(t, st, newLeader, "SELECT count(*) FROM pg_database WHERE datname = '"+objUser+"'"); got != "1" {
		t.Fatalf("a refused run dropped the database (%s)", got)
	}
	ch := make(chan string, 1)
	go func() {
		out, err := pigwf(t, home, "start", "pg-databases", "--cluster", "pg-test", "--inventory", v3, "--wait", "--as", "carol")
		ch <- fmt.Sprintf("%s\nexit: %v", out, err)
	}()
	waitApproval(t, c, "pg-databases/pg-test", ch)
	if got := onLeader(t, st, newLeader, "SELECT count(*) FROM pg_database WHERE datname = '"+objUser+"'"); got != "1" {
		t.Fatalf("the database went before the approval (%s)", got)
	}
	if out, err := pigwf(t, home, "approve", "pg-databases/pg-test", "--by", "alice", "--comment", "objects test"); err != nil {
		t.Fatalf("approve pg-databases: %v\n%s", err, out)
	}
	select {
	case out := <-ch:
		t.Logf("pg-databases (absent):\n%s", out)
		if !strings.Contains(out, "exit: <nil>") || !strings.Contains(out, "dropped database app_obj") {
			t.Fatalf("the approved drop did not happen:\n%s", out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the approved pg-databases run did not end")
	}
	objStart(t, home, v3, "pg-users", true, []string{"dropped user app_obj"})
	if got := onLeader(t, st, newLeader, "SELECT (SELECT count(*) FROM pg_database WHERE datname = '"+objUser+"') + (SELECT count(*) FROM pg_roles WHERE rolname = '"+objUser+"')"); got != "0" {
		t.Errorf("after the drops, %s is still a database or a role (%s)", objUser, got)
	}
	// Absent already: nothing to approve, nothing changed.
	if out := objStart(t, home, v3, "pg-databases", true, []string{"database app_obj is absent"}); strings.Contains(out, "[changed]") || strings.Contains(out, "waiting for approval") {
		t.Errorf("a rerun of the drop did something:\n%s", out)
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		for _, id := range []string{"pg-users/pg-test", "pg-databases/pg-test", "pg-hba/pg-test"} {
			saveHistory(t, id)
		}
	}
}
