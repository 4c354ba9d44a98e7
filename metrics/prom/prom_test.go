package prom

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/pki"
)

var quiet = slog.New(slog.DiscardHandler)

// scrape serves r's /metrics through its HTTP handler and parses the answer as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, body io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// find is the metric of family name whose labels include want, nil when none has.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestHandlerExportsUnderTemporalsNames(t *testing.T) {
	r := NewRegistry()
	h := r.Handler().WithTags(map[string]string{"namespace": "default"})
	h.Counter("temporal_workflow_completed").Inc(2)
	h.Counter("temporal_workflow_completed").Inc(1)
	h.Gauge("temporal_sticky_cache_size").Update(7)
	h.Gauge("temporal_sticky_cache_size").Update(3)
	act := h.WithTags(map[string]string{"activity_type": "BackupFull"})
	act.Timer("temporal_activity_execution_latency").Record(30 * time.Millisecond)
	act.Timer("temporal_activity_execution_latency").Record(2 * time.Hour) // past the last bucket

	fams := scrape(t, r.HTTPHandler(quiet))
	c := find(fams, "temporal_workflow_completed_total", map[string]string{"namespace": "default"})
	if c == nil || c.GetCounter().GetValue() != 3 {
		t.Fatalf("temporal_workflow_completed_total{namespace=default}: %v", c)
	}
	if fams["temporal_workflow_completed_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("type %v, want counter", fams["temporal_workflow_completed_total"].GetType())
	}
	g := find(fams, "temporal_sticky_cache_size", nil)
	if g == nil || g.GetGauge().GetValue() != 3 {
		t.Errorf("temporal_sticky_cache_size: %v, want the last value 3", g)
	}
	hm := find(fams, "temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "BackupFull", "namespace": "default"})
	if hm == nil {
		t.Fatalf("no temporal_activity_execution_latency_seconds histogram; families: %v", keys(fams))
	}
	hist := hm.GetHistogram()
	if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 7200 {
		t.Errorf("histogram count %d sum %g, want 2 and 7200.03", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.Bucket {
		want := uint64(0)
		switch {
		case math.IsInf(b.GetUpperBound(), 1):
			want = 2 // every sample
		case b.GetUpperBound() >= 0.03:
			want = 1 // the 30 ms sample; the 2 h one is only in +Inf (the count)
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if find(fams, "go_goroutines", nil) == nil || find(fams, "process_start_time_seconds", nil) == nil {
		t.Errorf("the Go runtime's and process's metrics are missing: %v", keys(fams))
	}
}

// The SDK emits one name with different tag sets; the family's labels are their union, so the
// exposition stays valid.
func TestHandlerUnionOfTags(t *testing.T) {
	r := NewRegistry()
	root := r.Handler()
	root.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(1)
	root.WithTags(map[string]string{"operation": "PollWorkflowTaskQueue", "task_queue": "pigwf"}).Counter("temporal_request").Inc(1)
	fams := scrape(t, r.HTTPHandler(quiet))
	f := fams["temporal_request_total"]
	if f == nil || len(f.Metric) != 2 {
		t.Fatalf("temporal_request_total: %v", f)
	}
	for _, m := range f.Metric {
		if len(m.Label) != 2 {
			t.Errorf("series %v: want both labels (operation, task_queue), the missing one empty", m.Label)
		}
	}
	if m := find(fams, "temporal_request_total", map[string]string{"operation": "StartWorkflowExecution", "task_queue": ""}); m == nil {
		t.Errorf("the client's request has no task_queue: want it empty")
	}
}

// pigwf's families get their help and buckets from package metrics; a name used with a second
// kind is dropped rather than exported under two types.
func TestHandlerPigwfFamilies(t *testing.T) {
	r := NewRegistry()
	h := r.Handler().WithTags(map[string]string{metrics.LabelRunbook: "switchover", metrics.LabelCluster: "pg-test", metrics.LabelDecision: "approve"})
	h.Timer(metrics.ApprovalWait).Record(20 * time.Minute)
	h.Counter(metrics.ApprovalWait).Inc(1) // another kind under a pigwf name: another exposed name, so kept
	h.Gauge(metrics.Exposed(metrics.Timer, metrics.ApprovalWait)).Update(1)
	fams := scrape(t, r.HTTPHandler(quiet))
	fam, _ := metrics.Lookup(metrics.ApprovalWait)
	f := fams[fam.Exposed()]
	if f == nil || f.GetHelp() != fam.Help || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("%s: %v", fam.Exposed(), f)
	}
	if n := len(f.Metric[0].GetHistogram().Bucket); n != len(fam.Buckets)+1 {
		t.Errorf("%d buckets, want the family's %d and +Inf", n, len(fam.Buckets))
	}
	if len(f.Metric) != 1 {
		t.Errorf("the gauge under the histogram's name was exported: %v", f.Metric)
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{"temporal_request": "temporal_request", "a.b-c": "a_b_c", "9lives": "_lives", "": "_", "x9": "x9"} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListenCheck(t *testing.T) {
	ca := pkitest.CA(t)
	cert := pkitest.Node(t, ca, "worker")
	for _, tc := range []struct {
		l       Listen
		wantErr error // nil: accepted; errAny: some error
	}{
		{Listen{Addr: ""}, nil},
		{Listen{Addr: "off"}, nil},
		{Listen{Addr: "127.0.0.1:9477"}, nil},
		{Listen{Addr: "[::1]:9477"}, nil},
		{Listen{Addr: "localhost:9477"}, nil},
		{Listen{Addr: "0.0.0.0:9477"}, ErrPlaintextOffLoopback},
		{Listen{Addr: ":9477"}, ErrPlaintextOffLoopback},
		{Listen{Addr: "10.10.10.10:9477"}, ErrPlaintextOffLoopback},
		{Listen{Addr: "worker.example:9477"}, ErrPlaintextOffLoopback},
		{Listen{Addr: "0.0.0.0:9477", TLS: cert}, nil},
		{Listen{Addr: "0.0.0.0:9477", TLS: pki.Files{CA: cert.CA, Cert: cert.Cert}}, errAny}, // a certificate without its key
		{Listen{Addr: "0.0.0.0:9477", TLS: pki.Files{Cert: cert.Cert, Key: cert.Key}}, pki.ErrNoCA},
		{Listen{Addr: "9477"}, errAny},
	} {
		err := tc.l.Check()
		switch {
		case tc.wantErr == nil && err != nil:
			t.Errorf("%+v: %v, want accepted", tc.l, err)
		case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
			t.Errorf("%+v: %v, want %v", tc.l, err, tc.wantErr)
		}
	}
}

var errAny = errors.New("any error")

// The endpoint serves plain HTTP on loopback and HTTPS with a certificate, which a client that
// trusts the deployment CA verifies; other paths are not served.
func TestServe(t *testing.T) {
	r := NewRegistry()
	r.Handler().Counter("pigwf_runs_started").Inc(1)
	ca := pkitest.CA(t)
	cert := pkitest.Node(t, ca, "worker")
	for _, l := range []Listen{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:0", TLS: cert}} {
		srv, err := Bind(l, r.HTTPHandler(quiet), quiet)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		cl := http.DefaultClient
		if l.TLS.Cert != "" {
			if !strings.HasPrefix(srv.URL(), "https://") {
				t.Errorf("URL %s: want https", srv.URL())
			}
			tc, err := pki.Files{CA: cert.CA}.Client("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			cl = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		}
		resp, err := cl.Get(srv.URL())
		if err != nil {
			t.Fatalf("GET %s: %v", srv.URL(), err)
		}
		fams := parse(t, resp.Body)
		resp.Body.Close()
		if find(fams, "pigwf_runs_started_total", nil) == nil {
			t.Errorf("%s: no pigwf_runs_started_total in %v", srv.URL(), keys(fams))
		}
		other, err := cl.Get(strings.TrimSuffix(srv.URL(), "/metrics") + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		other.Body.Close()
		if other.StatusCode != http.StatusNotFound {
			t.Errorf("/debug/pprof/: %d, want 404", other.StatusCode)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	}
}

func TestBindRefusesPlaintextOffLoopback(t *testing.T) {
	if _, err := Bind(Listen{Addr: "0.0.0.0:0"}, http.NotFoundHandler(), quiet); !errors.Is(err, ErrPlaintextOffLoopback) {
		t.Fatalf("Bind 0.0.0.0 without TLS: %v, want ErrPlaintextOffLoopback", err)
	}
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
