package starter

import (
	"slices"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/inventory"
)

// pg-member-add's input: the new hosts by address or nodename, every host of the cluster, a
// pg_hba.conf that lets the new address replicate, node-init's input for the new hosts only;
// refused: no --nodes, a host not in the inventory, a new host that is the inventory's primary.
func TestPgMemberAddInput(t *testing.T) {
	inv, cl := pitrCluster()
	h := inventory.Host{Addr: "10.0.0.13", Seq: 3, Role: inventory.RoleReplica}
	h.Node.Nodename, h.Node.SSHHost = "pg-test-3", h.Addr
	cl.Hosts = append(cl.Hosts, h)
	cl.Hosts[0].Role, cl.Hosts[1].Role = inventory.RolePrimary, inventory.RoleReplica
	cl.PG.ReplicationUser, cl.PG.AdminUser = "replicator", "dbuser_dba"
	in, err := PgMemberAddInput(inv, cl, []string{"10.0.0.13"}, "inv.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.New, []string{"pg-test-3"}) || len(in.Hosts) != 3 || in.APIPort != AgentAPIPort || in.DCS.Cluster != "pg-test" ||
		len(in.NodeInit.Nodes) != 1 || in.NodeInit.Nodes[0].Node.Addr != "10.0.0.13" || len(in.NodeInit.Hosts) != 3 {
		t.Errorf("input %+v", in)
	}
	if !slices.ContainsFunc(in.Spec.HBA, func(l string) bool { return strings.Contains(l, "replication") && strings.Contains(l, "10.0.0.13/32") }) {
		t.Errorf("pg_hba.conf does not let the new address replicate: %q", in.Spec.HBA)
	}
	if in, err := PgMemberAddInput(inv, cl, []string{"pg-test-3", "pg-test-2"}, "inv.yml"); err != nil || !slices.Equal(in.New, []string{"pg-test-2", "pg-test-3"}) {
		t.Errorf("by nodename: %v %v", in.New, err)
	}
	for _, tc := range []struct {
		nodes []string
		want  string
	}{
		{nil, "--nodes is required"},
		{[]string{"10.0.0.19"}, "add the new hosts to the inventory under pg-test first"},
		{[]string{"10.0.0.11"}, "pg_role: primary"},
	} {
		if _, err := PgMemberAddInput(inv, cl, tc.nodes, "inv.yml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.nodes, err, tc.want)
		}
	}
}
