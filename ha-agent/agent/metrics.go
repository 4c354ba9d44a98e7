package agent

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

type metrics struct {
	failovers       atomic.Int64
	fences          atomic.Int64
	lastFenceNs     atomic.Int64 // postmaster and children SIGKILLed
	lastFenceDeadNs atomic.Int64 // every process dead
	loopNs          atomic.Int64
	cycles          atomic.Int64
	renewFailures   atomic.Int64
}

// handleMetrics writes Prometheus text exposition.
func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot()
	now := a.clock.Now()
	var b strings.Builder
	labels := fmt.Sprintf(`cluster="%s",member="%s"`, promEscape(a.cfg.Cluster), promEscape(a.cfg.Name))
	g := func(name, help, typ string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %s\n", name, help, name, typ, name, labels, strconv.FormatFloat(v, 'g', -1, 64))
	}
	b2f := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	g("pigwf_ha_is_leader", "1 if this member holds leadership now (the /primary check).", "gauge", b2f(a.isPrimary(s, now)))
	g("pigwf_ha_postgres_running", "1 if PostgreSQL is running.", "gauge", b2f(s.obs.State == haagent.PGRunning))
	g("pigwf_ha_postgres_in_recovery", "1 if PostgreSQL is a standby.", "gauge", b2f(s.obs.InRecovery))
	g("pigwf_ha_timeline", "PostgreSQL timeline.", "gauge", float64(s.obs.Timeline))
	g("pigwf_ha_wal_position_bytes", "Flush LSN on a primary, max(receive, replay) LSN on a standby.", "gauge", float64(s.local.WALPosition()))
	g("pigwf_ha_lag_bytes", "WAL bytes behind the leader's last recorded position.", "gauge", float64(lagOf(s)))
	g("pigwf_ha_dcs_reachable", "1 if the last etcd operation succeeded.", "gauge", b2f(s.local.DCSReachable))
	g("pigwf_ha_loop_duration_seconds", "Duration of the last HA loop cycle.", "gauge", time.Duration(a.metrics.loopNs.Load()).Seconds())
	g("pigwf_ha_loop_cycles_total", "HA loop cycles run.", "counter", float64(a.metrics.cycles.Load()))
	g("pigwf_ha_failovers_total", "Times this member took the leader lock from another holder.", "counter", float64(a.metrics.failovers.Load()))
	g("pigwf_ha_fence_events_total", "Times this member fenced its PostgreSQL.", "counter", float64(a.metrics.fences.Load()))
	g("pigwf_ha_last_fence_latency_seconds", "Time the last fence took until the postmaster and all its children had SIGKILL pending (none runs user code again).", "gauge", time.Duration(a.metrics.lastFenceNs.Load()).Seconds())
	g("pigwf_ha_last_fence_all_dead_seconds", "Time the last fence took until no PostgreSQL process of the data directory was alive.", "gauge", time.Duration(a.metrics.lastFenceDeadNs.Load()).Seconds())
	g("pigwf_ha_renew_failures_total", "Leader renewals that failed.", "counter", float64(a.metrics.renewFailures.Load()))
	if a.access != nil {
		g("pigwf_ha_api_refused_total", "Mutating REST API requests refused (401 without valid credentials, 403 outside the allowlist).", "counter", float64(a.access.refused.Load()))
	}
	fmt.Fprintf(&b, "# HELP pigwf_ha_last_decision_info The last decision and its reason.\n# TYPE pigwf_ha_last_decision_info gauge\n")
	fmt.Fprintf(&b, "pigwf_ha_last_decision_info{%s,action=\"%s\",reason=\"%s\"} 1\n", labels, promEscape(s.action.Kind.String()), promEscape(s.reason))
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// promEscape escapes a Prometheus label value.
func promEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
