package starter

import (
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

var req = Request{By: "alice", Inventory: "/etc/pigwf/inventory.yml"}

// mustContain fails for each part the details lack, in order.
func mustContain(t *testing.T, what, text string, parts ...string) {
	t.Helper()
	rest := text
	for _, p := range parts {
		i := strings.Index(rest, p)
		if i < 0 {
			t.Errorf("%s lacks %q (or has it out of order):\n%s", what, p, text)
			return
		}
		rest = rest[i+len(p):]
	}
}

func switchoverInput() workflows.SwitchoverInput {
	return workflows.SwitchoverInput{
		Cluster: "pg-test", Candidate: "pg-test-2", Reason: "kernel update on pg-test-1", RequestedBy: "alice",
		Members: []activities.MemberAPI{{Name: "pg-test-1"}, {Name: "pg-test-2"}, {Name: "pg-test-3"}}, MaxLagBytes: 1 << 20,
		Approval: workflows.ApprovalPolicy{Approvers: []string{"bob", "carol"}, Timeout: 90 * time.Minute},
	}
}

func TestSwitchoverMeta(t *testing.T) {
	in := switchoverInput()
	m := SwitchoverMeta(in, "pg-test-1", req)
	if want := "switchover pg-test: pg-test-1 → pg-test-2, requested by alice"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "the details", m.Details,
		"**switchover** of **pg-test**, requested by **alice**",
		"**Inventory:** `/etc/pigwf/inventory.yml`",
		"**Reason:** kernel update on pg-test-1",
		"**Plan**",
		"1. Precheck", "pg-test-2 streams at most 1048576 bytes behind (pg_rpo)",
		"2. Approval, signed, by the approvers the worker's approvals policy names (four eyes and quorum as it says) within 1h30m",
		"3. Failover request to the HA agents: pg-test-1 hands the primary role to pg-test-2.",
		"4. Wait for pg-test-2 to lead.",
		"5. The old primary, pg-test-1, follows the new leader as a replica.",
		"6. Verify",
		"**To approve:** `pigwf approve switchover/pg-test --by NAME`", "`/pigwf approve switchover/pg-test`")

	if got := SwitchoverMeta(in, "", req).Summary; got != "switchover pg-test: → pg-test-2, requested by alice" {
		t.Errorf("leader unknown: %q", got)
	}
	in.Candidate, in.Reason = "", ""
	in.ScheduledAt = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	m = SwitchoverMeta(in, "", req)
	if want := "switchover pg-test: → the best candidate, requested by alice"; m.Summary != want {
		t.Errorf("no candidate, leader unknown: %q, want %q", m.Summary, want)
	}
	mustContain(t, "the scheduled details", m.Details,
		"**Not before:** 2030-01-02 03:04 UTC (`--at`)",
		"1. Precheck", "the best candidate (a synchronous, else the least-lagging, streaming standby) streams",
		"3. Wait until 2030-01-02 03:04 UTC.",
		"4. Failover request to the HA agents: the current primary hands the primary role to the best candidate.",
		"6. The old primary follows the new leader")
	if strings.Contains(m.Details, "Reason") {
		t.Errorf("an empty reason is listed:\n%s", m.Details)
	}
}

func pgInput() workflows.PgClusterCreateInput {
	return workflows.PgClusterCreateInput{
		Cluster:  "pg-test",
		Members:  []workflows.PgMember{{Name: "pg-test-1", Role: inventory.RolePrimary}, {Name: "pg-test-2", Role: "replica"}, {Name: "pg-test-3", Role: "replica"}},
		Spec:     activities.PGSpec{InventoryFile: "/etc/pigwf/inventory.yml"},
		Roles:    []activities.RoleSpec{{Name: "dbuser_dba", Password: "admin"}},
		Approval: workflows.ApprovalPolicy{Approvers: []string{"bob"}, Timeout: time.Hour},
	}
}

func TestPgClusterCreateMeta(t *testing.T) {
	in := pgInput()
	root := Request{By: "root", Inventory: "/etc/pigwf/inventory.yml"}
	m := PgClusterCreateMeta(in, root)
	if want := "pg-cluster-create pg-test: 3 members (primary pg-test-1), requested by root"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "the details", m.Details,
		"**Members:** pg-test-1 (primary), pg-test-2 (replica), pg-test-3 (replica)",
		"1. Precheck", "2. Replication credentials", "3. pg-test-1: initdb",
		"4. pg-test-2, pg-test-3 in parallel: clone from pg-test-1", "5. The inventory's users", "6. pgBackRest", "7. Verify")
	if strings.Contains(m.Details, "approve") || strings.Contains(m.Details, "Force") {
		t.Errorf("a run that asks nobody says how to approve:\n%s", m.Details)
	}
	in.DryRun, in.Force = true, true
	m = PgClusterCreateMeta(in, root)
	if want := "pg-cluster-create pg-test: 3 members (primary pg-test-1), dry run, requested by root"; m.Summary != want {
		t.Errorf("dry-run summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "the forced details", m.Details, "**Dry run:**", "**Force:**",
		"2. Only if a member holds another system's data: approval, signed, by the approvers the worker's approvals policy names (four eyes and quorum as it says) within 1h (without a decision by then the run ends with nothing changed); once approved, move that data directory aside.",
		"**To approve:** `pigwf approve pg-cluster-create/pg-test --by NAME`")
}

func TestNodeInitMeta(t *testing.T) {
	in := workflows.NodeInitInput{Cluster: "pg-test", Nodes: []workflows.NodeSpec{
		{Node: activities.Node{Addr: "10.213.0.11", Name: "pg-test-1"}}, {Node: activities.Node{Addr: "10.213.0.12", Name: "pg-test-2"}}, {Node: activities.Node{Addr: "10.213.0.13"}}}}
	m := NodeInitMeta(in, Request{By: "root", Inventory: "/etc/pigwf/inventory.yml"})
	if want := "node-init pg-test: 3 nodes, requested by root"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "the details", m.Details, "**Nodes:** pg-test-1 (10.213.0.11), pg-test-2 (10.213.0.12), 10.213.0.13",
		"1. The deployment CA", "2. On every node in parallel, in order: connect, identity, postgres-user, packages")
	in.Nodes = in.Nodes[:1]
	if got := NodeInitMeta(in, req).Summary; got != "node-init pg-test: 1 node, requested by alice" {
		t.Errorf("one node: %q", got)
	}
}

// What a run shows is stored in its history and visibility: no password, whatever the input holds.
func TestRunMetaHasNoSecrets(t *testing.T) {
	in := pgInput()
	in.Users = []activities.RoleSpec{{Name: "dbuser_meta", Password: "DBUser.Meta"}}
	for _, m := range []RunMeta{PgClusterCreateMeta(in, req), SwitchoverMeta(switchoverInput(), "pg-test-1", req)} {
		for _, secret := range []string{"DBUser.Meta", "admin"} {
			if strings.Contains(m.Summary+m.Details, secret) {
				t.Errorf("%q shows up in %q / %q", secret, m.Summary, m.Details)
			}
		}
	}
}
