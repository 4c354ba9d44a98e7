package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// TestBackupsOnLab: pg-backup by hand, a full backup on the leader and an incremental one from a
// standby (pg_backup_source: replica, through the leader's pgBackRest TLS server), both in
// `pgbackrest info` on a node and in `pigwf backup list`; then a schedule every 15 s whose runs
// each leave a backup, shown by `pigwf schedule list` and by the `temporal` CLI, then deleted.
func TestBackupsOnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwbkup", "10.213.36")
	w := startWorker(t, home)
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

	backupsWithWorkerKillAndFailover(t, st, home, w)

	// A schedule: every 15 s an incremental backup; two runs leave two more.
	before := strings.Count(nodeRun(t, st, 3, "runuser -u postgres -- pgbackrest --stanza=pg-test info"), "incr backup:")
	scheduledFrom := time.Now()
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
	scheduled := 0
	for _, b := range list().Backups {
		if b.Type == "incr" && !b.Start.Before(scheduledFrom.Truncate(time.Second)) {
			scheduled++
		}
	}
	if scheduled < 2 {
		t.Errorf("pigwf backup list shows %d incremental backups since the schedule was created, want 2 or more", scheduled)
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
	// A paused schedule is shown as paused, to pigwf and to the Temporal CLI.
	if out, err := pigwf(t, home, "schedule", "pause", "--cluster", "pg-test", "--runbook", "pg-backup"); err != nil {
		t.Errorf("schedule pause: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, _ := pigwf(t, home, "schedule", "list", "--cluster", "pg-test")
		if pausedColumn(out, "pg-backup/pg-test") == "true" {
			t.Logf("schedule list after pause:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a paused schedule is not shown as paused:\n%s", out)
			break
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

// backupsWithWorkerKillAndFailover: a full backup whose worker is killed (SIGKILL) while the
// backup step runs completes on a new worker and leaves one more full backup; a full backup
// from the leader through a failover (kill -9 of the leader's postmaster while it runs) either
// completes or fails with a message naming what happened, and the next run succeeds.
func backupsWithWorkerKillAndFailover(t *testing.T, st *lab.Status, home string, w *workerProc) {
	t.Helper()
	ctx := context.Background()
	c := dial(t)
	// The full backups' labels (expire drops the oldest past pgbackrest_retention_full, so a
	// count would not show a new one).
	fulls := func() map[string]bool {
		labels := map[string]bool{}
		info := nodeRun(t, st, 2, "runuser -u postgres -- pgbackrest --stanza=pg-test info")
		for _, m := range regexp.MustCompile(`full backup: (\S+)`).FindAllStringSubmatch(info, -1) {
			labels[m[1]] = true
		}
		return labels
	}
	newFulls := func(before map[string]bool) (n int) {
		for l := range fulls() {
			if !before[l] {
				n++
			}
		}
		return n
	}
	id := starter.WorkflowID(workflows.PgBackupRunbook, "pg-test")
	// run starts a full backup, waits until its backup step runs, does what hurts, and returns
	// the run's error.
	run := func(hurt func(step string)) error {
		t.Helper()
		if out, err := pigwf(t, home, "start", "pg-backup", "--cluster", "pg-test", "--inventory", st.Inventory, "--type", "full"); err != nil {
			t.Fatalf("pg-backup --type full: %v\n%s", err, out)
		}
		d, err := c.C.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		runID := d.WorkflowExecutionInfo.Execution.RunId
		hurt(waitActivityStarted(t, c, id, runID, "/"+activities.StepBackup, 2*time.Minute))
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return c.C.GetWorkflow(wctx, id, runID).Get(wctx, nil) // the run's typed failure
	}

	// The worker killed during the backup step: the run completes on a new worker.
	before := fulls()
	if err := run(func(step string) {
		w.kill()
		t.Logf("killed the worker (SIGKILL) while %s ran", step)
		startWorker(t, home)
	}); err != nil {
		t.Fatalf("pg-backup did not complete after its worker was killed: %v", err)
	}
	if n := newFulls(before); n != 1 {
		t.Errorf("the run whose worker was killed left %d new full backups, want 1", n)
	}

	// A failover while a backup runs on the leader: completed, or failed saying so.
	leader := leaderOf(t, home, st)
	li := nodeIndex(t, st, addrOfMember(t, st, leader))
	err := run(func(step string) {
		nodeRun(t, st, li, "kill -9 $(head -n1 /pg/data/postmaster.pid)")
		t.Logf("killed %s's postmaster while %s ran", leader, step)
	})
	if err == nil {
		t.Logf("the backup through the failover completed")
	} else {
		t.Logf("the backup through the failover failed: %v", err)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != workflows.PgBackupFailedType || !strings.Contains(err.Error(), "pgBackRest's full backup") {
			t.Errorf("a backup broken by a failover must fail as %s, with pgBackRest's error: %v", workflows.PgBackupFailedType, err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		if l := leaderOf(t, home, st); l != "" && l != leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader 60 s after %s's postmaster was killed", leader)
		}
	}
	before = fulls()
	if out, err := pigwf(t, home, "start", "pg-backup", "--cluster", "pg-test", "--inventory", st.Inventory, "--type", "full", "--wait"); err != nil {
		t.Fatalf("the next pg-backup after the failover: %v\n%s", err, out)
	} else {
		t.Logf("the next pg-backup after the failover:\n%s", out)
	}
	if n := newFulls(before); n != 1 {
		t.Errorf("the next pg-backup after the failover left %d new full backups, want 1", n)
	}
}

// waitActivityStarted waits until run runID of workflow id has a started activity whose ID
// ends with suffix, and returns that ID.
func waitActivityStarted(t *testing.T, c *starter.Client, id, runID, suffix string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := c.C.DescribeWorkflowExecution(context.Background(), id, runID)
		if err == nil {
			for _, pa := range d.PendingActivities {
				if strings.HasSuffix(pa.ActivityId, suffix) && pa.State == enumspb.PENDING_ACTIVITY_STATE_STARTED {
					return pa.ActivityId
				}
			}
			if d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("%s ended (%v) before an activity *%s started", id, d.WorkflowExecutionInfo.Status, suffix)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no activity *%s started in %s within %s (last error %v)", suffix, id, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pausedColumn is the Paused cell of schedule's row in `pigwf schedule list`'s table.
func pausedColumn(table, schedule string) string {
	var col = -1
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		for i, c := range cells {
			c = strings.TrimSpace(c)
			if c == "Paused" {
				col = i
			}
			if col >= 0 && i == 1 && c == schedule && col < len(cells) {
				return strings.TrimSpace(cells[col])
			}
		}
	}
	return ""
}

func TestPausedColumn(t *testing.T) {
	table := `+ Schedules --------+-----------+--------+------------+
| Schedule          | When      | Paused | Last run   |
+-------------------+-----------+--------+------------+
| pg-backup/pg-test | every 15s | true   | completed  |
+-------------------+-----------+--------+------------+`
	if got := pausedColumn(table, "pg-backup/pg-test"); got != "true" {
		t.Errorf("pausedColumn = %q, want true", got)
	}
	if got := pausedColumn(strings.Replace(table, "true ", "false", 1), "pg-backup/pg-test"); got != "false" {
		t.Errorf("pausedColumn = %q, want false", got)
	}
	if got := pausedColumn(table, "pg-backup/other"); got != "" {
		t.Errorf("pausedColumn of an absent schedule = %q", got)
	}
}
