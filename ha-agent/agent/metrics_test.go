package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// scrape parses GET /metrics as Prometheus does (the text format, legacy metric names).
func scrape(t *testing.T, a *Agent, s snapshot) map[string]*dto.MetricFamily {
	t.Helper()
	w := request(a, s, http.MethodGet, "/metrics")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("GET /metrics does not parse: %v\n%s", err, w.Body)
	}
	return fams
}

// value is the single sample of family name, whose labels must be want's.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	if len(f.Metric) != 1 {
		t.Fatalf("%s: %d samples, want 1", name, len(f.Metric))
	}
	m := f.Metric[0]
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if got[k] != v {
			t.Errorf("%s: label %s=%q, want %q (labels %v)", name, k, got[k], v, got)
		}
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	}
	t.Fatalf("%s: neither gauge nor counter", name)
	return 0, false
}

// GET /metrics: Patroni's metric names with its labels (scope, name) and values as Patroni
// computes them, beside pigwf's own pigwf_ha_* (cluster, member); the text parses as
// Prometheus reads it.
func TestMetrics(t *testing.T) {
	patroni := map[string]string{"scope": "pg-test", "name": "n2"}
	pigwf := map[string]string{"cluster": "pg-test", "member": "n2"}
	primary := map[string]float64{
		"patroni_version": 0, "patroni_postgres_running": 1, "patroni_postmaster_start_time": 1893553445.123456,
		"patroni_primary": 1, "patroni_replica": 0, "patroni_standby_leader": 0, "patroni_sync_standby": 0, "patroni_quorum_standby": 0,
		"patroni_xlog_location": float64(leaderLSN), "patroni_xlog_received_location": 0, "patroni_xlog_replayed_location": 0,
		"patroni_xlog_replayed_timestamp": 0, "patroni_xlog_paused": 0, "patroni_postgres_streaming": 0,
		"patroni_postgres_in_archive_recovery": 0, "patroni_postgres_server_version": 150004, "patroni_cluster_unlocked": 0,
		"patroni_failsafe_mode_is_active": 0, "patroni_postgres_timeline": 3, "patroni_dcs_last_seen": 1893553500,
		"patroni_pending_restart": 0, "patroni_is_paused": 0,
	}
	replica := map[string]float64{
		"patroni_postgres_running": 1, "patroni_primary": 0, "patroni_replica": 1, "patroni_sync_standby": 1,
		"patroni_xlog_location": 0, "patroni_xlog_received_location": float64(leaderLSN - receiveLag),
		"patroni_xlog_replayed_location": float64(leaderLSN - replayLag), "patroni_xlog_replayed_timestamp": 1893553499,
		"patroni_xlog_paused": 1, "patroni_postgres_streaming": 1, "patroni_is_paused": 1, "patroni_cluster_unlocked": 0,
	}
	for i, c := range []struct {
		snap snapshot
		want map[string]float64
	}{
		{leaderSnap(), primary}, // 1
		{replicaSnap("sync", func(s *snapshot) { s.obs.ReplayPaused, s.view.Paused = true, true }), replica}, // 2
	} {
		a := healthAgent(TagsConfig{})
		a.metrics.lastPromotionUnixNs.Store(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano())
		a.metrics.lastFailoverNs.Store(int64(1234 * time.Millisecond))
		fams := scrape(t, a, c.snap)
		for name, want := range c.want {
			if got, ok := value(t, fams, name, patroni); !ok || got != want {
				t.Errorf("case %d: %s = %v (present %v), want %v", i+1, name, got, ok, want)
			}
		}
		for name, want := range map[string]float64{"pigwf_ha_is_leader": map[int]float64{0: 1, 1: 0}[i],
			"pigwf_ha_last_failover_seconds": 1.234, "pigwf_ha_last_promotion_timestamp_seconds": 1893553200} {
			if got, ok := value(t, fams, name, pigwf); !ok || got != want {
				t.Errorf("case %d: %s = %v (present %v), want %v", i+1, name, got, ok, want)
			}
		}
		if f := fams["patroni_xlog_location"]; f == nil || f.GetType() != dto.MetricType_COUNTER {
			t.Errorf("case %d: patroni_xlog_location is not a counter (as Patroni's)", i+1)
		}
		if f := fams["pigwf_ha_last_decision_info"]; f == nil || len(f.Metric) != 1 {
			t.Errorf("case %d: no pigwf_ha_last_decision_info", i+1)
		}
	}
	// A stopped member: no server version, so no streaming metrics (as Patroni); no
	// promotion yet, so no promotion or failover metric.
	a := healthAgent(TagsConfig{})
	fams := scrape(t, a, snapshot{obs: pgStopped()})
	for _, name := range []string{"patroni_postgres_streaming", "patroni_postgres_in_archive_recovery", "pigwf_ha_last_failover_seconds", "pigwf_ha_last_promotion_timestamp_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("stopped member: %s is exported", name)
		}
	}
	for name, want := range map[string]float64{"patroni_postgres_running": 0, "patroni_postgres_server_version": 0, "patroni_cluster_unlocked": 1, "patroni_postgres_timeline": 0} {
		if got, ok := value(t, fams, name, patroni); !ok || got != want {
			t.Errorf("stopped member: %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
}

// promotePG is a PostgreSQL whose promotion takes 300 ms on the agent's clock.
type promotePG struct {
	Postgres
	clock *manualClock
}

func (p promotePG) Promote(context.Context) error {
	p.clock.now += 300 * time.Millisecond
	return nil
}

func (promotePG) Checkpoint(context.Context) error { return nil }

// The failover's duration: from the agent's first evidence of the leader's loss (the record
// turning stale on its clock, or the key's deletion seen) to its PostgreSQL accepting writes.
func TestFailoverDuration(t *testing.T) {
	a := healthAgent(TagsConfig{})
	clock := a.clock.(*manualClock)
	a.cache, a.hacfg, a.asyncDone = newCache(), haagent.DefaultConfig(), make(chan asyncResult, 1)
	a.pg = promotePG{clock: clock}
	// The leader's record, last changed at 1 h, turns stale StaleAfter later.
	a.cache.setLeader(dcs.LeaderRecord{Holder: "n1"}, nil, 7, time.Hour)
	if got, want := a.leaderLostAt(), time.Hour+a.hacfg.StaleAfter(); got != want {
		t.Errorf("stale record: evidence at %s, want %s", got, want)
	}
	a.cache.deleteLeader(time.Hour + 100*time.Millisecond)
	if got, want := a.leaderLostAt(), time.Hour+100*time.Millisecond; got != want {
		t.Errorf("deleted key: evidence at %s, want %s", got, want)
	}
	a.leaderLost = a.leaderLostAt()
	clock.now = time.Hour + 250*time.Millisecond // the promotion starts 150 ms after the deletion
	before := time.Now()
	a.promote()
	a.finishAsync(<-a.asyncDone)
	if got := time.Duration(a.metrics.lastFailoverNs.Load()); got != 450*time.Millisecond {
		t.Errorf("failover took %s, want 450ms (150 ms to promote + 300 ms promoting)", got)
	}
	if at := time.Unix(0, a.metrics.lastPromotionUnixNs.Load()); at.Before(before) || at.After(time.Now()) {
		t.Errorf("promotion time %s, want between %s and now", at, before)
	}
	if a.leaderLost != 0 {
		t.Error("the evidence was not cleared after the promotion")
	}
	// A promotion without a failover (a resumed one) measures nothing.
	a.metrics.lastFailoverNs.Store(0)
	a.promote()
	a.finishAsync(<-a.asyncDone)
	if got := a.metrics.lastFailoverNs.Load(); got != 0 {
		t.Errorf("promotion without a failover: measured %s", time.Duration(got))
	}
}
