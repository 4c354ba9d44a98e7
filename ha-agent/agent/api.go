package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/internal/httplimit"
)

// REST API. Health checks follow Patroni's (its api.py), so HAProxy configurations written for
// Patroni keep working: Pigsty checks with "OPTIONS /primary" (or /replica, /read-only), and
// Patroni's sample haproxy.cfg with a bare "option httpchk", which is OPTIONS /. GET, HEAD and
// OPTIONS answer 200 when the check holds, 503 otherwise, with the member's status (/patroni)
// as the body. The rules are in health.go.
//
//	/ /primary /leader /master /read-write  holds leadership now: PostgreSQL a running primary, the
//	                                        lease (or failsafe) valid at the request's instant (never
//	                                        past the fence deadline), no planned stop begun
//	/standby-leader                         always 503: pigwf runs no standby clusters
//	/replica [?lag=16MB] [?replication_state=streaming] [?tag_<name>=<value>]
//	                                        running standby, not tagged noloadbalance, replay within lag
//	/read-only                              primary, or as /replica
//	/sync /synchronous, /quorum             standby the leader's pg_stat_replication reports sync
//	                                        (quorum), and as /replica
//	/async /asynchronous                    standby reported neither sync nor quorum, and as /replica
//	/read-only-sync, /read-only-quorum      primary, or as /sync (/quorum)
//	/health                                 PostgreSQL running
//	/liveness                               the HA loop cycled within the leader timeout (twice it
//	                                        on a standby), or the cluster is paused
//	/readiness [?lag=] [?mode=apply|write]  leader; or streaming standby within lag (default
//	                                        maximum_lag_on_failover) of replayed (written) WAL
//	?tag_<name>=<value> must match the member's tags on every check but the leader's.
//
//	/patroni                               the member's status in Patroni's shape, plus pigwf's fields
//	/cluster                               members, roles and states (haagent.ClusterStatus, Patroni's shape)
//	/history                               timeline switches: [[timeline, lsn, reason, timestamp, new_leader], ...]
//	/metrics                               Prometheus: pigwf_ha_* and Patroni's patroni_* (labels scope, name)
//	/probe                                 live state for racing members
//	POST /switchover {leader, candidate, scheduled_at}, POST /failover {candidate}
//	POST /failsafe {leader}                failsafe confirmation between members
//
// GET, HEAD and OPTIONS are open to anyone who reaches the port (load balancers); every other
// request needs a client certificate of the deployment CA or api.auth's password, from an
// address api.allowlist allows (apiGuard, in front of these routes).
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	for path, c := range healthChecks {
		if path == "/" {
			path = "/{$}" // "/" alone would match every path the mux does not know
		}
		mux.HandleFunc(path, a.handleHealth(c))
	}
	mux.HandleFunc("/liveness", a.handleLiveness)
	mux.HandleFunc("/patroni", a.handlePatroni)
	mux.HandleFunc("/history", a.handleHistory)
	mux.HandleFunc("/cluster", a.handleCluster)
	mux.HandleFunc("/metrics", a.handleMetrics)
	mux.HandleFunc("/probe", a.handleProbe)
	mux.HandleFunc("/switchover", a.handleFailoverRequest(true))
	mux.HandleFunc("/failover", a.handleFailoverRequest(false))
	mux.HandleFunc("/failsafe", a.handleFailsafe)
	mux.HandleFunc("/restart", a.handleRestart)
	mux.HandleFunc("/reload", a.handleReload)
	mux.HandleFunc("/settings", a.handleSettings)
	return mux
}

// setSnapshot publishes the loop's latest snapshot to the API and wakes held health checks.
func (a *Agent) setSnapshot(s snapshot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.snap = s
	if a.snapChanged != nil {
		close(a.snapChanged)
		a.snapChanged = nil
	}
}

// snapshotAndChange is the snapshot and a channel closed when the next one is published.
func (a *Agent) snapshotAndChange() (snapshot, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.snapChanged == nil {
		a.snapChanged = make(chan struct{})
	}
	return a.snap, a.snapChanged
}

func (a *Agent) snapshot() snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snap
}

func (a *Agent) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// isPrimary: Decide's rule says I hold leadership at THIS instant (my lease, or failsafe
// confirmations, still cover it), the fence timer, which acts on the same proofs, has not
// fired, no planned stop of my PostgreSQL has begun (s.stopping: a load balancer drains this
// member before PostgreSQL refuses connections), and my PostgreSQL takes writes (running, out
// of recovery: a new leader is not routed writes while its promotion still runs, as Patroni's
// role check). A load balancer never routes writes to a node past its fence deadline.
func (a *Agent) isPrimary(s snapshot, now time.Duration) bool {
	return !s.stopping && s.obs.State == haagent.PGRunning && !s.obs.InRecovery &&
		haagent.HoldsLeadership(s.view, s.local, now) && a.fencer.Writable()
}

// syncStateOf is what the leader's pg_stat_replication, as its agent published it, says of this
// member; known=false when there is no other leader or its report is stale (older than
// member_report_fresh_ms). Never from config or the sync key alone: a role shown must be the
// one PostgreSQL reports.
func (a *Agent) syncStateOf(s snapshot, now time.Duration) (known bool, st haagent.SyncState) {
	lr := s.view.Leader
	if lr == nil || lr.Holder == a.cfg.Name {
		return false, haagent.SyncNone
	}
	if m, ok := s.view.Members[lr.Holder]; !ok || m.ReportStale(s.view.Config, now) {
		return false, haagent.SyncNone
	}
	return true, haagent.SyncState(s.members[lr.Holder].rec.Replication[a.cfg.Name].SyncState)
}

// failsafeActive is Patroni's failsafe_mode_is_active: this leader keeps writes on the
// members' confirmations while etcd is unreachable, or this member has promised a leader to
// confirm it.
func (a *Agent) failsafeActive(s snapshot, now time.Duration) bool {
	if s.view.Config.FailsafeMode && !s.local.DCSReachable && a.isPrimary(s, now) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.promise.Active(now)
}

// handleFailoverRequest writes the DCS failover key; the leader's agent
// acts on it (switchover: it demotes cleanly first).
func (a *Agent) handleFailoverRequest(switchover bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Leader      string    `json:"leader"`
			Candidate   string    `json:"candidate"`
			ScheduledAt time.Time `json:"scheduled_at"`
		}
		if !decodeBody(w, r, &req) {
			return
		}
		if switchover && req.Leader == "" {
			http.Error(w, `switchover needs "leader" (and optionally "candidate")`, http.StatusBadRequest)
			return
		}
		if !switchover && req.Candidate == "" {
			http.Error(w, `failover needs "candidate"`, http.StatusBadRequest)
			return
		}
		rec := dcs.FailoverRecord{From: req.Leader, To: req.Candidate, ScheduledAt: req.ScheduledAt, RequestedBy: "rest-api@" + a.cfg.Name}
		ctx, cancel := context.WithTimeout(r.Context(), failoverRequestTimeout)
		defer cancel()
		if _, err := a.store.RequestFailover(ctx, rec); err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, dcs.ErrExists) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		a.writeJSON(w, r, http.StatusAccepted, map[string]any{"requested": rec})
	}
}

// failoverRequestTimeout bounds the etcd write of POST /switchover and /failover: the longest a
// handler of this API takes.
const failoverRequestTimeout = 2 * time.Second

// maxRequestBody caps what a POST may send (httplimit.MaxBody): every request body this API
// takes is a few fields of JSON. Unbounded, a large body made the decoder allocate several times
// its size, and an agent killed for memory takes its PostgreSQL down with it.
const maxRequestBody = httplimit.MaxBody

// decodeBody reads r's JSON body into v, at most maxRequestBody bytes; it answers 413 for a
// larger body and 400 for one that is not JSON, and then returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = httplimit.Body(w, r)
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case httplimit.TooLarge(err):
		http.Error(w, fmt.Sprintf("request body over %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
		return false
	case err != nil:
		http.Error(w, "bad JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// snapshot is what the API answers from: the last cycle's inputs.
type snapshot struct {
	view      haagent.ClusterView
	local     haagent.LocalState
	obs       pgctl.Observation
	action    haagent.Action
	reason    string
	at        time.Duration
	members   map[string]memberEntry
	leaderRec *leaderEntry
	sync      *dcs.SyncRecord
	history   []dcs.HistoryEntry
	// stopping: a planned stop of PostgreSQL (a switchover's demotion, the agent's shutdown)
	// has begun; /primary answers 503 from then on.
	stopping bool
	// dcsLastSeen is the wall-clock time of the last cycle that reached etcd (zero: none).
	dcsLastSeen time.Time
	// params is the dynamic parameters' writer's state: the config revision applied and the
	// settings waiting for a restart.
	params paramsState
}
