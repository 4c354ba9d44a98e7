package worker

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"github.com/pigwf/pigwf/metrics/prom"
	"github.com/pigwf/pigwf/starter"
)

// workerMetrics is a worker's metrics endpoint: the registry the Temporal client's metrics handler
// records into (the SDK's metrics and pigwf's, package metrics) and the bound listener; zero when
// metrics are off.
type workerMetrics struct {
	reg *prom.Registry
	srv *prom.Server
}

// bindMetrics binds the metrics address before the worker connects, so a bad address or
// certificate stops it at start; with cfg.MetricsBestEffort an address in use only loses the
// metrics.
func bindMetrics(cfg Config, log *slog.Logger) (workerMetrics, error) {
	if !cfg.Metrics.Enabled() {
		return workerMetrics{}, nil
	}
	reg := prom.NewRegistry()
	srv, err := prom.Bind(cfg.Metrics, reg.HTTPHandler(log), log)
	if err != nil {
		if cfg.MetricsBestEffort && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("metrics are not served: the address is not free (another worker on this machine?); give this worker its own metrics address, or turn metrics off", "metrics_listen", cfg.Metrics.Addr, "err", err)
			return workerMetrics{}, nil
		}
		return workerMetrics{}, err
	}
	return workerMetrics{reg: reg, srv: srv}, nil
}

func (m workerMetrics) dialOptions() []starter.DialOption {
	if m.reg == nil {
		return nil
	}
	return []starter.DialOption{starter.WithMetrics(m.reg.Handler())}
}

// serve adds the open-runs collector (it lists through cl) and serves until ctx is done.
func (m workerMetrics) serve(ctx context.Context, cl *starter.Client, log *slog.Logger) {
	if m.srv == nil {
		return
	}
	if err := m.reg.Register(newRunsCollector(cl.OpenRuns, log)); err != nil {
		log.Error("metrics: the open-runs collector", "err", err) // a programming error: registered twice
	}
	log.Info("serving metrics", "url", m.srv.URL())
	go func() {
		if err := m.srv.Serve(ctx); err != nil {
			log.Error("metrics are no longer served", "err", err)
		}
	}()
}
