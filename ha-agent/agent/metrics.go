package agent

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	lastCycleNs     atomic.Int64 // agent clock at the start of the last cycle (/liveness)
	// lastPromotionUnixNs: wall clock when this member's PostgreSQL last finished a promotion;
	// lastFailoverNs: from its first evidence of the previous leader's loss to then.
	lastPromotionUnixNs atomic.Int64
	lastFailoverNs      atomic.Int64
}

// handleMetrics serves GET /metrics: pigwf's own pigwf_ha_* metrics (labels cluster, member)
// and Patroni's patroni_* (labels scope, name), which Pigsty's dashboards and alerts read, in
// Prometheus' text format.
func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) {
	a.metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collector{a})
		a.metricsHTTP = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	})
	a.metricsHTTP.ServeHTTP(w, r)
}

// collector renders the agent's metrics from its snapshot at each scrape.
type collector struct{ a *Agent }

// Describe sends nothing: the set of metrics depends on the agent (the API guard's counter)
// and on PostgreSQL (Patroni's streaming metrics need its version), so the collector is
// unchecked.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	s, now := a.snapshot(), a.clock.Now()
	c.pigwf(ch, s, now)
	c.patroni(ch, s, now)
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func (c collector) pigwf(ch chan<- prometheus.Metric, s snapshot, now time.Duration) {
	a := c.a
	labels := prometheus.Labels{"cluster": a.cfg.Cluster, "member": a.cfg.Name}
	g := func(name, help string, typ prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, labels), typ, v)
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	g("pigwf_ha_is_leader", "1 if this member holds leadership now (the /primary check).", gauge, b2f(a.isPrimary(s, now)))
	g("pigwf_ha_postgres_running", "1 if PostgreSQL is running.", gauge, b2f(s.obs.State == haagent.PGRunning))
	g("pigwf_ha_postgres_in_recovery", "1 if PostgreSQL is a standby.", gauge, b2f(s.obs.InRecovery))
	g("pigwf_ha_timeline", "PostgreSQL timeline.", gauge, float64(s.obs.Timeline))
	g("pigwf_ha_wal_position_bytes", "Flush LSN on a primary, max(receive, replay) LSN on a standby.", gauge, float64(s.local.WALPosition()))
	g("pigwf_ha_lag_bytes", "WAL bytes behind the leader's last recorded position.", gauge, float64(lagOf(s)))
	g("pigwf_ha_dcs_reachable", "1 if the last etcd operation succeeded.", gauge, b2f(s.local.DCSReachable))
	g("pigwf_ha_loop_duration_seconds", "Duration of the last HA loop cycle.", gauge, time.Duration(a.metrics.loopNs.Load()).Seconds())
	g("pigwf_ha_loop_cycles_total", "HA loop cycles run.", counter, float64(a.metrics.cycles.Load()))
	g("pigwf_ha_failovers_total", "Times this member took the leader lock from another holder.", counter, float64(a.metrics.failovers.Load()))
	g("pigwf_ha_fence_events_total", "Times this member fenced its PostgreSQL.", counter, float64(a.metrics.fences.Load()))
	g("pigwf_ha_last_fence_latency_seconds", "Time the last fence took until the postmaster and all its children had SIGKILL pending (none runs user code again).", gauge, time.Duration(a.metrics.lastFenceNs.Load()).Seconds())
	g("pigwf_ha_last_fence_all_dead_seconds", "Time the last fence took until no PostgreSQL process of the data directory was alive.", gauge, time.Duration(a.metrics.lastFenceDeadNs.Load()).Seconds())
	g("pigwf_ha_renew_failures_total", "Leader renewals that failed.", counter, float64(a.metrics.renewFailures.Load()))
	if ns := a.metrics.lastPromotionUnixNs.Load(); ns != 0 {
		g("pigwf_ha_last_promotion_timestamp_seconds", "When this member's PostgreSQL last finished a promotion (seconds since 1970).", gauge, float64(ns)/1e9)
	}
	if ns := a.metrics.lastFailoverNs.Load(); ns != 0 {
		g("pigwf_ha_last_failover_seconds", "The last failover to this member: from its first evidence of the previous leader's loss "+
			"(the leader record turning stale on its clock, or the key's deletion seen) to its PostgreSQL accepting writes.", gauge, time.Duration(ns).Seconds())
	}
	if a.access != nil {
		g("pigwf_ha_api_refused_total", "Mutating REST API requests refused (401 without valid credentials, 403 outside the allowlist).", counter, float64(a.access.refused.Load()))
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("pigwf_ha_last_decision_info", "The last decision and its reason.", []string{"action", "reason"}, labels),
		gauge, 1, s.action.Kind.String(), s.reason)
}

// patroni writes Patroni's metrics with its names, help, types and values (its api.py,
// do_GET_metrics), from what pigwf knows; where pigwf has no such datum the comment says so
// and the value is the honest one.
func (c collector) patroni(ch chan<- prometheus.Metric, s snapshot, now time.Duration) {
	a := c.a
	labels := prometheus.Labels{"scope": a.cfg.Cluster, "name": a.cfg.Name}
	g := func(name, help string, typ prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, labels), typ, v)
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	st := a.status(s, now)
	f := a.factsOf(s, now)
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	var location, received, replayed float64
	replayedAt, paused := time.Time{}, false
	switch x := st.XLog.(type) {
	case primaryXLog:
		location = float64(x.Location)
	case replicaXLog:
		received, replayed = float64(x.ReceivedLocation), float64(x.ReplayedLocation)
		replayedAt, paused = s.obs.ReplayedAt, x.Paused
	}
	postmaster := time.Time{}
	if f.running {
		postmaster = s.obs.PostmasterAt
	}
	g("patroni_version", "Version of the pigwf agent serving Patroni's API (Patroni's: its semver without periods).", gauge, versionNumber(agentVersion()))
	g("patroni_postgres_running", "Value is 1 if Postgres is running, 0 otherwise.", gauge, b2f(f.running))
	g("patroni_postmaster_start_time", "Epoch seconds since Postgres started.", gauge, unix(postmaster))
	g("patroni_primary", "Value is 1 if this node is the leader, 0 otherwise.", gauge, b2f(st.Role == "primary"))
	g("patroni_xlog_location", "Current location of the Postgres transaction log, 0 if this node is not the leader.", counter, location)
	// pigwf runs no standby clusters.
	g("patroni_standby_leader", "Value is 1 if this node is the standby_leader, 0 otherwise.", gauge, 0)
	g("patroni_replica", "Value is 1 if this node is a replica, 0 otherwise.", gauge, b2f(st.Role == "replica"))
	g("patroni_sync_standby", "Value is 1 if this node is a sync standby, 0 otherwise.", gauge, b2f(st.SyncStandby))
	g("patroni_quorum_standby", "Value is 1 if this node is a quorum standby, 0 otherwise.", gauge, b2f(st.QuorumStandby))
	g("patroni_xlog_received_location", "Current location of the received Postgres transaction log, 0 if this node is not a replica.", counter, received)
	g("patroni_xlog_replayed_location", "Current location of the replayed Postgres transaction log, 0 if this node is not a replica.", counter, replayed)
	g("patroni_xlog_replayed_timestamp", "Current timestamp of the replayed Postgres transaction log, 0 if null.", gauge, unix(replayedAt))
	g("patroni_xlog_paused", "Value is 1 if the Postgres xlog is paused, 0 otherwise.", gauge, b2f(paused))
	if st.ServerVersion >= 90600 { // as Patroni: only while PostgreSQL answers
		g("patroni_postgres_streaming", "Value is 1 if Postgres is streaming, 0 otherwise.", gauge, b2f(f.replicationState == "streaming"))
		g("patroni_postgres_in_archive_recovery", "Value is 1 if Postgres is replicating from archive, 0 otherwise.", gauge, b2f(f.replicationState == "in archive recovery"))
	}
	g("patroni_postgres_server_version", "Version of Postgres (if running), 0 otherwise.", gauge, float64(st.ServerVersion))
	g("patroni_cluster_unlocked", "Value is 1 if the cluster is unlocked, 0 if locked.", gauge, b2f(st.ClusterUnlocked))
	g("patroni_failsafe_mode_is_active", "Value is 1 if failsafe mode is active, 0 if inactive.", gauge, b2f(st.FailsafeActive))
	timeline := 0.0
	if f.running {
		timeline = float64(s.obs.Timeline)
	}
	g("patroni_postgres_timeline", "Postgres timeline of this node (if running), 0 otherwise.", gauge, timeline)
	g("patroni_dcs_last_seen", "Epoch timestamp when DCS was last contacted successfully by Patroni.", gauge, float64(st.DCSLastSeen))
	g("patroni_pending_restart", "Value is 1 if the node needs a restart, 0 otherwise.", gauge, b2f(len(s.params.Pending) > 0))
	g("patroni_is_paused", "Value is 1 if auto failover is disabled, 0 otherwise.", gauge, b2f(s.view.Paused))
}

// lagOf is how far this member's WAL (received or replayed) is behind the leader's position
// at its last renewal (0 without a leader).
func lagOf(s snapshot) uint64 {
	if lr := s.view.Leader; lr != nil {
		return haagent.LagBytes(lr.Optime, max(s.obs.ReceivedLSN, s.obs.ReplayedLSN))
	}
	return 0
}
