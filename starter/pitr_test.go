package starter

import (
	"errors"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
)

func pitrCluster() (*inventory.Inventory, *inventory.Cluster) {
	cl := &inventory.Cluster{Group: "pg-test", Name: "pg-test", PG: inventory.PGVars{Port: 5432, DataDir: "/pg/data", BinDir: "/usr/lib/postgresql/15/bin", BackupRepoPath: "/pg/backup"}}
	cl.PG.Approvers = []string{"alice"}
	for i, a := range []string{"10.0.0.11", "10.0.0.12"} {
		h := inventory.Host{Addr: a, Seq: i + 1}
		h.Node.Nodename, h.Node.SSHHost = "pg-test-"+string(rune('1'+i)), a
		cl.Hosts = append(cl.Hosts, h)
	}
	return &inventory.Inventory{File: "inv.yml", Etcd: []string{"http://10.0.0.11:2379"}}, cl
}

// Refusals before anything starts, each naming what to fix; accepted requests carry the parsed
// target, the members and the layout.
func TestPITRRestoreInput(t *testing.T) {
	inv, cl := pitrCluster()
	for i, c := range []struct {
		r       PITRRequest
		want    error  // errors.Is, when set
		wantMsg string // in the message, when set
	}{
		{r: PITRRequest{Flags: pitr.Flags{Time: "2026-11-30 09:00:00"}}, want: pitr.ErrNoTimeZone},                        // 1
		{r: PITRRequest{}, want: pitr.ErrNoTarget},                                                                        // 2
		{r: PITRRequest{Flags: pitr.Flags{LSN: "0/3000060"}, BackupSet: "latest; rm -rf /"}, want: pitr.ErrUnknownBackup}, // 3
		{r: PITRRequest{Cleanup: true, Flags: pitr.Flags{Latest: true}}, wantMsg: "--cleanup"},                            // 4
		{r: PITRRequest{Cleanup: true, Inspect: true}, wantMsg: "--cleanup"},                                              // 5
	} {
		_, err := PITRRestoreInput(inv, cl, c.r, "carol")
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) || (c.wantMsg != "" && !strings.Contains(err.Error(), c.wantMsg)) {
			t.Errorf("case %d: %+v: err %v", i+1, c.r, err)
		}
	}
	in, err := PITRRestoreInput(inv, cl, PITRRequest{Flags: pitr.Flags{Time: "2026-11-30T09:00:00.25+02:00"}, BackupSet: "20261130-062326F", Inspect: true}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if in.Target.Kind != pitr.KindTime || in.Target.Time.Hour() != 7 || !in.Inspect || in.BackupSet != "20261130-062326F" ||
		len(in.Members) != 2 || in.Members[1].Name != "pg-test-2" || in.Spec.DataDir != cl.PG.DataDir || in.Spec.RepoPath != cl.PG.BackupRepoPath ||
		in.Approval.Timeout == 0 || in.RequestedBy != "carol" {
		t.Errorf("input %+v", in)
	}
	if in, err := PITRRestoreInput(inv, cl, PITRRequest{Cleanup: true}, "carol"); err != nil || !in.Cleanup {
		t.Errorf("cleanup: %+v %v", in, err)
	}
	// Who may approve is the worker's to say: the inventory's pigwf_approvers never reach the input.
	if len(in.Approval.Approvers) != 0 {
		t.Errorf("the input carries approvers %v", in.Approval.Approvers)
	}
	cl.PG.Approvers = nil
	if _, err := PITRRestoreInput(inv, cl, PITRRequest{Flags: pitr.Flags{Latest: true}}, "carol"); err != nil {
		t.Errorf("no approvers in the inventory: %v", err)
	}
}
