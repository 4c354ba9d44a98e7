package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/starter"
)

// runsCollector exports the open runs and the runs waiting for approval per runbook and cluster,
// listed from Temporal's visibility when Prometheus scrapes (starter.OpenRuns): the RunState each
// run keeps up to date is the one account of who waits, whichever worker ran the run last, as
// `pigwf pending` also reads it. A listing serves the scrapes of the next runsCacheFor, so several
// Prometheus servers cost Temporal one listing.
type runsCollector struct {
	list func(context.Context) ([]starter.OpenRun, error)
	log  *slog.Logger

	open, waiting, ok *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	runs   []starter.OpenRun
	listed bool
}

// runsCacheFor and runsListTimeout: a scrape answers within Prometheus's default 10 s timeout
// even when Temporal does not.
const (
	runsCacheFor    = 10 * time.Second
	runsListTimeout = 5 * time.Second
)

func newRunsCollector(list func(context.Context) ([]starter.OpenRun, error), log *slog.Logger) *runsCollector {
	desc := func(name string) *prometheus.Desc {
		f, _ := metrics.Lookup(name)
		return prometheus.NewDesc(f.Exposed(), f.Help, f.Labels, nil)
	}
	return &runsCollector{list: list, log: log,
		open: desc(metrics.RunsOpen), waiting: desc(metrics.ApprovalsWaiting), ok: desc(metrics.RunsListOK)}
}

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.waiting
	ch <- c.ok
}

// Collect exports the counts of the latest listing; after a failed one, only pigwf_runs_list_ok
// 0 (no counts rather than stale ones).
func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	runs, ok := c.latest()
	ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, boolValue(ok))
	if !ok {
		return
	}
	type key struct{ runbook, cluster string }
	open, waiting := map[key]float64{}, map[key]float64{}
	for _, r := range runs {
		k := key{r.Runbook, r.Cluster}
		open[k]++
		if r.WaitingForApproval() {
			waiting[k]++
		}
	}
	// Every open run's runbook and cluster get a waiting series, 0 while it runs.
	for k, n := range open {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, n, k.runbook, k.cluster)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, waiting[k], k.runbook, k.cluster)
	}
}

// latest is the cached listing while it is fresh, else a new one.
func (c *runsCollector) latest() ([]starter.OpenRun, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < runsCacheFor {
		return c.runs, c.listed
	}
	ctx, cancel := context.WithTimeout(context.Background(), runsListTimeout)
	defer cancel()
	runs, err := c.list(ctx)
	c.at, c.runs, c.listed = time.Now(), runs, err == nil
	if err != nil {
		c.log.Warn("metrics: cannot list open runs; pigwf_runs_open and pigwf_approvals_waiting are left out of this scrape", "err", err)
	}
	return c.runs, c.listed
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
