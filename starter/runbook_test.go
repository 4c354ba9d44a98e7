package starter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

const runbookInventory = `all:
  children:
    pg-test:
      hosts:
        10.213.0.11: { pg_seq: 1, pg_role: primary }
        10.213.0.12: { pg_seq: 2, pg_role: replica }
      vars:
        pg_cluster: pg-test
        haproxy_enabled: false
        pigwf_approval_timeout: 20m
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta }
          - { name: dbuser_app }
    etcd:
      hosts:
        10.213.0.11: { etcd_seq: 1 }
      vars: { etcd_cluster: etcd }
  vars: { ansible_user: root }
`

func loadRunbookCluster(t *testing.T) (*inventory.Inventory, *inventory.Cluster, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(path, []byte(runbookInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadInventory(path)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	return inv, cl, path
}

func parseRunbook(t *testing.T, body string) *dsl.Runbook {
	t.Helper()
	rb, err := dsl.Parse("rb.yml", []byte("runbook: r\ndescription: test\nsteps:\n  - name: ok\n    approval: {}\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// The input carries the cluster's members, hosts and approval timeout, and the inputs of the
// built-in runbooks the file starts, and only those.
func TestRunbookInput(t *testing.T) {
	inv, cl, path := loadRunbookCluster(t)
	rb := parseRunbook(t, "  - name: move\n    switchover: {}\n  - name: nodes\n    runbook: {name: node-init}\n")
	in, err := RunbookInput(inv, cl, path, rb, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if in.Cluster != "pg-test" || len(in.Members) != 2 || len(in.Nodes) != 2 || in.Nodes[1].Name != in.Members[1].Name || in.Port != 5432 ||
		in.Approval.Timeout.String() != "20m0s" || in.RequestedBy != "alice" || in.Runbook.Format != dsl.FormatVersion {
		t.Errorf("input %+v", in)
	}
	ch := in.Children
	if ch.Switchover == nil || len(ch.Switchover.Members) != 2 || ch.NodeInit == nil || len(ch.NodeInit.Nodes) != 2 || ch.PgService != nil || ch.PgClusterCreate != nil {
		t.Errorf("children %+v", ch)
	}
}

// What only the inventory knows is refused with the step's line: a built-in runbook the cluster
// cannot run, a role whose password has another home.
func TestRunbookInputProblems(t *testing.T) {
	inv, cl, path := loadRunbookCluster(t)
	for _, c := range []struct {
		body string
		line int
		want string
	}{
		{"  - name: svc\n    runbook: {name: pg-service}\n", 6, "cannot start on pg-test: cluster pg-test has haproxy_enabled: false"},
		{"  - name: pw\n    password: {role: dbuser_meta, secret: meta}\n", 6, "dbuser_meta has its password in the inventory (pg_users[0].password)"},
		{"  - name: pw\n    password: {role: replicator, secret: replicator}\n", 6, "replicator is the replication user"},
		{"  - name: pw\n    password: {role: dbuser_dba, secret: dba}\n", 6, "takes its password from the worker's secret admin"},
		{"  - name: pw\n    password: {role: dbuser_app, secret: admin}\n", 6, "would share the secret admin"},
		{"  - name: pw\n    password: {role: dbuser_app, secret: dbuser_app}\n  - name: l\n    each: {of: replicas, steps: [{name: r, restart: {on: leader}}]}\n", 9, "includes the leader"},
	} {
		rb, err := dsl.Parse("rb.yml", []byte("runbook: r\ndescription: test\nsteps:\n  - name: ok\n    approval: {}\n"+c.body))
		if err == nil {
			_, err = RunbookInput(inv, cl, path, rb, "alice")
		}
		var ps dsl.Problems
		if !errors.As(err, &ps) || ps[0].Line != c.line || !strings.Contains(ps[0].String(), c.want) || ps[0].Fix == "" {
			t.Errorf("%q: %v; want a problem at rb.yml:%d with %q and a fix", c.body, err, c.line, c.want)
		}
	}
	for _, ok := range []string{"  - name: pw\n    password: {role: dbuser_app, secret: dbuser_app}\n", "  - name: pw\n    password: {role: dbuser_dba, secret: admin}\n"} {
		if _, err := RunbookInput(inv, cl, path, parseRunbook(t, ok), "alice"); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestRunbookMeta(t *testing.T) {
	rb, err := dsl.ParseFile("../runbooks/rolling-restart.yml")
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.RunbookInput{Cluster: "pg-test", Runbook: *rb}
	m := RunbookMeta(in, req)
	if want := "runbook pg-test: rolling-restart (rolling-restart.yml, 5 steps), requested by alice"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "the details", m.Details,
		"**runbook** of **pg-test**, requested by **alice**",
		"**Runbook:** rolling-restart: Restart PostgreSQL on every member",
		"rolling-restart.yml`",
		"**Plan**",
		"- 1. approve (rolling-restart.yml:7): wait for an approval",
		"- 2. replicas (rolling-restart.yml:9): for each of the replicas, one at a time",
		"   - 2.1. restart-replica (rolling-restart.yml:13)",
		"- 3. move-primary (rolling-restart.yml:19): switch the primary over to the best candidate: a child switchover run, which asks for its own approval",
		"**To approve:** `pigwf approve runbook/pg-test --by NAME`")
	in.DryRun = true
	m = RunbookMeta(in, req)
	if !strings.HasSuffix(m.Summary, "5 steps), dry run, requested by alice") || strings.Contains(m.Details, "To approve") {
		t.Errorf("dry run: %q\n%s", m.Summary, m.Details)
	}
}
