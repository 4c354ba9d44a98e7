package starter

import (
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/inventory"
)

func objectsCluster() (*inventory.Inventory, *inventory.Cluster) {
	inv, cl := pitrCluster()
	ten := 10
	cl.Users = []inventory.User{{Name: "app", Password: "x", ConnLimit: &ten}, {Name: "old_app", State: inventory.StateAbsent}}
	cl.Databases = []inventory.Database{{Name: "app", Owner: "app"}, {Name: "old", State: inventory.StateAbsent}}
	cl.HBARules = []inventory.HBARule{{User: "app", DB: "app", Addr: "intra", Auth: "pwd"}}
	return inv, cl
}

// pg-users and pg-databases carry every entry (the absent ones to drop), their leader's way in,
// and --name checked against the inventory; pg-cluster-create creates only the others.
func TestObjectsInputs(t *testing.T) {
	inv, cl := objectsCluster()
	u, err := PgUsersInput(inv, cl, "/etc/pigwf/inv.yml", ObjectsRequest{Name: "app"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Users) != 2 || u.Users[0].Password != "user" || *u.Users[0].ConnLimit != 10 || !u.Users[1].Absent || u.Name != "app" ||
		len(u.Nodes) != 2 || u.Nodes[1].Name != "pg-test-2" || len(u.Members) != 2 || u.Port != 5432 || u.InventoryFile != "/etc/pigwf/inv.yml" || u.RequestedBy != "carol" {
		t.Errorf("pg-users input %+v", u)
	}
	d, err := PgDatabasesInput(inv, cl, "/etc/pigwf/inv.yml", ObjectsRequest{ApprovalTimeout: 5 * time.Minute}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Databases) != 2 || !d.Databases[1].Absent || d.Approval.Timeout != 5*time.Minute || strings.Join(DatabasesToDrop(d), ",") != "old" {
		t.Errorf("pg-databases input %+v", d)
	}
	d.Name = "app"
	if len(DatabasesToDrop(d)) != 0 {
		t.Errorf("--name app drops %v", DatabasesToDrop(d))
	}
	if _, err := PgUsersInput(inv, cl, "inv.yml", ObjectsRequest{Name: "nobody"}, "carol"); err == nil ||
		err.Error() != "--name nobody is not in pg_users of pg-test: give one of app, old_app" {
		t.Errorf("an unknown --name: %v", err)
	}
	pc, err := PgClusterCreateInput(inv, cl, "inv.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Users) != 1 || pc.Users[0].Name != "app" || len(pc.Databases) != 1 || pc.Databases[0].Name != "app" {
		t.Errorf("pg-cluster-create creates %+v and %+v", pc.Users, pc.Databases)
	}
	h, err := PgHBAInput(inv, cl, "inv.yml", true)
	if err != nil {
		t.Fatal(err)
	}
	// The same lines pg-cluster-create writes.
	if strings.Join(h.Spec.HBA, "\n") != strings.Join(pc.Spec.HBA, "\n") || !h.DryRun || len(h.Members) != 2 || !strings.Contains(HBALines(h), "host    app          app            10.0.0.0/8") {
		t.Errorf("pg-hba input %+v", h)
	}
}

func TestObjectsMeta(t *testing.T) {
	inv, cl := objectsCluster()
	d, _ := PgDatabasesInput(inv, cl, "inv.yml", ObjectsRequest{}, "alice")
	m := PgDatabasesMeta(d, req)
	if want := "pg-databases pg-test: 2 databases, requested by alice"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "details", m.Details, "old (state: absent)", "Only if a database is to be dropped: approval", "`pigwf approve pg-databases/pg-test --by NAME`")
	d.DryRun = true
	if m := PgDatabasesMeta(d, req); strings.Contains(m.Details, "approve") || !strings.HasSuffix(m.Summary, "2 databases, dry run, requested by alice") {
		t.Errorf("a dry run's meta:\n%s\n%s", m.Summary, m.Details)
	}
	u, _ := PgUsersInput(inv, cl, "inv.yml", ObjectsRequest{Name: "app"}, "alice")
	if m := PgUsersMeta(u, req); m.Summary != "pg-users pg-test: user app, requested by alice" || strings.Contains(m.Details, "old_app") {
		t.Errorf("pg-users --name app:\n%s\n%s", m.Summary, m.Details)
	}
	h, _ := PgHBAInput(inv, cl, "inv.yml", false)
	if m := PgHBAMeta(h, req, len(cl.HBARules)); m.Summary != "pg-hba pg-test: 1 rule on 2 members, requested by alice" {
		t.Errorf("pg-hba summary %q", m.Summary)
	}
}
