package starter

import (
	"strings"
	"testing"
	"time"
)

// pg-reinit's, pg-member-remove's and pg-cluster-remove's inputs: --member by nodename or
// address, an unknown or missing one refused naming the members; the nodes, agents, DCS, layout
// and approval timeout from the inventory.
func TestPgMembersInputs(t *testing.T) {
	inv, cl := pitrCluster()
	cl.PG.Namespace = "/pigwf"
	ri, err := PgReinitInput(inv, cl, PgMembersRequest{Member: "10.0.0.12", DryRun: true}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if ri.Member != "pg-test-2" || !ri.DryRun || len(ri.Nodes) != 2 || ri.Nodes[1].Name != "pg-test-2" || len(ri.Members) != 2 ||
		ri.DCS.Cluster != "pg-test" || ri.Spec.DataDir == "" || ri.RequestedBy != "carol" {
		t.Errorf("pg-reinit input %+v", ri)
	}
	mr, err := PgMemberRemoveInput(inv, cl, PgMembersRequest{Member: "pg-test-2", ApprovalTimeout: 20 * time.Minute, Reason: "decommission"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if mr.Member != "pg-test-2" || mr.Approval.Timeout != 20*time.Minute || mr.Reason != "decommission" {
		t.Errorf("pg-member-remove input %+v", mr)
	}
	cr, err := PgClusterRemoveInput(inv, cl, PgMembersRequest{Purge: true}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if !cr.Purge || cr.Approval.Timeout <= 0 || len(cr.Nodes) != 2 {
		t.Errorf("pg-cluster-remove input %+v", cr)
	}
	for _, tc := range []struct{ member, says string }{
		{"pg-test-9", "--member pg-test-9 is not a member of pg-test: give one of pg-test-1, pg-test-2"},
		{"", "give --member"},
	} {
		if _, err := PgMemberRemoveInput(inv, cl, PgMembersRequest{Member: tc.member}, "carol"); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("--member %q: %v, want %q", tc.member, err, tc.says)
		}
		if _, err := PgReinitInput(inv, cl, PgMembersRequest{Member: tc.member}, "carol"); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("pg-reinit --member %q: %v, want %q", tc.member, err, tc.says)
		}
	}
	meta := PgClusterRemoveMeta(cr, Request{By: "carol", Inventory: "/etc/pigwf/inventory.yml"})
	if !strings.Contains(meta.Summary, "remove the cluster and purge its data (two approvals)") || !strings.Contains(meta.Details, "A second, separate approval") ||
		!strings.Contains(meta.Details, "pigwf approve pg-cluster-remove/pg-test") {
		t.Errorf("pg-cluster-remove page:\n%s\n%s", meta.Summary, meta.Details)
	}
	if meta := PgMemberRemoveMeta(mr, Request{By: "carol"}); !strings.Contains(meta.Details, ".removed-<run start, UTC>") {
		t.Errorf("pg-member-remove page:\n%s", meta.Details)
	}
	cl.Name = ""
	if _, err := PgClusterRemoveInput(inv, cl, PgMembersRequest{}, "carol"); err == nil || !strings.Contains(err.Error(), "has no pg_cluster") {
		t.Errorf("not a PostgreSQL cluster: %v", err)
	}
}
