package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/internal/httplimit"
)

// REST API. Health endpoints follow Patroni's so HAProxy configs keep
// working (Pigsty checks with "OPTIONS /primary"): GET, HEAD and OPTIONS
// answer 200 when the check holds, 503 otherwise.
//
//	/primary /leader /master /read-write   holds leadership now (never past the fence deadline)
//	/replica [?lag=<bytes|kB|MB|GB>]       running standby streaming WAL (within lag)
//	/read-only                             primary or running standby
//	/sync /synchronous                     standby that the primary's pg_stat_replication reports sync
//	/async /asynchronous                   streaming standby that is not sync
//	/health                                PostgreSQL running
//	/cluster                               members, roles and states (haagent.ClusterStatus)
//	/metrics                               Prometheus text
//	/probe                                 live state for racing members
//	POST /switchover {leader, candidate, scheduled_at}, POST /failover {candidate}
//	POST /failsafe {leader}                failsafe confirmation between members
//
// GET, HEAD and OPTIONS are open to anyone who reaches the port (load balancers); every other
// request needs a client certificate of the deployment CA or api.auth's password, from an
// address api.allowlist allows (apiGuard, in front of these routes).
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	check := func(fn func(s snapshot, now time.Duration, r *http.Request) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
			default:
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			s := a.snapshot()
			code := http.StatusServiceUnavailable
			if fn(s, a.clock.Now(), r) {
				code = http.StatusOK
			}
			a.writeJSON(w, r, code, a.status(s))
		}
	}
	for _, p := range []string{"/primary", "/leader", "/master", "/read-write"} {
		mux.HandleFunc(p, check(func(s snapshot, now time.Duration, _ *http.Request) bool { return a.isPrimary(s, now) }))
	}
	mux.HandleFunc("/replica", check(func(s snapshot, _ time.Duration, r *http.Request) bool {
		if !streamingReplica(s) {
			return false
		}
		if lag := r.URL.Query().Get("lag"); lag != "" {
			maxLag, err := parseBytes(lag)
			return err == nil && lagOf(s) <= maxLag
		}
		return true
	}))
	mux.HandleFunc("/read-only", check(func(s snapshot, now time.Duration, _ *http.Request) bool {
		return a.isPrimary(s, now) || (s.obs.State == haagent.PGRunning && s.obs.InRecovery)
	}))
	syncCheck := check(func(s snapshot, now time.Duration, _ *http.Request) bool { return a.isSyncStandby(s, now) })
	mux.HandleFunc("/sync", syncCheck)
	mux.HandleFunc("/synchronous", syncCheck)
	asyncCheck := check(func(s snapshot, now time.Duration, _ *http.Request) bool {
		return streamingReplica(s) && !a.isSyncStandby(s, now)
	})
	mux.HandleFunc("/async", asyncCheck)
	mux.HandleFunc("/asynchronous", asyncCheck)
	mux.HandleFunc("/health", check(func(s snapshot, _ time.Duration, _ *http.Request) bool {
		return s.obs.State == haagent.PGRunning
	}))
	mux.HandleFunc("/cluster", a.handleCluster)
	mux.HandleFunc("/metrics", a.handleMetrics)
	mux.HandleFunc("/probe", a.handleProbe)
	mux.HandleFunc("/switchover", a.handleFailoverRequest(true))
	mux.HandleFunc("/failover", a.handleFailoverRequest(false))
	mux.HandleFunc("/failsafe", a.handleFailsafe)
	mux.HandleFunc("/patroni", func(w http.ResponseWriter, r *http.Request) { a.writeJSON(w, r, http.StatusOK, a.status(a.snapshot())) })
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { a.writeJSON(w, r, http.StatusOK, a.status(a.snapshot())) })
	return mux
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

// isPrimary: Decide's rule says I hold leadership at THIS instant (my
// lease, or failsafe confirmations, still cover it) and the fence timer,
// which acts on the same proofs, has not fired. A load balancer never
// routes writes to a node past its fence deadline.
func (a *Agent) isPrimary(s snapshot, now time.Duration) bool {
	return haagent.HoldsLeadership(s.view, s.local, now) && a.fencer.Writable()
}

func streamingReplica(s snapshot) bool {
	return s.obs.State == haagent.PGRunning && s.obs.InRecovery && s.obs.WALReceiverRunning
}

func lagOf(s snapshot) uint64 {
	if lr := s.view.Leader; lr != nil {
		return haagent.LagBytes(lr.Optime, max(s.obs.ReceivedLSN, s.obs.ReplayedLSN))
	}
	return 0
}

// isSyncStandby: the PRIMARY's pg_stat_replication (as its agent
// published it, recently) says this member is sync. Never from config or
// the sync key alone: a role shown must be the one PostgreSQL reports.
func (a *Agent) isSyncStandby(s snapshot, now time.Duration) bool {
	if !streamingReplica(s) || s.view.Leader == nil || s.view.Leader.Holder == a.cfg.Name {
		return false
	}
	if m, ok := s.view.Members[s.view.Leader.Holder]; !ok || m.ReportStale(s.view.Config, now) {
		return false
	}
	return haagent.SyncState(s.members[s.view.Leader.Holder].rec.Replication[a.cfg.Name].SyncState).Synchronous()
}

// parseBytes parses "1048576", "16kB", "10MB", "1GB".
func parseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"kB", 1 << 10}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("lag %q: want bytes, e.g. 1048576 or 16MB", s)
	}
	return n * mult, nil
}

// memberStatus is this member's own status (health check bodies, /patroni).
type memberStatus struct {
	Name     string `json:"name"`
	Cluster  string `json:"cluster"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Timeline uint32 `json:"timeline"`
	XLogPos  string `json:"wal_position"`
	Leader   string `json:"leader,omitempty"`
	Reason   string `json:"last_reason"`
	Paused   bool   `json:"paused,omitempty"`
}

func (a *Agent) status(s snapshot) memberStatus {
	st := memberStatus{Name: a.cfg.Name, Cluster: a.cfg.Cluster, State: string(s.obs.State), Timeline: s.obs.Timeline,
		XLogPos: s.local.WALPosition().String(), Reason: s.reason, Paused: s.view.Paused, Role: "replica"}
	if a.isPrimary(s, a.clock.Now()) {
		st.Role = "primary"
	}
	if s.view.Leader != nil {
		st.Leader = s.view.Leader.Holder
	}
	return st
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
}
