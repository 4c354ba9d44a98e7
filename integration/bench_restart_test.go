package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pigwf/pigwf/chaos"
	"github.com/pigwf/pigwf/deploy/lab"
	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// TestBenchRollingRestart (make bench, issue #13): a rolling restart that applies a postmaster
// setting (shared_buffers) to every member of a 3-node cluster in synchronous mode under a
// steady writer, done by pigwf (`pigwf config set`, then `pigwf start pg-restart --pending`: the
// replicas one at a time through the HA agents, an approved switchover, the old primary), beside
// the same restart done by hand with pg_ctl over SSH on a plain PostgreSQL 15 streaming cluster
// with no HA agent on the same three nodes (manualCluster, bench_manual_test.go). Both sides are
// measured alike: the procedure's wall time, the longest stretch without an acknowledged write
// (the chaos suite's writer, writing to whichever node accepts writes), and the acknowledged
// writes missing from the final primary. It fails on a lost acknowledged write or on a member
// that does not run the new setting afterwards; never on timing.
func TestBenchRollingRestart(t *testing.T) {
	if os.Getenv("PIGWF_BENCH") != "1" {
		t.Skip("benchmark: run with `make bench`")
	}
	requireIntegration(t)
	t.Logf("lab pwbench4 (3 nodes) and node-init")
	st, home := clusterLab(t, "pwbench4", "10.213.34")
	inv, cl, err := chaos.SyncInventory(st, home) // pg_synchronous_mode: true
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, home)
	t.Logf("pigwf: creating pg-test in synchronous mode")
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", inv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	db, mon, addrs, h := clusterLoad(t, st, cl)
	oldValue, err := psqlAt(addrs[h.Primary-1], "SHOW shared_buffers")
	if err != nil {
		t.Fatalf("SHOW shared_buffers on pg-test: %v\n%s", err, oldValue)
	}
	newValue := "160MB"
	if oldValue == newValue {
		newValue = "192MB"
	}
	t.Logf("shared_buffers: %s now, %s after the restart (both sides)", oldValue, newValue)

	// Both clusters exist before either procedure runs, so each runs beside the other's idle cluster.
	hand := setupManualCluster(t, st, inv, oldValue)

	pg := pigwfRollingRestart(t, home, inv, newValue, db, mon, addrs)
	// Where the write gap came from: what each agent did about restarts and synchronous standbys.
	for i := range st.Nodes {
		t.Logf("pigwf: node %d's agent on restarts and synchronous standbys:\n%s", i+1, nodeRun(t, st, i+1,
			"grep -E 'restart|synchronous|sync key|switchover|demot|promot' /pg/log/ha-agent/ha-agent.log | tail -n 25 || true"))
	}
	for _, a := range addrs {
		if got, err := psqlAt(a, "SHOW shared_buffers"); err != nil || got != newValue {
			t.Errorf("pigwf: %s runs with shared_buffers %q after pg-restart, want %s (%v)", a, got, newValue, err)
		}
	}

	hand.setPendingRestart("shared_buffers", newValue)
	load := startBenchLoad(t, "by hand", hand.DB, hand.Mon, addrs)
	t0 := time.Now()
	phases := hand.rollingRestart()
	byHand := load.finish(t, t0, time.Now())
	byHand.phases = phases
	for i := range addrs {
		if got := hand.show(i+1, "shared_buffers"); got != newValue {
			t.Errorf("by hand: %s runs with shared_buffers %q after its restart, want %s", hand.nodes[i], got, newValue)
		}
	}
	fmt.Print(rollingRestartReport(oldValue, newValue, pg, byHand))
}

// pigwfRollingRestart sets newValue with `pigwf config set`, waits until every agent reports the
// restart pending, then runs `pigwf start pg-restart --pending` under the writer, approving each
// approval gate as soon as the run waits at it.
func pigwfRollingRestart(t *testing.T, home, inv, newValue string, db chaos.DB, mon *chaos.Monitor, addrs []string) restartRun {
	t.Helper()
	// --yes before the NAME=VALUE argument: the CLI stops reading flags at the first argument.
	out, err := pigwf(t, home, "config", "set", "--cluster", "pg-test", "--inventory", inv, "--yes", "shared_buffers="+newValue)
	if err != nil {
		t.Fatalf("pigwf config set shared_buffers=%s: %v\n%s", newValue, err, out)
	}
	t.Logf("pigwf config set shared_buffers=%s:\n%s", newValue, out)
	waitAgentsPending(t, home, inv, "shared_buffers", len(addrs))

	load := startBenchLoad(t, "pigwf", db, mon, addrs)
	type result struct {
		out string
		err error
		end time.Time
	}
	done := make(chan result, 1)
	t0 := time.Now()
	t.Logf("pigwf: pg-restart --pending under the writer")
	go func() { // the harness gives the CLI 5 minutes, then ends it with an error
		out, err := pigwf(t, home, "start", "pg-restart", "--cluster", "pg-test", "--inventory", inv, "--pending", "--wait", "--as", "carol")
		done <- result{out, err, time.Now()}
	}()
	c := dial(t)
	ap := startApprover(t, home, c, "bench: rolling restart")
	r := <-done
	approvals, approvalWait := ap.stop()
	t1 := r.end
	if r.err != nil {
		load.halt()
		t.Fatalf("pigwf start pg-restart --pending: %v\n%s\nworker log:\n%s", r.err, r.out, chaos.TailFile(filepath.Join(home, "worker.log"), 40))
	}
	t.Logf("pigwf start pg-restart --pending (%.2f s):\n%s", t1.Sub(t0).Seconds(), r.out)
	if approvals == 0 {
		t.Logf("pigwf: note: pg-restart ended without waiting for an approval (its switchover is meant to wait for one)")
	}
	res := load.finish(t, t0, t1)
	res.approvals, res.approvalWait = approvals, approvalWait
	if hist, err := historyOf(c, "pg-restart/pg-test"); err == nil && len(hist.Events) > 0 {
		spans, _ := benchSpans(hist)
		for _, s := range spans {
			if !s.end.IsZero() {
				res.phases = append(res.phases, benchPhase{name: s.id, start: s.start.Sub(t0), took: s.end.Sub(s.start)})
			}
		}
	} else {
		t.Logf("pigwf: no history of pg-restart/pg-test to take step times from (%v)", err)
	}
	return res
}

// waitAgentsPending waits until `pigwf ha list --json` shows setting pending a restart on every
// one of members (what pg-restart --pending acts on).
func waitAgentsPending(t *testing.T, home, inv, setting string, members int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		out, err := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", inv, "--json")
		last = out
		var v haagent.ClusterStatus
		if err != nil || jsonUnmarshal(out, &v) != nil {
			continue
		}
		pending := 0
		for _, m := range v.Members {
			if _, ok := m.PendingRestartReason[setting]; ok {
				pending++
			}
		}
		if pending == members && len(v.Members) == members {
			return
		}
	}
	t.Fatalf("the agents do not all report %s pending a restart after 60 s; pigwf ha list --json:\n%s", setting, last)
}

// benchPhase is one step of a procedure: from its start (after the procedure's start) for took.
type benchPhase struct {
	name        string
	start, took time.Duration
}

// restartRun is what one side's rolling restart measured.
type restartRun struct {
	total        time.Duration // the procedure's wall time
	gap          time.Duration // the longest stretch without an acknowledged write in it
	gapAt        time.Duration // when that stretch began, after the procedure's start
	acked        int           // acknowledged writes, the writer's whole life
	inWindow     int           // of which during the procedure
	lost         []int64       // acknowledged ids missing from the final primary
	attempts     int64
	approvals    int           // pigwf: approval gates the run waited at
	approvalWait time.Duration // pigwf: the run waiting at them (the bench approves at once)
	phases       []benchPhase
}

// benchLoad is the chaos suite's writer (chaos.Writer) on one cluster: increasing ids into
// chaos_ack on whichever node accepts them, every acknowledged id recorded with its time.
type benchLoad struct {
	what string
	w    *chaos.Writer
	mon  *chaos.Monitor
	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// startBenchLoad starts the writer on the nodes at addrs (the cluster's PostgreSQL port, db.Port)
// and returns once it writes steadily.
func startBenchLoad(t *testing.T, what string, db chaos.DB, mon *chaos.Monitor, addrs []string) *benchLoad {
	t.Helper()
	return startBenchLoadFrom(t, what, db, mon, addrs, 0)
}

// startBenchLoadFrom is startBenchLoad with the writer's ids from firstID on: a second writer on
// the same cluster must not repeat the first one's ids (each would fail as a duplicate key and
// look like a write gap).
func startBenchLoadFrom(t *testing.T, what string, db chaos.DB, mon *chaos.Monitor, addrs []string, firstID int64) *benchLoad {
	t.Helper()
	wctx, stop := context.WithCancel(context.Background())
	l := &benchLoad{what: what, w: chaos.NewWriter(db, addrs, chaos.DefaultWriterConfig(), firstID), mon: mon, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.w.Run(wctx)
	}()
	t.Cleanup(l.halt)
	if _, ok := l.w.FirstAckAfter(wctx, time.Now(), 0, 30*time.Second); !ok {
		attempts, _, timeouts, _ := l.w.Stats()
		t.Fatalf("%s: the writer got no write acknowledged in 30 s (%d attempts, %d timed out) on %v port %d", what, attempts, timeouts, addrs, db.Port)
	}
	time.Sleep(time.Second) // a steady rate before the procedure starts
	t.Logf("%s: the writer is running (%d writes acknowledged so far)", what, len(l.w.Acks()))
	return l
}

// halt stops the writer and waits until no write is outstanding (idempotent).
func (l *benchLoad) halt() {
	l.once.Do(func() {
		l.stop()
		<-l.done
	})
}

// finish stops the writer after a procedure that ran from t0 to t1 and measures it: the longest
// stretch of [t0, t1] without an acknowledged write, and every acknowledged id read back from the
// primary once the cluster is healthy.
func (l *benchLoad) finish(t *testing.T, t0, t1 time.Time) restartRun {
	t.Helper()
	l.halt()
	r := restartRun{total: t1.Sub(t0)}
	var began time.Time
	r.gap, began = l.w.MaxGap(t0, t1)
	r.gapAt = began.Sub(t0)
	acks := l.w.Acks()
	r.acked = len(acks)
	r.attempts, _, _, _ = l.w.Stats()
	ids := make([]int64, 0, len(acks))
	for _, a := range acks {
		ids = append(ids, a.ID)
		if !a.At.Before(t0) && !a.At.After(t1) {
			r.inWindow++
		}
	}
	h, err := l.mon.WaitHealthy(context.Background(), 60*time.Second, nil)
	if h.Primary == 0 {
		t.Fatalf("%s: no single primary to read the acknowledged writes back from: %v", l.what, err)
	}
	if err != nil {
		t.Logf("%s: the cluster is not fully healthy after the procedure (%v); reading the writes back from node %d", l.what, err, h.Primary)
	}
	if r.lost, err = l.mon.Missing(context.Background(), h.Primary, ids); err != nil {
		t.Fatalf("%s: %v", l.what, err)
	}
	if len(r.lost) > 0 {
		t.Errorf("%s: %d of %d acknowledged writes are missing from the primary (node %d), first ids %v",
			l.what, len(r.lost), len(ids), h.Primary, r.lost[:min(len(r.lost), 10)])
	}
	t.Logf("%s: %.2f s, longest write gap %.3f s at +%.2f s, %d of %d write attempts acknowledged (%d during the procedure), %d lost",
		l.what, r.total.Seconds(), r.gap.Seconds(), r.gapAt.Seconds(), r.acked, r.attempts, r.inWindow, len(r.lost))
	return r
}

// rollingRestartReport is the BENCH lines of TestBenchRollingRestart.
func rollingRestartReport(oldValue, newValue string, pg, hand restartRun) string {
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", a.Seconds()/b.Seconds())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BENCH rolling-restart pg-test, 3 nodes on the lab, synchronous mode, shared_buffers %s -> %s on every member, under a steady writer\n", oldValue, newValue)
	fmt.Fprintf(&b, "BENCH   pigwf   (pg-restart --pending through the HA agents):   total %.2fs (of which %.2fs waiting at %d approval gate(s), approved at once), write unavailability %.3fs, lost %d of %d acknowledged writes\n",
		pg.total.Seconds(), pg.approvalWait.Seconds(), pg.approvals, pg.gap.Seconds(), len(pg.lost), pg.acked)
	fmt.Fprintf(&b, "BENCH   by hand (pg_ctl and psql over SSH, no HA agent):             total %.2fs, write unavailability %.3fs, lost %d of %d acknowledged writes\n",
		hand.total.Seconds(), hand.gap.Seconds(), len(hand.lost), hand.acked)
	fmt.Fprintf(&b, "BENCH   ratio by hand / pigwf: total %s (%s without pigwf's approval wait), write unavailability %s\n",
		ratio(hand.total, pg.total), ratio(hand.total, pg.total-pg.approvalWait), ratio(hand.gap, pg.gap))
	for _, side := range []struct {
		name string
		r    restartRun
	}{{"pigwf", pg}, {"by hand", hand}} {
		fmt.Fprintf(&b, "BENCH   %-7s longest write gap began at +%.2fs; %d writes acknowledged during the procedure (%.0f/s)\n",
			side.name, side.r.gapAt.Seconds(), side.r.inWindow, float64(side.r.inWindow)/side.r.total.Seconds())
		for _, p := range side.r.phases {
			fmt.Fprintf(&b, "BENCH   %-7s %-40s at +%6.2fs takes %6.2fs\n", side.name, p.name, p.start.Seconds(), p.took.Seconds())
		}
	}
	return b.String()
}

// clusterLoad prepares pg-test (created from the sync inventory cl) for the chaos suite's writer:
// the writer's tables, pg_monitor for the monitor, and a healthy cluster. It returns the writer's
// database, the monitor, the nodes' addresses and the cluster's health.
func clusterLoad(t *testing.T, st *lab.Status, cl *inventory.Cluster) (chaos.DB, *chaos.Monitor, []string, chaos.Health) {
	t.Helper()
	ctx := context.Background()
	var addrs []string
	for _, n := range st.Nodes {
		addrs = append(addrs, n.Addr)
	}
	db := chaos.ChaosDB // the inventory's dbuser_meta on meta, as in the chaos suite
	db.Port, db.Device = cl.PG.Port, st.Bridge
	mon := chaos.NewMonitor(db, addrs)
	t.Cleanup(mon.Close)
	h := mon.Check(ctx)
	if h.Primary == 0 {
		t.Fatalf("pg-test after pg-cluster-create: %s", h.Problem)
	}
	// pg_stat_replication's columns, which the monitor reads, need pg_monitor.
	nodeRun(t, st, h.Primary, "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d meta -c 'GRANT pg_monitor TO dbuser_meta'")
	if err := mon.Exec(ctx, h.Primary, chaos.ChaosTables); err != nil {
		t.Fatalf("the writer's tables on pg-test: %v", err)
	}
	if _, err := mon.WaitHealthy(ctx, 60*time.Second, nil); err != nil {
		t.Fatalf("pg-test before the bench: %v", err)
	}
	return db, mon, addrs, h
}

// approver approves, as alice, every approval gate that waits while it runs: each gate once, as
// soon as `PendingApprovals` lists it (visibility, so it works while no worker runs).
type approver struct {
	once sync.Once
	quit chan struct{}
	done chan struct{}
	n    int
	wait time.Duration
}

func startApprover(t *testing.T, home string, c *starter.Client, comment string) *approver {
	t.Helper()
	a := &approver{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		approved := map[string]bool{} // run and the time its gate began waiting
		for {
			select {
			case <-a.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			runs, err := c.PendingApprovals(qctx)
			cancel()
			if err != nil {
				continue
			}
			for _, p := range runs {
				gate := p.WorkflowID + " " + p.RunID + " " + p.State.Requested.String()
				if approved[gate] {
					continue
				}
				approved[gate] = true
				out, err := pigwf(t, home, "approve", p.WorkflowID, "--by", "alice", "--comment", comment)
				if err != nil {
					t.Errorf("pigwf approve %s --by alice: %v\n%s", p.WorkflowID, err, out)
					continue
				}
				wait := time.Since(p.State.Requested)
				if p.State.Requested.IsZero() || wait < 0 {
					wait = 0 // the run did not say when it began waiting: no estimate
				}
				a.n++
				a.wait += wait
				t.Logf("approved %s as alice %.2f s after it began waiting (plan: %s)", p.WorkflowID, wait.Seconds(), firstLine(p.State.Plan))
			}
		}
	}()
	return a
}

// stop ends the approver and returns how many gates it approved and how long they had waited.
func (a *approver) stop() (int, time.Duration) {
	a.once.Do(func() { close(a.quit) })
	<-a.done
	return a.n, a.wait
}
