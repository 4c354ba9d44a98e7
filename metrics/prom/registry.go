package prom

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// Registry is a process's metrics: what its client.MetricsHandler records (the Temporal SDK's
// metrics and pigwf's, package metrics), the Go runtime's and the process's, and the collectors
// registered on it.
type Registry struct {
	reg   *prometheus.Registry
	store *store
}

// NewRegistry is an empty registry with the Go runtime's and the process's collectors.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), store: newStore()}
	r.reg.MustRegister(r.store, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler is the client.MetricsHandler to give the Temporal client (client.Options.MetricsHandler):
// the SDK emits through it, and so does pigwf's code through workflow.GetMetricsHandler and
// activity.GetMetricsHandler, which derive from it.
func (r *Registry) Handler() client.MetricsHandler { return &handler{s: r.store, tags: newTagSet(nil)} }

// Register adds a collector (one that asks something at scrape time, say).
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// Gatherer reads the registry (tests, the HTTP handler).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// HTTPHandler serves the registry in Prometheus's text format. A collector's error is logged and
// the rest is still served: one failing source must not hide the others.
func (r *Registry) HTTPHandler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
