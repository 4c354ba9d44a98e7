package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// TestBackupsOnLab: pg-backup by hand, a full backup on the leader and an incremental one from a
// standby (pg_backup_source: replica, through the leader's pgBackRest TLS server), both in
// `pgbackrest info` on a node and in `pigwf backup list`; then a schedule every 15 s whose runs
// each leave a backup, shown by `pigwf schedule list` and by the `temporal` CLI, then deleted.
func TestBackupsOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwbkup", "10.213.36")
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	// The same cluster with backups from a standby.
	data, err := os.ReadFile(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	anchor := "        pg_cluster: pg-test\n"
	if !strings.Contains(string(data), anchor) {
		t.Fatalf("the lab inventory has no line %q", anchor)
	}
	replicaInv := filepath.Join(home, "inventory-replica.yml")
	if err := os.WriteFile(replicaInv, []byte(strings.Replace(string(data), anchor, anchor+"        pg_backup_source: replica\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	backup := func(inv, typ string) string {
		t.Helper()
		start := time.Now()
		out, err := pigwf(t, home, "start", "pg-backup", "--cluster", "pg-test", "--inventory", inv, "--type", typ, "--wait")
		t.Logf("pg-backup --type %s (%s):\n%s", typ, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("pg-backup --type %s: %v", typ, err)
		}
		return out
	}
	if out := backup(st.Inventory, "full"); !strings.Contains(out, "full backup") || !strings.Contains(out, " on pg-test-1") {
		t.Errorf("pg-backup --type full: no full backup on the leader pg-test-1 reported")
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, starter.WorkflowID(workflows.PgBackupRunbook, "pg-test"))
	}
	out := backup(replicaInv, "incr")
	if !strings.Contains(out, "incr backup") || !strings.Contains(out, "from this standby (started and stopped on pg-test-1)") {
		t.Errorf("pg-backup --type incr from a standby: not reported as taken on a replica")
	}
	if got := nodeRun(t, st, 1, "ss -Hltn 'sport = :8432' | wc -l"); strings.TrimSpace(got) == "0" {
		t.Errorf("no pgBackRest TLS server listens on the leader")
	}

	// Both in the repository, as pgBackRest itself and `pigwf backup list` show it.
	info := nodeRun(t, st, 2, "runuser -u postgres -- pgbackrest --stanza=pg-test info")
	full, incr := strings.Count(info, "full backup:"), strings.Count(info, "incr backup:")
	if full != 2 || incr != 1 { // pg-cluster-create's full backup, this test's full and incr
		t.Fatalf("pgbackrest info: %d full, %d incr backups, want 2 and 1:\n%s", full, incr, info)
	}
	list := func() starter.BackupList {
		t.Helper()
		out, err := pigwf(t, home, "backup", "list", "--cluster", "pg-test", "--inventory", st.Inventory, "--json")
		var l starter.BackupList
		if err == nil {
			err = json.Unmarshal([]byte(out), &l)
		}
		if err != nil {
			t.Fatalf("pigwf backup list --json: %v\n%s", err, out)
		}
		return l
	}
	if l := list(); len(l.Backups) != 3 || l.Backups[2].Type != "incr" {
		t.Errorf("pigwf backup list: %+v", l.Backups)
	}

	// A schedule: every 15 s an incremental backup; two runs leave two more.
	before := incr
	out, err = pigwf(t, home, "schedule", "create", "--cluster", "pg-test", "--inventory", st.Inventory, "--runbook", "pg-backup", "--every", "15s", "--type", "incr")
	t.Logf("schedule create:\n%s", out)
	if err != nil {
		t.Fatalf("schedule create: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		info = nodeRun(t, st, 3, "runuser -u postgres -- pgbackrest --stanza=pg-test info")
		if strings.Count(info, "incr backup:") >= before+2 {
			break
		}
		if time.Now().After(deadline) {
			sl, _ := pigwf(t, home, "schedule", "list", "--cluster", "pg-test")
			t.Fatalf("after 90 s the schedule left %d incremental backups, want 2:\n%s\n%s", strings.Count(info, "incr backup:")-before, info, sl)
		}
		time.Sleep(time.Second)
	}
	if l := list(); len(l.Backups) < 5 {
		t.Errorf("pigwf backup list does not show the scheduled backups: %+v", l.Backups)
	}
	out, err = pigwf(t, home, "schedule", "list", "--cluster", "pg-test")
	t.Logf("schedule list:\n%s", out)
	if err != nil || !strings.Contains(out, "pg-backup/pg-test") || !strings.Contains(out, "every 15s") || !strings.Contains(out, "pg-backup/pg-test/scheduled-") {
		t.Errorf("pigwf schedule list: %v", err)
	}
	if cli := testenv.TemporalCLI(); cli != "" {
		args := append([]string{"schedule", "list", "--namespace", "default", "--command-timeout", "10s"}, env.TemporalCLIArgs()...)
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "pg-backup/pg-test") {
			t.Errorf("temporal schedule list: %v, want pg-backup/pg-test\n%s", err, out)
		}
	}
	if out, err := pigwf(t, home, "schedule", "delete", "--cluster", "pg-test", "--runbook", "pg-backup"); err != nil {
		t.Errorf("schedule delete: %v\n%s", err, out)
	}
	// Visibility drops a deleted schedule a moment later.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, _ := pigwf(t, home, "schedule", "list", "--cluster", "pg-test")
		if strings.Contains(out, "No schedules.") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the schedule is still listed 15 s after its deletion:\n%s", out)
			break
		}
	}
}
