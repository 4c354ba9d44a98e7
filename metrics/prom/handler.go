// Package prom exports metrics to Prometheus: a Temporal client.MetricsHandler that records the
// SDK's metrics and pigwf's own (package metrics) into a client_golang registry, and the HTTP(S)
// endpoint that serves the registry at /metrics.
package prom

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/pigwf/pigwf/metrics"
)

// store holds what a client.MetricsHandler recorded. It is a prometheus.Collector that builds
// its metrics at each scrape: the SDK emits one name with different tag sets (a request from the
// client has no task_queue, one from a worker has), which fixed label names of client_golang's
// vectors cannot take; here a family's labels are the union of its series' tags, missing ones
// empty.
type store struct {
	mu       sync.Mutex
	families map[string]*family // by exposed name
}

type family struct {
	exposed string
	kind    metrics.Kind
	help    string
	buckets []float64
	series  map[string]*series // by labelKey
}

// series is one set of tag values. Its value is read and written under its own lock so that
// recording does not wait on a scrape of other series.
type series struct {
	labels map[string]string
	mu     sync.Mutex
	value  float64  // counter, gauge
	counts []uint64 // timer: per bucket (not cumulative)
	sum    float64
	count  uint64
}

func newStore() *store { return &store{families: map[string]*family{}} }

// series returns the series of name with tags, creating it, and its family's buckets; nil when
// name is already a family of another kind (the update is then dropped rather than exported under
// two types).
func (s *store) series(kind metrics.Kind, name string, tags tagSet) (*series, []float64) {
	exposed := sanitizeName(metrics.Exposed(kind, name))
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.families[exposed]
	if f == nil {
		f = newFamily(kind, name, exposed)
		s.families[exposed] = f
	}
	if f.kind != kind {
		return nil, nil
	}
	sr := f.series[tags.key]
	if sr == nil {
		sr = &series{labels: tags.m}
		if kind == metrics.Timer {
			sr.counts = make([]uint64, len(f.buckets))
		}
		f.series[tags.key] = sr
	}
	return sr, f.buckets
}

func newFamily(kind metrics.Kind, name, exposed string) *family {
	f := &family{exposed: exposed, kind: kind, series: map[string]*series{},
		help: "Temporal SDK metric " + name + " (a " + kind.String() + ")."}
	if kind == metrics.Timer {
		f.buckets = metrics.SDKTimerBuckets
	}
	if pf, ok := metrics.Lookup(name); ok && pf.Kind == kind {
		f.help = pf.Help
		if pf.Buckets != nil {
			f.buckets = pf.Buckets
		}
	}
	return f
}

func (sr *series) add(v float64) {
	sr.mu.Lock()
	sr.value += v
	sr.mu.Unlock()
}

func (sr *series) set(v float64) {
	sr.mu.Lock()
	sr.value = v
	sr.mu.Unlock()
}

func (sr *series) observe(buckets []float64, v float64) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if i := sort.SearchFloat64s(buckets, v); i < len(buckets) {
		sr.counts[i]++
	}
	sr.sum += v
	sr.count++
}

// Describe sends nothing: the families are known only once the SDK emits them, so the store is
// an unchecked collector (client_golang then checks each scrape's consistency instead).
func (s *store) Describe(chan<- *prometheus.Desc) {}

// Collect builds the metrics of every series.
func (s *store) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	fams := slices.Collect(maps.Values(s.families))
	snapshot := make([][]*series, len(fams))
	for i, f := range fams {
		snapshot[i] = slices.Collect(maps.Values(f.series))
	}
	s.mu.Unlock()
	for i, f := range fams {
		f.collect(snapshot[i], ch)
	}
}

func (f *family) collect(all []*series, ch chan<- prometheus.Metric) {
	keys := map[string]bool{}
	for _, sr := range all {
		for k := range sr.labels {
			keys[k] = true
		}
	}
	names := slices.Sorted(maps.Keys(keys))
	desc := prometheus.NewDesc(f.exposed, f.help, names, nil)
	for _, sr := range all {
		values := make([]string, len(names))
		for i, n := range names {
			values[i] = sr.labels[n]
		}
		sr.mu.Lock()
		var m prometheus.Metric
		var err error
		switch f.kind {
		case metrics.Counter:
			m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, sr.value, values...)
		case metrics.Gauge:
			m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, sr.value, values...)
		case metrics.Timer:
			cum := make(map[float64]uint64, len(f.buckets))
			var n uint64
			for i, b := range f.buckets {
				n += sr.counts[i]
				cum[b] = n
			}
			m, err = prometheus.NewConstHistogram(desc, sr.count, sr.sum, cum, values...)
		}
		sr.mu.Unlock()
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
}

// tagSet is a handler's tags, sanitized to Prometheus label names, with a key that identifies
// them.
type tagSet struct {
	m   map[string]string
	key string
}

func newTagSet(m map[string]string) tagSet {
	names := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(m[n])
		b.WriteByte(0)
	}
	return tagSet{m: m, key: b.String()}
}

// handler is the client.MetricsHandler over the store.
type handler struct {
	s    *store
	tags tagSet
}

func (h *handler) WithTags(tags map[string]string) client.MetricsHandler {
	m := maps.Clone(h.tags.m)
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range tags {
		m[sanitizeName(k)] = v
	}
	return &handler{s: h.s, tags: newTagSet(m)}
}

func (h *handler) Counter(name string) client.MetricsCounter {
	sr, _ := h.s.series(metrics.Counter, name, h.tags)
	return counterFunc(func(d int64) {
		if sr != nil && d > 0 { // a counter only goes up
			sr.add(float64(d))
		}
	})
}

func (h *handler) Gauge(name string) client.MetricsGauge {
	sr, _ := h.s.series(metrics.Gauge, name, h.tags)
	return gaugeFunc(func(v float64) {
		if sr != nil {
			sr.set(v)
		}
	})
}

func (h *handler) Timer(name string) client.MetricsTimer {
	sr, buckets := h.s.series(metrics.Timer, name, h.tags)
	return timerFunc(func(d time.Duration) {
		if sr != nil {
			sr.observe(buckets, d.Seconds())
		}
	})
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// sanitizeName makes s a valid Prometheus metric or label name: other characters become '_'
// (the SDK's names and tags are valid already; this keeps a future one from failing a scrape).
func sanitizeName(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}
