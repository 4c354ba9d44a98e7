package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/starter"
)

// TestBenchPITRRestore (make bench): a point-in-time restore of the whole 3-node pg-test against
// its floor, the same restore done by hand on one node (pgbackrest restore, replay to the target,
// promote), measured first in the same run on the same node from the same backup set. Goal: the
// run, from its approval, under 2x the floor.
func TestBenchPITRRestore(t *testing.T) {
	if os.Getenv("PIGWF_BENCH") != "1" {
		t.Skip("benchmark: run with `make bench`")
	}
	requireIntegration(t)
	const (
		id      = "pitr-restore/pg-test"
		pgbin   = "/usr/lib/postgresql/15/bin" // pg_ctl and pgbench are not on Debian's PATH
		floorPG = "/pg/floor-data"
	)
	st, home := clusterLab(t, "pwbench3", "10.213.33")
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	leader := st.Nodes[0].Addr
	sql := func(host, q string) string {
		t.Helper()
		out, err := psqlAt(host, q)
		if err != nil {
			t.Fatalf("psql %s: %s: %v\n%s", host, q, err, out)
		}
		return out
	}

	// A database big enough that restoring it takes measurable time, then a full backup of it
	// (both the floor and the run restore this one: the newest that stopped before the target).
	size := nodeRun(t, st, 1, "out=$(runuser -u postgres -- "+pgbin+"/pgbench -h /var/run/postgresql -i -s 20 -q postgres 2>&1) || { echo \"$out\"; exit 1; }\n"+
		`runuser -u postgres -- psql -X -At -h /var/run/postgresql -c "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database"`)
	nodeRun(t, st, 1, "runuser -u postgres -- pgbackrest --stanza=pg-test --type=full backup")
	info, err := pitr.ParseInfo([]byte(nodeRun(t, st, 1,
		"runuser -u postgres -- pgbackrest --stanza=pg-test --output=json info 2>/pg/tmp/bench-info.err || { cat /pg/tmp/bench-info.err; exit 1; }")))
	if err != nil {
		t.Fatal(err)
	}
	stanza, err := info.Stanza("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	var label string
	var stop int64
	for _, b := range stanza.Backup {
		if b.Type == pitr.BackupFull && !b.Error && b.Timestamp.Stop >= stop {
			label, stop = b.Label, b.Timestamp.Stop
		}
	}
	if label == "" {
		t.Fatalf("pgbackrest info lists no full backup: %+v", stanza.Backup)
	}

	// Rows 1-100 commit before the target, 101-200 after it; a restore keeps exactly 100.
	sql(leader, "CREATE TABLE bench_pitr(id int PRIMARY KEY); INSERT INTO bench_pitr SELECT generate_series(1, 100)")
	target := sql(leader, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z'`)
	targetTime, err := pitr.ParseTime(target)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sql(leader, "INSERT INTO bench_pitr SELECT generate_series(101, 200)")
	// Replay stops at the first commit after the target, so that commit must be in the archive
	// before the floor restores: wait for the archiver, not only for the switch.
	nodeRun(t, st, 1, `q() { runuser -u postgres -- psql -X -At -h /var/run/postgresql -c "$1"; }
seg=$(q "SELECT pg_walfile_name(pg_switch_wal())")
for i in $(seq 1 300); do [ "$(q "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver")" = t ] && exit 0; sleep 0.1; done
echo "WAL $seg not archived after 30 s" >&2; exit 1`)

	// The floor, on node 1 beside the live leader: a scratch data directory, its own port, and
	// archiving off (in the restored settings and on the command line), so nothing it writes
	// reaches the live repository (its promotion must not claim a timeline the run will need).
	stopFloor := func() {
		nodeRun(t, st, 1, "runuser -u postgres -- "+pgbin+"/pg_ctl -D "+floorPG+" -m immediate stop >/dev/null 2>&1; rm -rf "+floorPG)
	}
	nodeRun(t, st, 1, "rm -rf "+floorPG+" && mkdir -m 700 "+floorPG+" && chown postgres:postgres "+floorPG)
	t.Cleanup(stopFloor) // when the test stops half-way
	t0 := time.Now()
	nodeRun(t, st, 1, fmt.Sprintf("runuser -u postgres -- pgbackrest --stanza=pg-test --set=%s --type=time --target=%s --target-action=promote --archive-mode=off --pg1-path=%s restore",
		sshrun.ShellQuote(label), sshrun.ShellQuote(pitr.FormatTime(targetTime)), floorPG))
	floorRestore := time.Since(t0)
	t1 := time.Now()
	nodeRun(t, st, 1, fmt.Sprintf(`log() { tail -n 20 /pg/log/floor.log >&2; }
runuser -u postgres -- %s/pg_ctl -D %s -o "-p 5499 -c logging_collector=off -c archive_mode=off -c port=5499" -l /pg/log/floor.log -w -t 600 start >/dev/null || { log; exit 1; }
for i in $(seq 1 6000); do [ "$(runuser -u postgres -- psql -X -At -p 5499 -h /var/run/postgresql -c 'SELECT pg_is_in_recovery()')" = f ] && exit 0; sleep 0.1; done
echo "not promoted after 600 s" >&2; log; exit 1`, pgbin, floorPG))
	floorRecovery := time.Since(t1)
	floor := floorRestore + floorRecovery
	stopFloor()

	// The run. It waits for an approver, and that wait is human time: the clock starts at the
	// approval and stops at the run's end in its history.
	c := dial(t)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := pigwf(t, home, "start", "pitr-restore", "--cluster", "pg-test", "--inventory", st.Inventory, "--as", "carol", "--target-time", target, "--wait")
		done <- result{out, err}
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		runs, err := c.PendingApprovals(context.Background())
		if err == nil && slices.ContainsFunc(runs, func(p starter.Pending) bool { return p.WorkflowID == id }) {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("pitr-restore ended before its approval: %v\n%s", r.err, r.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal(id + " never waited for approval")
		}
	}
	approved := time.Now()
	if out, err := pigwf(t, home, "approve", id, "--by", "alice"); err != nil {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("pitr-restore: %v\n%s", r.err, r.out)
		}
	case <-time.After(15 * time.Minute):
		t.Fatal("the pitr-restore run did not end")
	}
	hist, err := historyOf(c, id)
	if err != nil {
		t.Fatal(err)
	}
	spans, byID := benchSpans(hist)
	step := func(activityID string) *benchSpan {
		t.Helper()
		s, ok := byID[activityID]
		if !ok || s.end.IsZero() {
			t.Fatalf("the history of %s has no completed activity %s", id, activityID)
		}
		return s
	}
	end := hist.Events[len(hist.Events)-1].EventTime.AsTime()
	wall := end.Sub(approved)
	serving := step("control/members").end.Sub(approved)
	working := step("control/verify").end.Sub(step("control/pause-ha").start)

	var b strings.Builder
	fmt.Fprintf(&b, "BENCH pitr-restore pg-test, 3 nodes on the lab, pgbench scale 20 (%s), backup %s, target %s\n", strings.TrimSpace(size), label, target)
	fmt.Fprintf(&b, "BENCH   floor, one node by hand: pgbackrest restore %.2fs + recovery to the target and promotion %.2fs = %.2fs\n",
		floorRestore.Seconds(), floorRecovery.Seconds(), floor.Seconds())
	fmt.Fprintf(&b, "BENCH   PITR wall, approval to the run's end (the wait for approval is human time, excluded): %.2fs = %.2fx the floor   goal < 2x the single-node floor\n",
		wall.Seconds(), wall.Seconds()/floor.Seconds())
	fmt.Fprintf(&b, "BENCH   approval to members done (back in service, every member streaming; the new full backup and check follow): %.2fs = %.2fx the floor\n",
		serving.Seconds(), serving.Seconds()/floor.Seconds())
	fmt.Fprintf(&b, "BENCH   steps from pause-ha's start to verify's end (parallel steps overlap, so this is elapsed, not summed): %.2fs\n", working.Seconds())
	fmt.Fprintf(&b, "BENCH   %-28s %10s %9s\n", "step (member/step)", "from appr.", "takes")
	for _, s := range spans {
		takes := "-" // never completed (a failed notification does not fail the run)
		if !s.end.IsZero() {
			takes = fmt.Sprintf("%.2fs", s.end.Sub(s.start).Seconds())
		}
		fmt.Fprintf(&b, "BENCH   %-28s %9.2fs %9s\n", s.id, s.start.Sub(approved).Seconds(), takes)
	}
	fmt.Print(b.String())
	if wall > 2*floor {
		t.Logf("PITR wall %s is over the goal of 2x the single-node floor (%s)", wall.Round(10*time.Millisecond), floor.Round(10*time.Millisecond))
	}

	// What the restore promised: every member holds the rows committed before the target only.
	for _, n := range st.Nodes {
		if got := sql(n.Addr, "SELECT count(*) FROM bench_pitr"); got != "100" {
			t.Errorf("%s: %s rows in bench_pitr after the restore, want the 100 committed before the target", n.Addr, got)
		}
	}
}
