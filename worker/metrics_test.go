package worker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/metrics/prom"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

var quiet = slog.New(slog.DiscardHandler)

// gauges are the values of family name by "runbook/cluster" ("" for a series without labels).
func gauges(t *testing.T, reg *prom.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			out[labelsOf(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func labelsOf(m *dto.Metric) string {
	l := map[string]string{}
	for _, p := range m.Label {
		l[p.GetName()] = p.GetValue()
	}
	if len(l) == 0 {
		return ""
	}
	return l[metrics.LabelRunbook] + "/" + l[metrics.LabelCluster]
}

func TestRunsCollector(t *testing.T) {
	calls := 0
	var fail error
	list := func(context.Context) ([]starter.OpenRun, error) {
		calls++
		if fail != nil {
			return nil, fail
		}
		return []starter.OpenRun{
			{Runbook: "switchover", Cluster: "pg-test", Phase: workflows.PhaseWaitingForApproval},
			{Runbook: "node-init", Cluster: "pg-meta", Phase: workflows.PhaseRunning},
		}, nil
	}
	c := newRunsCollector(list, quiet)
	reg := prom.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	open := gauges(t, reg, metrics.RunsOpen)
	waiting := gauges(t, reg, metrics.ApprovalsWaiting)
	if open["switchover/pg-test"] != 1 || open["node-init/pg-meta"] != 1 || len(open) != 2 {
		t.Errorf("open runs: %v", open)
	}
	if w, ok := waiting["node-init/pg-meta"]; waiting["switchover/pg-test"] != 1 || !ok || w != 0 || len(waiting) != 2 {
		t.Errorf("waiting: %v (want 1 for the switchover, 0 for the running node-init)", waiting)
	}
	if ok := gauges(t, reg, metrics.RunsListOK)[""]; ok != 1 {
		t.Errorf("list ok = %v", ok)
	}
	// A second scrape within runsCacheFor reads the same listing.
	gauges(t, reg, metrics.RunsOpen)
	if calls != 1 {
		t.Errorf("%d listings for scrapes within %s, want 1", calls, runsCacheFor)
	}
	// A failed listing exports no counts, and says so.
	fail = errors.New("visibility unavailable")
	c.at = c.at.Add(-runsCacheFor)
	if open := gauges(t, reg, metrics.RunsOpen); len(open) != 0 {
		t.Errorf("open runs after a failed listing: %v, want none", open)
	}
	if ok := gauges(t, reg, metrics.RunsListOK)[""]; ok != 0 {
		t.Errorf("list ok after a failure = %v, want 0", ok)
	}
}

// A worker whose metrics address is taken stops, unless it runs best effort (the default address,
// which a second worker on the machine finds taken); a plain-text address off loopback always
// stops it.
func TestBindMetrics(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := Config{Metrics: prom.Listen{Addr: taken.Addr().String()}}
	if _, err := bindMetrics(cfg, quiet); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("taken address: %v, want EADDRINUSE", err)
	}
	cfg.MetricsBestEffort = true
	if m, err := bindMetrics(cfg, quiet); err != nil || m.srv != nil || m.dialOptions() != nil {
		t.Errorf("taken address, best effort: %+v %v, want no metrics and no error", m, err)
	}
	cfg.Metrics.Addr = "0.0.0.0:0"
	if _, err := bindMetrics(cfg, quiet); !errors.Is(err, prom.ErrPlaintextOffLoopback) {
		t.Errorf("0.0.0.0 without TLS, best effort: %v, want ErrPlaintextOffLoopback", err)
	}
	if m, err := bindMetrics(Config{Metrics: prom.Listen{Addr: "off"}}, quiet); err != nil || m.srv != nil {
		t.Errorf("off: %+v %v", m, err)
	}
	m, err := bindMetrics(Config{Metrics: prom.Listen{Addr: "127.0.0.1:0"}}, quiet)
	if err != nil || m.srv == nil || len(m.dialOptions()) != 1 {
		t.Fatalf("free loopback address: %+v %v", m, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.serve(ctx, &starter.Client{}, quiet)
	cancel()
}
