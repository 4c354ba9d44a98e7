package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pitrLab is a lab cluster a PITR test works on: its status, the worker's home, the inventory
// the runs use, and the worker (replaced when a test kills it).
type pitrLab struct {
	t      *testing.T
	st     *lab.Status
	home   string
	inv    string
	worker *workerProc
	c      *starter.Client
}

const pitrID = "pitr-restore/pg-test"

// newPitrLab creates pg-test on a lab of its own; sync puts the inventory in synchronous mode.
func newPitrLab(t *testing.T, name, subnet string, sync bool) *pitrLab {
	t.Helper()
	st, home := clusterLab(t, name, subnet)
	l := &pitrLab{t: t, st: st, home: home, inv: st.Inventory}
	if sync {
		b, err := os.ReadFile(st.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		const clusterLine = "        pg_cluster: pg-test\n"
		if !strings.Contains(string(b), clusterLine) {
			t.Fatalf("the lab inventory has no %q line:\n%s", clusterLine, b)
		}
		l.inv = home + "/inventory-sync.yml"
		if err := os.WriteFile(l.inv, []byte(strings.Replace(string(b), clusterLine, clusterLine+"        pg_synchronous_mode: true\n", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l.worker = startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", l.inv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	l.c = dial(t)
	return l
}

// restartWorker is a worker crash: SIGKILL, then a new worker process.
func (l *pitrLab) restartWorker() {
	l.worker.kill()
	l.worker = startWorker(l.t, l.home)
}

// sql runs SQL on the current leader as the inventory's user.
func (l *pitrLab) sql(q string) string {
	l.t.Helper()
	addr := l.addrOf(leaderOf(l.t, l.home, l.st))
	out, err := psqlAt(addr, q)
	if err != nil {
		l.t.Fatalf("psql on %s: %v\n%s", addr, err, out)
	}
	return out
}

func (l *pitrLab) addrOf(member string) string {
	for i, n := range l.st.Nodes {
		if fmt.Sprintf("pg-test-%d", i+1) == member {
			return n.Addr
		}
	}
	l.t.Fatalf("no member %q", member)
	return ""
}

// insert adds rows ids to the marker table, each in its own transaction (so each has a commit
// record), and returns the last one's transaction id.
func (l *pitrLab) insert(ids ...int) string {
	l.t.Helper()
	var xid string
	for _, id := range ids {
		out := l.sql(fmt.Sprintf("INSERT INTO pitr_rows(id) VALUES (%d) RETURNING xmin", id))
		xid, _, _ = strings.Cut(out, "\n") // psql prints the command tag after the row
	}
	return xid
}

// rowsEverywhere asserts every member holds exactly want in the marker table, read over the lab
// network with psql as a client would (replicas after they replayed what the leader has).
func (l *pitrLab) rowsEverywhere(what string, want []int) {
	l.t.Helper()
	wantText := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(want)), ","), "[]")
	for i, n := range l.st.Nodes {
		var got string
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := psqlAt(n.Addr, "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM pitr_rows")
			got = out
			if err == nil && out == wantText {
				break
			}
			if time.Now().After(deadline) {
				l.t.Errorf("%s: pg-test-%d holds rows %q (err %v), want %q", what, i+1, got, err, wantText)
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// haState is `pigwf ha list --json`.
type haState struct {
	Leader   string `json:"leader"`
	Timeline uint32 `json:"timeline"`
	Members  []struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		State    string `json:"state"`
		Timeline uint32 `json:"timeline"`
	} `json:"members"`
}

// healthy waits for `pigwf ha list` to show a leader and two streaming replicas, all on one
// timeline, and returns it.
func (l *pitrLab) healthy(what string) haState {
	l.t.Helper()
	var h haState
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := pigwf(l.t, l.home, "ha", "list", "--cluster", "pg-test", "--inventory", l.inv, "--json")
		h = haState{}
		if err == nil && jsonUnmarshal(out, &h) == nil && h.Leader != "" && len(h.Members) == 3 {
			streaming := 0
			for _, m := range h.Members {
				if m.Timeline == h.Timeline && (m.State == "streaming" || m.Name == h.Leader) {
					streaming++
				}
			}
			if streaming == 3 {
				return h
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: the cluster is not healthy after 60 s: %+v %v\n%s", what, h, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leaderClock is the leader's clock, in the zone given (an offset such as '+05:30'), as
// RFC 3339 with microseconds: the form a DBA copies from psql.
func (l *pitrLab) leaderClock(offset string) string {
	l.t.Helper()
	return l.sql(fmt.Sprintf(`SELECT to_char(clock_timestamp() AT TIME ZONE INTERVAL '%s', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '%s'`, offset, offset))
}

// start runs `pigwf start pitr-restore --wait` with args in the background.
func (l *pitrLab) start(args ...string) <-chan string {
	done := make(chan string, 1)
	go func() {
		out, err := pigwf(l.t, l.home, append([]string{"start", "pitr-restore", "--cluster", "pg-test", "--inventory", l.inv, "--as", "carol", "--wait"}, args...)...)
		done <- fmt.Sprintf("%s\nexit: %v", out, err)
	}()
	return done
}

// pending waits until the run started by ch waits for a decision and returns what it asks; a
// run whose CLI ended first fails the test with its output.
func (l *pitrLab) pending(ch <-chan string) workflows.ApprovalState {
	l.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		runs, err := l.c.PendingApprovals(context.Background())
		if err == nil {
			for _, r := range runs {
				if r.WorkflowID == pitrID {
					return r.State
				}
			}
		}
		select {
		case out := <-ch:
			l.t.Fatalf("the pitr-restore run ended before it waited for approval:\n%s", out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	l.t.Fatalf("%s never waited for approval", pitrID)
	return workflows.ApprovalState{}
}

func (l *pitrLab) approve(extra ...string) {
	l.t.Helper()
	if out, err := pigwf(l.t, l.home, append([]string{"approve", pitrID, "--by", "alice"}, extra...)...); err != nil {
		l.t.Fatalf("approve %v: %v\n%s", extra, err, out)
	}
}

// result waits for the run's CLI to end.
func (l *pitrLab) result(ch <-chan string) string {
	l.t.Helper()
	select {
	case out := <-ch:
		return out
	case <-time.After(6 * time.Minute):
		l.t.Fatal("the pitr-restore run did not end")
		return ""
	}
}

// restore runs one approved PITR that must succeed and returns the run's result.
func (l *pitrLab) restore(what string, args ...string) workflows.PITRRestoreResult {
	l.t.Helper()
	ch := l.start(args...)
	l.pending(ch)
	l.approve()
	out := l.result(ch)
	if !strings.Contains(out, "exit: <nil>") {
		l.t.Fatalf("%s: pitr-restore failed:\n%s", what, out)
	}
	return l.lastResult(what)
}

func (l *pitrLab) lastResult(what string) workflows.PITRRestoreResult {
	l.t.Helper()
	var res workflows.PITRRestoreResult
	if err := l.c.C.GetWorkflow(context.Background(), pitrID, "").Get(context.Background(), &res); err != nil {
		l.t.Logf("%s: the run's result: %v", what, err)
	}
	return res
}

// waitStep waits until the run's progress shows step (on node) in state.
func (l *pitrLab) waitStep(node, step, state string) {
	l.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if p, err := l.c.Progress(context.Background(), pitrID, ""); err == nil {
			for _, s := range p.Steps {
				if s.Node == node && s.Step == step && s.State == state {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("step %s/%s never reached %s", node, step, state)
}

// untouched asserts a refused, rejected, timed-out or rolled-back run left the cluster as it was.
func (l *pitrLab) untouched(what string, before haState, rows []int) {
	l.t.Helper()
	after := l.healthy(what)
	if after.Leader != before.Leader || after.Timeline != before.Timeline {
		l.t.Errorf("%s: leader %s on timeline %d, was %s on %d", what, after.Leader, after.Timeline, before.Leader, before.Timeline)
	}
	for i := range l.st.Nodes {
		if left := nodeRun(l.t, l.st, i+1, "ls -d /pg/data.before-pitr-* 2>/dev/null || true"); strings.TrimSpace(left) != "" {
			l.t.Errorf("%s: pg-test-%d still has %s aside", what, i+1, strings.TrimSpace(left))
		}
	}
	l.rowsEverywhere(what, rows)
}

// restoredCleanly asserts what a finished PITR leaves: every member on the new timeline, a new
// full backup listed on it, `pgbackrest check` passing, no recovery settings or signal files on
// the leader, the timeline's history file archived.
func (l *pitrLab) restoredCleanly(what string, res workflows.PITRRestoreResult) haState {
	l.t.Helper()
	h := l.healthy(what)
	switch {
	case h.Timeline == res.NewTimeline && h.Leader != res.Plan.RestoreNode,
		h.Timeline < res.NewTimeline:
		l.t.Errorf("%s: ha list says %s leads timeline %d; the run says %s and %d", what, h.Leader, h.Timeline, res.Plan.RestoreNode, res.NewTimeline)
	case h.Timeline > res.NewTimeline:
		// The lab's etcd shares one disk with everything else and can stall past the agents'
		// sub-second lease under a burst of writes: a failover after the restore is the agents'
		// business, and the rows below still have to be the restored ones.
		l.t.Logf("%s: a failover after the restore: %s leads timeline %d (the run promoted %s to %d)", what, h.Leader, h.Timeline, res.Plan.RestoreNode, res.NewTimeline)
	}
	out, err := pigwf(l.t, l.home, "backup", "list", "--cluster", "pg-test", "--inventory", l.inv, "--json")
	var bl starter.BackupList
	if err != nil || jsonUnmarshal(out, &bl) != nil {
		l.t.Fatalf("%s: backup list: %v\n%s", what, err, out)
	}
	// The run's full backup is on the timeline it promoted (a failover since then moved on).
	if !slices.ContainsFunc(bl.Backups, func(b starter.BackupRow) bool { return b.Type == "full" && b.Timeline == res.NewTimeline }) {
		l.t.Errorf("%s: no full backup on the restored timeline %d: %+v", what, res.NewTimeline, bl.Backups)
	}
	leader := slices.Index([]string{"pg-test-1", "pg-test-2", "pg-test-3"}, h.Leader) + 1
	nodeRun(l.t, l.st, leader, "runuser -u postgres -- pgbackrest --stanza=pg-test check")
	if left := nodeRun(l.t, l.st, leader, "grep -E '^[[:space:]]*(restore_command|recovery_target|archive_mode)' /pg/data/postgresql.auto.conf; ls /pg/data/recovery.signal /pg/data/standby.signal 2>/dev/null; true"); strings.TrimSpace(left) != "" {
		l.t.Errorf("%s: left behind on the leader: %s", what, left)
	}
	if got := strings.TrimSpace(nodeRun(l.t, l.st, leader, "runuser -u postgres -- psql -X -At -h /var/run/postgresql -c 'SHOW archive_mode'")); got != "on" {
		l.t.Errorf("%s: archive_mode on the leader is %q", what, got)
	}
	inv, err := inventory.LoadInventory(l.inv)
	if err != nil {
		l.t.Fatal(err)
	}
	cl, err := inv.Cluster("pg-test")
	if err != nil {
		l.t.Fatal(err)
	}
	nodeRun(l.t, l.st, leader, fmt.Sprintf("ls %s/archive/pg-test/*/%08X.history", cl.PG.BackupRepoPath, h.Timeline))
	return h
}

// PITRRestore on the lab, asynchronous mode: refusals and rejections that change nothing, a
// target no WAL reaches rolled back, a time target given with a +05:30 offset under --inspect
// with the worker killed during the restore, the inspect wait and the re-creation of the
// replicas, a kill -9 failover right after, then earlier and earlier points by restore point
// name, xid and LSN, each on a new timeline never used before.
func TestPITRRestoreOnLab(t *testing.T) {
	requireIntegration(t)
	l := newPitrLab(t, "pwpitr", "10.213.23", false)

	l.sql("CREATE TABLE pitr_rows(id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
	l.insert(1)
	lsn1 := l.sql("SELECT pg_current_wal_lsn()")
	xid2 := l.insert(2)
	l.insert(3)
	if out, err := pigwf(t, l.home, "restore-point", "--cluster", "pg-test", "--inventory", l.inv, "rp-3"); err != nil {
		t.Fatalf("restore-point: %v\n%s", err, out)
	}
	l.insert(4, 5, 6)
	time.Sleep(300 * time.Millisecond)
	t2 := l.leaderClock("+05:30")
	time.Sleep(300 * time.Millisecond)
	l.insert(7, 8, 9)
	time.Sleep(300 * time.Millisecond)
	afterAll := l.leaderClock("-03:00")
	all := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	before := l.healthy("before")
	timelines := []uint32{before.Timeline}

	// 1. Refused before any change: a time with no zone (by the CLI), a target before every
	// backup (by the precheck, with the window in the message).
	if out, err := pigwf(t, l.home, "start", "pitr-restore", "--cluster", "pg-test", "--inventory", l.inv, "--target-time", "2026-11-30 10:00:00"); err == nil || !strings.Contains(out, "--target-time") || !strings.Contains(out, "zone") {
		t.Errorf("1: a time without a zone: %v\n%s", err, out)
	}
	out := l.result(l.start("--target-time", "2020-01-01T00:00:00+02:00"))
	if !strings.Contains(out, "refused, nothing was changed") || !strings.Contains(out, "timeline 1: from ") {
		t.Errorf("1: a target before every backup:\n%s", out)
	}
	l.untouched("1", before, all)

	// 2. Rejected, and timed out: nothing changes.
	ch := l.start("--target-time", t2)
	l.pending(ch)
	l.approve("--reject")
	if out := l.result(ch); !strings.Contains(out, "nothing was changed") {
		t.Errorf("2: rejected:\n%s", out)
	}
	if out := l.result(l.start("--target-time", t2, "--approval-timeout", "2s")); !strings.Contains(out, "timed out") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("2: timed out:\n%s", out)
	}
	l.untouched("2", before, all)

	// 3. A target after the last commit, which no WAL reaches: recovery ends short of it, the run
	// fails fast and puts the original data back; what the restore left is kept, not deleted.
	start := time.Now()
	ch = l.start("--target-time", afterAll)
	l.pending(ch)
	l.approve()
	out = l.result(ch)
	if !strings.Contains(out, "was not reached") || !strings.Contains(out, "original data directories are back") {
		t.Errorf("3: a target no WAL reaches:\n%s", out)
	}
	t.Logf("3: a target no WAL reaches: rolled back in %s", time.Since(start).Round(100*time.Millisecond))
	l.untouched("3", before, all)
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, pitrID) // a run rolled back before its promotion
	}
	if kept := nodeRun(t, l.st, 1, "ls -d /pg/data.pitr-failed-* | wc -l"); strings.TrimSpace(kept) != "1" {
		t.Errorf("3: the failed restore was not kept aside: %q", kept)
	}

	// 4. A time target with a +05:30 offset, --inspect, and the worker killed during the restore,
	// during the inspect wait and while the replicas are re-created.
	ch = l.start("--target-time", t2, "--inspect")
	l.pending(ch)
	l.approve()
	l.waitStep("pg-test-1", "restore", workflows.StateRunning)
	l.restartWorker()
	st := l.pending(ch) // the inspection
	if !strings.Contains(st.Plan, "last replayed commit at") || !strings.Contains(st.Plan, "recovery stopping before commit") {
		t.Errorf("4: the inspection does not show where replay stopped: %s", st.Plan)
	}
	// Paused at the target, with the recovery settings pgBackRest wrote: the paused agent left them alone.
	if got := nodeRun(t, l.st, 1, "test -f /pg/data/recovery.signal && grep -c '^restore_command' /pg/data/postgresql.auto.conf; runuser -u postgres -- psql -X -At -h /var/run/postgresql -c 'SELECT pg_get_wal_replay_pause_state()'"); got != "1\npaused\n" {
		t.Errorf("4: at the inspection, recovery.signal/restore_command/pause state: %q", got)
	}
	l.restartWorker()
	time.Sleep(time.Second) // the new worker polls; a decision reaches the run either way
	l.approve()
	l.waitStep("", "members", workflows.StateRunning)
	l.restartWorker()
	out = l.result(ch)
	if !strings.Contains(out, "exit: <nil>") {
		t.Fatalf("4: pitr-restore with worker kills failed:\n%s", out)
	}
	res := l.lastResult("4")
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, pitrID) // inspect, and three workers killed
	}
	if res.Inspection == nil || !res.Inspection.Approved() || !strings.Contains(res.Proof.StopLine, "recovery stopping before commit") {
		t.Errorf("4: inspection %+v, proof %+v", res.Inspection, res.Proof)
	}
	if n := strings.TrimSpace(nodeRun(t, l.st, 1, "grep -c 'restored backup' /var/lib/pigwf/journal.log || true")); n != "2" { // run 3's restore and this one
		t.Errorf("4: %s restores in pg-test-1's journal, want 2 (one per run that restored)", n)
	}
	h := l.restoredCleanly("4", res)
	l.rowsEverywhere("4: time target "+t2, []int{1, 2, 3, 4, 5, 6})
	timelines = append(timelines, h.Timeline)

	// 5. A kill -9 failover right after keeps every acknowledged write.
	l.sql("CREATE TABLE ack(id int PRIMARY KEY); INSERT INTO ack SELECT generate_series(1, 100)")
	leader := slices.Index([]string{"pg-test-1", "pg-test-2", "pg-test-3"}, h.Leader) + 1
	nodeRun(t, l.st, leader, "kill -9 $(head -n1 /pg/data/postmaster.pid)")
	deadline := time.Now().Add(30 * time.Second)
	for took := false; !took; {
		for _, n := range l.st.Nodes {
			if out, err := psqlAt(n.Addr, "INSERT INTO ack VALUES (101) RETURNING (SELECT count(*) FROM ack)"); err == nil {
				if first, _, _ := strings.Cut(out, "\n"); first != "100" {
					t.Errorf("5: rows before the insert on the new primary %s: %q, want the 100 acknowledged", n.Addr, out)
				}
				took = true
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("5: no primary took writes within 30 s of the crash")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h = l.healthy("5")
	timelines = append(timelines, h.Timeline)

	// 6. A second PITR, to an earlier point: the restore point made before row 4.
	res = l.restore("6", "--target-name", "rp-3")
	h = l.restoredCleanly("6", res)
	l.rowsEverywhere("6: restore point rp-3", []int{1, 2, 3})
	timelines = append(timelines, h.Timeline)

	// 7. Earlier again, by transaction id: row 2's commit, inclusive.
	res = l.restore("7", "--target-xid", xid2)
	h = l.restoredCleanly("7", res)
	l.rowsEverywhere("7: xid "+xid2, []int{1, 2})
	timelines = append(timelines, h.Timeline)

	// 8. And by WAL position: just after row 1's commit.
	res = l.restore("8", "--target-lsn", lsn1)
	h = l.restoredCleanly("8", res)
	l.rowsEverywhere("8: lsn "+lsn1, []int{1})
	timelines = append(timelines, h.Timeline)

	// Every run got a timeline never used before.
	for i := 1; i < len(timelines); i++ {
		if timelines[i] <= slices.Max(timelines[:i]) {
			t.Errorf("timeline ids %v: %d reuses or goes back", timelines, timelines[i])
		}
	}
	t.Logf("timelines: %v", timelines)

	// 9. --cleanup: the kept directories are listed, deleted only after an approval, and the
	// cluster's own data directories stay.
	out, err := pigwf(t, l.home, "start", "pitr-restore", "--cluster", "pg-test", "--inventory", l.inv, "--cleanup", "--dry-run")
	if err != nil || !strings.Contains(out, ".before-pitr-") || !strings.Contains(out, "would be deleted") {
		t.Errorf("9: cleanup dry run: %v\n%s", err, out)
	}
	ch = l.start("--cleanup")
	if st := l.pending(ch); !strings.Contains(st.Plan, ".before-pitr-") || !strings.Contains(st.Plan, ".pitr-failed-") {
		t.Errorf("9: the cleanup's plan does not list the kept directories: %s", st.Plan)
	}
	l.approve()
	if out := l.result(ch); !strings.Contains(out, "exit: <nil>") {
		t.Errorf("9: cleanup failed:\n%s", out)
	}
	for i := range l.st.Nodes {
		if left := nodeRun(t, l.st, i+1, "ls -d /pg/data.* 2>/dev/null || true; test -f /pg/data/PG_VERSION && echo live"); strings.TrimSpace(left) != "live" {
			t.Errorf("9: pg-test-%d after the cleanup: %q, want only the live data directory", i+1, left)
		}
	}
	l.healthy("9")
}

// PITRRestore in synchronous mode: after the restore a synchronous standby is named again, and
// the rows before the target are on every member.
func TestPITRRestoreSyncMode(t *testing.T) {
	requireIntegration(t)
	l := newPitrLab(t, "pwpitrs", "10.213.24", true)
	// pgBackRest records the create's backup stop in whole seconds: a target must be a second past it.
	time.Sleep(1500 * time.Millisecond)
	l.sql("CREATE TABLE pitr_rows(id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
	l.insert(1, 2, 3)
	time.Sleep(300 * time.Millisecond)
	target := l.leaderClock("+09:00")
	time.Sleep(300 * time.Millisecond)
	l.insert(4, 5)
	res := l.restore("sync", "--target-time", target)
	h := l.restoredCleanly("sync", res)
	l.rowsEverywhere("sync: time target "+target, []int{1, 2, 3})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := pigwf(t, l.home, "ha", "list", "--cluster", "pg-test", "--inventory", l.inv)
		if strings.Count(out, "Sync Standby") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no synchronous standby after the restore:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// A synchronous commit is acknowledged again (the new leader's synchronous_standby_names names a streaming standby).
	l.sql("INSERT INTO pitr_rows(id) VALUES (10)")
	t.Logf("sync: restored to %s on timeline %s", target, strconv.FormatUint(uint64(h.Timeline), 10))
}
