package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	historypb "go.temporal.io/api/history/v1"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// workerTuning is one `pigwf worker` setting the tuning bench measures.
type workerTuning struct {
	name string
	args []string
}

// workerTunings: the defaults, then fewer activity slots than node steps wanting one at once,
// then a sticky cache smaller than the runs open at once (a node-init and its cluster lock).
var workerTunings = []workerTuning{
	{"defaults (1000 activity slots, sticky cache 10000)", nil},
	{"--max-concurrent-activities 8", []string{"--max-concurrent-activities", "8"}},
	{"--max-concurrent-activities 2", []string{"--max-concurrent-activities", "2"}},
	{"--sticky-cache-size 1", []string{"--sticky-cache-size", "1"}},
}

// tuningRun is what one setting measured: the run's wall time through the CLI; from the run's
// history how long its activities waited between scheduled and started (for a free slot, once
// a worker polls); from the worker's own metrics how its workflow tasks were served.
type tuningRun struct {
	wall                 time.Duration
	activities           int           // activities the run started
	slotWait, maxWait    time.Duration // mean and longest scheduled-to-started of an activity
	cacheHits, cacheMiss float64
	tasks                float64       // workflow tasks the worker processed
	taskTime             time.Duration // their total processing time (replaying history included)
}

// TestBenchWorkerTuning (make bench, issue #15): the worker's two tuning flags, measured. One
// NodeInit on 30 bare lab nodes prepares them; then, for each setting, a new worker runs
// node-init on the same 30 nodes twice (the first opens its SSH connections) and the second is
// measured: its wall time through the CLI; from the run's history how long its activities waited
// between scheduled and started (for a free slot); from the worker's own metrics (Temporal SDK's,
// scraped from its /metrics) sticky cache hits and misses and the time its workflow tasks took,
// replaying history included. It fails when a run fails; never on timing.
func TestBenchWorkerTuning(t *testing.T) {
	if os.Getenv("PIGWF_BENCH") != "1" {
		t.Skip("benchmark: run with `make bench`")
	}
	requireIntegration(t)
	const nodes = 30
	cfg := lab.Config{Name: "pwtune", Subnet: "10.213.52", Nodes: nodes, Bare: nodes, Etcd: lab.NoEtcd, CADir: filepath.Join(t.TempDir(), "ca")}
	st := testenv.LabWith(t, cfg)
	home := labHome(t, st)
	endOpenRuns(t)
	args := []string{"start", "node-init", "--cluster", lab.BareGroup, "--inventory", st.Inventory, "--wait"}

	// First runs on fresh nodes (packages installed, files written: steps of seconds), with the
	// default slots and with two: the lab is taken down and up again before each.
	first := map[string]time.Duration{}
	for _, tu := range []workerTuning{workerTunings[0], workerTunings[2]} {
		if err := lab.Down(context.Background(), cfg); err != nil {
			t.Fatalf("lab down: %v", err)
		}
		if _, err := lab.Up(context.Background(), cfg); err != nil {
			t.Fatalf("lab up: %v", err)
		}
		w := startWorker(t, home, tu.args...)
		start := time.Now()
		out, err := pigwf(t, home, args...)
		first[tu.name] = time.Since(start)
		if err != nil {
			t.Fatalf("%s: node-init on %d fresh nodes: %v\n%s", tu.name, nodes, err, out)
		}
		checkRecap(t, out, nodes, true)
		w.kill()
	}

	var runs []tuningRun
	for _, tu := range workerTunings {
		metricsAddr := freeAddr(t)
		w := startWorker(t, home, append([]string{"--metrics-listen", metricsAddr}, tu.args...)...)
		if out, err := pigwf(t, home, args...); err != nil { // SSH connections opened, caches warm
			t.Fatalf("%s: node-init: %v\n%s", tu.name, err, out)
		}
		before := scrapeWorker(t, metricsAddr)
		start := time.Now()
		out, err := pigwf(t, home, args...)
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("%s: node-init: %v\n%s", tu.name, err, out)
		}
		checkRecap(t, out, nodes, false)
		r := tuningOf(wall, before, scrapeWorker(t, metricsAddr))
		hist, err := historyOf(dial(t), starter.WorkflowID(workflows.NodeInitRunbook, lab.BareGroup))
		if err != nil {
			t.Fatal(err)
		}
		r.activities, r.slotWait, r.maxWait = activityWaits(hist)
		runs = append(runs, r)
		w.kill()
	}
	events := 0
	if h, err := historyOf(dial(t), starter.WorkflowID(workflows.NodeInitRunbook, lab.BareGroup)); err == nil {
		events = len(h.Events)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BENCH worker tuning: node-init on %d prepared lab nodes (nothing to change: every node step still runs its check over SSH), one worker, 2 cores; the run's history has %d events\n", nodes, events)
	fmt.Fprintf(&b, "BENCH   %-52s %8s %6s %11s %20s %11s %22s\n", "setting", "wall", "ratio", "activities", "waited mean/max", "cache h/m", "workflow tasks (time)")
	for i, tu := range workerTunings {
		r := runs[i]
		fmt.Fprintf(&b, "BENCH   %-52s %7.2fs %5.2fx %11d %9.0fms/%6.0fms %5.0f/%-5.0f %8.0f (%6.0fms)\n", tu.name, r.wall.Seconds(), r.wall.Seconds()/runs[0].wall.Seconds(),
			r.activities, ms(r.slotWait), ms(r.maxWait), r.cacheHits, r.cacheMiss, r.tasks, ms(r.taskTime))
	}
	fmt.Fprintf(&b, "BENCH   first run on %d fresh nodes: %s %.2fs; %s %.2fs = %.2fx\n", nodes,
		workerTunings[0].name, first[workerTunings[0].name].Seconds(), workerTunings[2].name, first[workerTunings[2].name].Seconds(),
		first[workerTunings[2].name].Seconds()/first[workerTunings[0].name].Seconds())
	fmt.Print(b.String())
}

// tuningOf is one run's measures: the difference of the worker's metrics across it.
func tuningOf(wall time.Duration, before, after map[string]*dto.MetricFamily) tuningRun {
	delta := func(name string) float64 { return metricTotal(after, name) - metricTotal(before, name) }
	return tuningRun{wall: wall,
		cacheHits: delta("temporal_sticky_cache_hit_total"), cacheMiss: delta("temporal_sticky_cache_miss_total"),
		tasks:    delta("temporal_workflow_task_replay_latency_seconds_count"),
		taskTime: time.Duration(delta("temporal_workflow_task_replay_latency_seconds_sum") * float64(time.Second)),
	}
}

// activityWaits reads a run's history: how many activities it started, and the mean and longest
// time one waited between scheduled and started.
func activityWaits(hist *historypb.History) (n int, mean, longest time.Duration) {
	scheduled := map[int64]time.Time{}
	var total time.Duration
	for _, ev := range hist.Events {
		if ev.GetActivityTaskScheduledEventAttributes() != nil {
			scheduled[ev.GetEventId()] = ev.GetEventTime().AsTime()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			wait := ev.GetEventTime().AsTime().Sub(scheduled[a.GetScheduledEventId()])
			n++
			total += wait
			longest = max(longest, wait)
		}
	}
	if n > 0 {
		mean = total / time.Duration(n)
	}
	return n, mean, longest
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scrapeWorker reads the worker's /metrics at addr (it may need a moment to serve after start).
func scrapeWorker(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, perr := parser.TextToMetricFamilies(resp.Body)
			resp.Body.Close()
			if perr != nil {
				t.Fatalf("the worker's metrics at %s: %v", addr, perr)
			}
			return fams
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the worker's metrics at %s: %v", addr, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// metricTotal sums a counter or a histogram's _sum/_count over every label set (0 when absent).
func metricTotal(fams map[string]*dto.MetricFamily, name string) float64 {
	base, part := name, ""
	for _, suffix := range []string{"_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suffix); ok && fams[name] == nil {
			base, part = b, suffix
		}
	}
	f := fams[base]
	if f == nil {
		return 0
	}
	var total float64
	for _, m := range f.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetHistogram() != nil && part == "_sum":
			total += m.GetHistogram().GetSampleSum()
		case m.GetHistogram() != nil && part == "_count":
			total += float64(m.GetHistogram().GetSampleCount())
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}
