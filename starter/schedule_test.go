package starter_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

const backupInventory = `all:
  children:
    pg-test:
      hosts:
        10.213.0.11: { pg_seq: 1, pg_role: primary }
        10.213.0.12: { pg_seq: 2, pg_role: replica }
      vars:
        pg_cluster: pg-test
        pgbackrest_retention_full: 3
        pg_backup_source: %s
    etcd:
      hosts: { 10.213.0.11: {} }
`

func backupCluster(t *testing.T, source string) (*inventory.Inventory, *inventory.Cluster) {
	t.Helper()
	inv, err := inventory.ParseInventory("/etc/pigwf/inventory.yml", []byte(strings.Replace(backupInventory, "%s", source, 1)))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	return inv, cl
}

// The input carries the inventory's source and retention; a replica source gives every member
// as a client of the pgBackRest servers; a type pgBackRest does not take is refused naming --type.
func TestPgBackupInput(t *testing.T) {
	inv, cl := backupCluster(t, "replica")
	in, err := starter.PgBackupInput(inv, cl, "incr", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if in.Source != "replica" || in.Type != "incr" || in.Spec.BackupRetention != 3 || in.RequestedBy != "alice" ||
		!slices.Equal(in.Spec.BackupClients, []string{"pg-test-1", "pg-test-2"}) || len(in.Nodes) != 2 || in.Nodes[1].Name != "pg-test-2" || len(in.Members) != 2 {
		t.Errorf("input %+v", in)
	}
	inv, cl = backupCluster(t, "leader")
	in, err = starter.PgBackupInput(inv, cl, "full", "alice")
	if err != nil || in.Spec.BackupClients != nil || in.Source != "leader" {
		t.Errorf("leader: %+v, %v", in, err)
	}
	if _, err := starter.PgBackupInput(inv, cl, "differential", "alice"); err == nil || !strings.Contains(err.Error(), `--type "differential" is not a backup type: give full, diff or incr`) {
		t.Errorf("a bad type: %v", err)
	}
}

func TestScheduleSpecOf(t *testing.T) {
	good := []struct {
		cron  string
		every time.Duration
		text  string
	}{
		{"0 2 * * *", 0, "cron 0 2 * * *"},
		{"*/15 1-5 1,15 jan-jun mon-fri", 0, ""},
		{"30 1 * * 7", 0, ""},
		{"CRON_TZ=Europe/Berlin 0 3 * * sun", 0, ""},
		{"@daily", 0, ""},
		{"", 6 * time.Hour, "every 6h0m0s"},
		{"", time.Second, ""},
	}
	for _, c := range good {
		spec, text, err := starter.ScheduleSpecOf(c.cron, c.every)
		if err != nil {
			t.Errorf("%q %s refused: %v", c.cron, c.every, err)
			continue
		}
		if c.text != "" && text != c.text {
			t.Errorf("%q %s: text %q, want %q", c.cron, c.every, text, c.text)
		}
		if (c.cron != "") != (len(spec.CronExpressions) == 1) || (c.every != 0) != (len(spec.Intervals) == 1) {
			t.Errorf("%q %s: spec %+v", c.cron, c.every, spec)
		}
	}
	bad := []struct {
		cron  string
		every time.Duration
		want  string
	}{
		{"0 2 * * *", time.Hour, "--cron and --every both given"},
		{"", 0, "no time given: give --cron"},
		{"", 500 * time.Millisecond, "--every 500ms: give whole seconds, at least 1s"},
		{"", 1500 * time.Millisecond, "--every 1.5s"},
		{"0 2 * *", 0, `--cron "0 2 * *": 4 fields; write five fields`},
		{"0 25 * * *", 0, `--cron "0 25 * * *": hour field "25": "25" is not a value from 0 to 23`},
		{"60 * * * *", 0, "minute field"},
		{"0 0 0 * *", 0, "day of month field"},
		{"0 0 * * 8", 0, "day of week field"},
		{"0 0 * foo *", 0, `month field "foo": "foo" is not a value from 1 to 12`},
		{"*/0 * * * *", 0, `step "0" is not a positive integer`},
		{"5-1 * * * *", 0, "range 5-1 ends before it starts"},
		{"@every 1h", 0, "give it as --every"},
		{"@sometimes", 0, "@sometimes is not one of @yearly"},
		{"CRON_TZ=Mars/Olympus 0 3 * * *", 0, `time zone "Mars/Olympus" is not known`},
		{"0 2 * * *; rm -rf /", 0, "fields"},
	}
	for _, c := range bad {
		_, _, err := starter.ScheduleSpecOf(c.cron, c.every)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %s: %v, want %q", c.cron, c.every, err, c.want)
		}
	}
}

// The schedule starts the runbook's workflow with the input the CLI builds, under the scheduled
// ID (never the ID of a run by hand), carrying pigwf's search attributes; overlapping runs are
// skipped; the schedule itself names its cluster and runbook.
func TestScheduleOptions(t *testing.T) {
	inv, cl := backupCluster(t, "leader")
	in, err := starter.PgBackupInput(inv, cl, "diff", "schedule pg-backup/pg-test")
	if err != nil {
		t.Fatal(err)
	}
	spec, text, _ := starter.ScheduleSpecOf("", 6*time.Hour)
	meta := starter.PgBackupMeta(in, starter.Request{By: "schedule pg-backup/pg-test (alice)"})
	s := starter.Schedule{Runbook: workflows.PgBackupRunbook, Workflow: workflows.PgBackupName, Cluster: "pg-test", Input: in, Meta: meta,
		Spec: spec, SpecText: text, CreatedBy: "alice", Paused: true}
	o := s.Options("pigwf")
	act, ok := o.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		t.Fatalf("action %T", o.Action)
	}
	if o.ID != "pg-backup/pg-test" || act.ID != "pg-backup/pg-test/scheduled" || act.ID == workflows.WorkflowID(workflows.PgBackupRunbook, "pg-test") ||
		act.Workflow != workflows.PgBackupName || act.TaskQueue != "pigwf" || !o.Paused || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Errorf("options %+v, action %+v", o, act)
	}
	if len(act.Args) != 1 || !reflect.DeepEqual(act.Args[0], in) {
		t.Errorf("args %+v, want the input PgBackupInput built", act.Args)
	}
	if act.StaticSummary != meta.Summary || !strings.Contains(act.StaticSummary, "diff backup on the leader") {
		t.Errorf("summary %q", act.StaticSummary)
	}
	if v, ok := act.TypedSearchAttributes.GetKeyword(workflows.SearchAttrCluster); !ok || v != "pg-test" {
		t.Errorf("the runs' PgCluster: %q %v", v, ok)
	}
	if v, ok := act.TypedSearchAttributes.GetKeyword(workflows.SearchAttrRunbook); !ok || v != "pg-backup" {
		t.Errorf("the runs' Runbook: %q %v", v, ok)
	}
	if v, ok := o.TypedSearchAttributes.GetKeyword(workflows.SearchAttrCluster); !ok || v != "pg-test" {
		t.Errorf("the schedule's PgCluster: %q %v", v, ok)
	}
	if o.Memo["pigwf-spec"] != "every 6h0m0s" {
		t.Errorf("memo %v", o.Memo)
	}
}

// Against a dev server: created, listed with its next times, refused a second time, paused and
// resumed, deleted; a deleted or unknown schedule is named as not found.
func TestScheduleLifecycle(t *testing.T) {
	c := temporalServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inv, cl := backupCluster(t, "leader")
	in, err := starter.PgBackupInput(inv, cl, "full", "schedule")
	if err != nil {
		t.Fatal(err)
	}
	spec, text, _ := starter.ScheduleSpecOf("0 2 * * *", 0)
	s := starter.Schedule{Runbook: workflows.PgBackupRunbook, Workflow: workflows.PgBackupName, Cluster: "pg-test", Input: in,
		Meta: starter.PgBackupMeta(in, starter.Request{By: "schedule"}), Spec: spec, SpecText: text, CreatedBy: "alice", Paused: true}
	id, err := c.CreateSchedule(ctx, s)
	if err != nil || id != "pg-backup/pg-test" {
		t.Fatalf("create: %q %v", id, err)
	}
	var exists *starter.ScheduleExistsError
	if _, err := c.CreateSchedule(ctx, s); !errors.As(err, &exists) {
		t.Errorf("a second create: %v", err)
	}
	listed := func(cluster string) []starter.ScheduleRow {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			rows, err := c.ListSchedules(ctx, cluster)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) > 0 || time.Now().After(deadline) {
				return rows
			}
		}
	}
	rows := listed("pg-test")
	if len(rows) != 1 || rows[0].ID != id || rows[0].When != "cron 0 2 * * *" || !rows[0].Paused || rows[0].Runbook != "pg-backup" || rows[0].LastRun != "" {
		t.Fatalf("rows %+v", rows)
	}
	if next := rows[0].Next; len(next) == 0 || next[0].UTC().Hour() != 2 || next[0].Minute() != 0 {
		t.Errorf("next runs %v, want 02:00 UTC", next)
	}
	if other, err := c.ListSchedules(ctx, "pg-other"); err != nil || len(other) != 0 {
		t.Errorf("another cluster's schedules: %+v %v", other, err)
	}
	if _, err := c.PauseSchedule(ctx, workflows.PgBackupRunbook, "pg-test", false, "resumed by the test"); err != nil {
		t.Fatal(err)
	}
	d, err := c.C.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil || d.Schedule.State.Paused {
		t.Errorf("after resume: %+v %v", d, err)
	}
	// A run the schedule starts (triggered now; no worker here, so it stays open) has the
	// scheduled ID and pigwf's attributes: the CLI's per-cluster check sees it and refuses a run
	// by hand, naming it, and the list shows it as the last run.
	if err := c.C.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var last starter.ScheduleRow
	for deadline := time.Now().Add(30 * time.Second); last.LastRun == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		last = listed("pg-test")[0]
	}
	if !strings.HasPrefix(last.LastRun, "pg-backup/pg-test/scheduled-") || last.LastResult != "running" {
		t.Fatalf("last run %q (%s)", last.LastRun, last.LastResult)
	}
	// Visibility lists a run a moment after it starts, for the CLI's check as for this test.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		runs, err := c.OpenRunsOn(ctx, "pg-test")
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].WorkflowID == last.LastRun {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled run is not listed on pg-test: %+v", runs)
		}
	}
	var busy *starter.BusyError
	if _, err := c.Start(ctx, workflows.PgBackupRunbook, workflows.PgBackupName, "pg-test", in, starter.RunMeta{}); !errors.As(err, &busy) {
		t.Fatalf("a run by hand beside the scheduled one: %v", err)
	}
	if busy == nil || busy.WorkflowID != last.LastRun {
		t.Errorf("the run by hand: busy %+v, want the scheduled run %s", busy, last.LastRun)
	}
	if err := c.C.TerminateWorkflow(ctx, last.LastRun, "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSchedule(ctx, workflows.PgBackupRunbook, "pg-test"); err != nil {
		t.Fatal(err)
	}
	var nf *starter.ScheduleNotFoundError
	if _, err := c.DeleteSchedule(ctx, workflows.PgBackupRunbook, "pg-test"); !errors.As(err, &nf) {
		t.Errorf("a second delete: %v", err)
	}
	if _, err := c.DeleteSchedule(ctx, "switchover", "pg-test"); err == nil || !strings.Contains(err.Error(), "--runbook switchover: schedules run pg-backup") {
		t.Errorf("a runbook schedules do not run: %v", err)
	}
}

func TestPrintSchedules(t *testing.T) {
	var b strings.Builder
	next := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	starter.PrintSchedules(&b, []starter.ScheduleRow{{ID: "pg-backup/pg-test", When: "every 6h0m0s", Paused: true, Next: []time.Time{next},
		LastRun: "pg-backup/pg-test/scheduled-2026-11-30T20:00:00Z", LastStarted: next.Add(-6 * time.Hour), LastResult: "failed: pg-backup of pg-test refused: cluster pg-test is busy"}})
	out := b.String()
	for _, want := range []string{"pg-backup/pg-test", "every 6h0m0s", "true", "2026-12-01 02:00:00", "2026-11-30 20:00:00 failed",
		"pg-backup/pg-test: last run pg-backup/pg-test/scheduled-2026-11-30T20:00:00Z: failed: pg-backup of pg-test refused: cluster pg-test is busy"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	starter.PrintSchedules(&b, nil)
	if !strings.Contains(b.String(), "No schedules.") {
		t.Errorf("an empty list:\n%s", b.String())
	}
}
