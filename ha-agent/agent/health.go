package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// Health checks with Patroni's semantics (its api.py, do_GET): HAProxy configurations written
// for Patroni route by them. Each answers 200 or 503 from the loop's last snapshot and the
// instant of the request; the rule of each check lives here once.

// facts are what the health checks judge, taken from one snapshot at one instant.
type facts struct {
	running bool // PostgreSQL runs and answers
	// primary: this member holds leadership now and its PostgreSQL takes writes (isPrimary:
	// never past the fence deadline, never once a planned stop began).
	primary bool
	replica bool // PostgreSQL runs as a standby (pg_is_in_recovery)
	// replicationState is Patroni's: "streaming" (the WAL receiver streams), "in archive
	// recovery" (a standby that does not stream but has a restore_command), or "".
	replicationState string
	// syncKnown: the leader's pg_stat_replication as it last published it is fresh (within
	// member_report_fresh_ms); syncState is what it says of this member.
	syncKnown bool
	syncState haagent.SyncState
	// inSyncKey: the DCS sync key names this member a synchronous standby.
	inSyncKey bool
	// leaderLSN is how far the leader's WAL is known to reach: its position at its last renewal
	// (or the last leader's), or what this member received, whichever is further (0: unknown,
	// as Patroni's cluster.status.last_lsn and latest_end_lsn).
	leaderLSN haagent.LSN
	// streamingStandbys: standbys this member's pg_stat_replication shows streaming (a primary).
	streamingStandbys  int
	received, replayed haagent.LSN
	tags               haagent.ClusterTags
	dcsReachable       bool
	failsafeActive     bool
	maxLagOnFailover   uint64
}

func (a *Agent) factsOf(s snapshot, now time.Duration) facts {
	f := facts{
		running:          s.obs.State == haagent.PGRunning,
		primary:          a.isPrimary(s, now),
		received:         s.obs.ReceivedLSN,
		replayed:         s.obs.ReplayedLSN,
		tags:             haagent.ClusterTags(a.cfg.Tags),
		dcsReachable:     s.local.DCSReachable,
		failsafeActive:   a.failsafeActive(s, now),
		maxLagOnFailover: s.view.Config.MaximumLagOnFailover,
	}
	f.replica = f.running && s.obs.InRecovery
	for _, r := range s.obs.Replication {
		if r.State == "streaming" {
			f.streamingStandbys++
		}
	}
	switch {
	case !f.replica:
	case s.obs.WALReceiverStatus == "streaming":
		f.replicationState = "streaming"
	case s.obs.RestoreCommand:
		f.replicationState = "in archive recovery"
	}
	f.syncKnown, f.syncState = a.syncStateOf(s, now)
	f.inSyncKey = s.view.Sync != nil && s.view.Sync.Leader != a.cfg.Name && s.view.Sync.Has(a.cfg.Name)
	if lr := s.view.Leader; lr != nil {
		f.leaderLSN = lr.Optime
	} else if lr := s.view.LastLeader; lr != nil {
		f.leaderLSN = lr.Optime
	}
	if f.replica {
		f.leaderLSN = max(f.leaderLSN, f.received)
	}
	// Patroni's received_location falls back to the replayed one.
	if f.received == 0 {
		f.received = f.replayed
	}
	return f
}

// healthCheck is one health endpoint. tags: the request's ?tag_<name>=<value> must match the
// member's tags too (every check but the leader's, as in Patroni).
type healthCheck struct {
	ok   func(f facts, q url.Values) bool
	tags bool
}

func primaryCheck(f facts, _ url.Values) bool { return f.primary }

// healthChecks are the health endpoints by path; "/" (and a bare HAProxy "option httpchk",
// which sends OPTIONS /) is /primary, as in Patroni.
var healthChecks = map[string]healthCheck{
	"/":           {ok: primaryCheck},
	"/primary":    {ok: primaryCheck},
	"/leader":     {ok: primaryCheck},
	"/master":     {ok: primaryCheck},
	"/read-write": {ok: primaryCheck},
	// pigwf runs no standby clusters: no member is ever a standby leader.
	"/standby-leader":        {ok: func(facts, url.Values) bool { return false }},
	"/standby_leader":        {ok: func(facts, url.Values) bool { return false }},
	"/replica":               {ok: replicaOK, tags: true},
	"/read-only":             {ok: readOnlyOK, tags: true},
	"/sync":                  {ok: syncOK, tags: true},
	"/synchronous":           {ok: syncOK, tags: true},
	"/quorum":                {ok: quorumOK, tags: true},
	"/async":                 {ok: asyncOK, tags: true},
	"/asynchronous":          {ok: asyncOK, tags: true},
	"/read-only-sync":        {ok: func(f facts, q url.Values) bool { return f.primary || syncOK(f, q) }, tags: true},
	"/read-only-synchronous": {ok: func(f facts, q url.Values) bool { return f.primary || syncOK(f, q) }, tags: true},
	"/read-only-quorum":      {ok: func(f facts, q url.Values) bool { return f.primary || quorumOK(f, q) }, tags: true},
	"/health":                {ok: func(f facts, _ url.Values) bool { return f.running }, tags: true},
	"/readiness":             {ok: readyOK},
}

// replicaOK is Patroni's replica check: a running standby, not tagged noloadbalance, whose
// replay is within ?lag= of the leader's known position and whose replication state is
// ?replication_state= (when given). A lag that does not parse fails the check (Patroni
// ignores it; a typo in a load balancer's configuration should show, not pass).
func replicaOK(f facts, q url.Values) bool {
	if !f.replica || f.tags.NoLoadBalance {
		return false
	}
	if want := q.Get("replication_state"); want != "" && want != f.replicationState {
		return false
	}
	if lag := q.Get("lag"); lag != "" {
		maxLag, err := parseBytes(lag)
		return err == nil && haagent.LagBytes(f.leaderLSN, f.replayed) <= maxLag
	}
	return true
}

// readOnlyOK is Patroni's /read-only: the primary or a replica (replicaOK). With
// ?prefer=replica (pigwf's) the primary passes only while no standby streams from it: a read
// service sends reads to the replicas, and to the primary only when it has none, whichever
// member leads after a failover (a load balancer's static backup flag names the primary of the
// inventory, not the current one).
func readOnlyOK(f facts, q url.Values) bool {
	if f.primary {
		return q.Get("prefer") != "replica" || f.streamingStandbys == 0
	}
	return replicaOK(f, q)
}

// syncOK: the leader's pg_stat_replication says this member is sync (never the config or the
// sync key alone: a role shown must be the one PostgreSQL reports), and it passes replicaOK.
func syncOK(f facts, q url.Values) bool {
	return f.syncKnown && f.syncState == haagent.SyncSync && replicaOK(f, q)
}

// quorumOK: as syncOK for a quorum standby (synchronous_standby_names = ANY n (...)).
func quorumOK(f facts, q url.Values) bool {
	return f.syncKnown && f.syncState == haagent.SyncQuorum && replicaOK(f, q)
}

// asyncOK: the leader's report says this member is neither sync nor quorum; while that report
// is stale, the sync key (Patroni's source) must not name it. Excluding a member on the key
// alone is safe: it only sends fewer reads to a standby that may hold commits back.
func asyncOK(f facts, q url.Values) bool {
	synchronous := f.inSyncKey
	if f.syncKnown {
		synchronous = f.syncState.Synchronous()
	}
	return !synchronous && replicaOK(f, q)
}

// readyOK is Patroni's /readiness: the leader is ready; a standby when it streams and lags
// the leader's known position by at most ?lag= (default maximum_lag_on_failover), measured on
// the replayed position, or the received one with ?mode=write. Without the DCS and without WAL
// from the leader it knows nothing of the leader's position: not ready, unless failsafe mode
// keeps the cluster going.
func readyOK(f facts, q url.Values) bool {
	if f.primary {
		return true
	}
	if !f.running || f.replicationState != "streaming" {
		return false
	}
	if !f.dcsReachable && f.leaderLSN == 0 {
		return f.failsafeActive
	}
	pos := f.replayed
	switch q.Get("mode") {
	case "", "apply":
	case "write":
		pos = f.received
	default:
		return false
	}
	maxLag := f.maxLagOnFailover
	if lag := q.Get("lag"); lag != "" {
		var err error
		if maxLag, err = parseBytes(lag); err != nil {
			return false
		}
	}
	return haagent.LagBytes(f.leaderLSN, pos) <= maxLag
}

// tagsMatch: every ?tag_<name>=<value> of the request matches the member's tags.
func tagsMatch(t haagent.ClusterTags, q url.Values) bool {
	for k, vs := range q {
		if name, ok := strings.CutPrefix(k, "tag_"); ok && !t.Matches(name, vs[0]) {
			return false
		}
	}
	return true
}

// maxHealthWait caps ?wait=: a held check must end well within a load balancer's check
// timeout and the server's write timeout.
const maxHealthWait = 5 * time.Second

// holdSettle: a failing check is held only when the same check (path and query) has not
// answered 200 for this long. A member that just stopped passing (a primary that lost
// leadership, crashed or began a planned stop) answers 503 at once for that long, so a load
// balancer that still has it in service counts its falls at its normal pace (pigwf's HAProxy:
// 2 falls 100 ms apart) and takes it out of service; only a member the load balancer already
// has out of service gets held checks.
const holdSettle = 500 * time.Millisecond

// passedChecks remembers when each health check last answered 200, for at most
// maxPassedChecks distinct checks (the health endpoints are open to anyone: a flood of made-up
// queries only clears the memory, which makes held checks answer at once, never wrongly).
type passedChecks struct {
	mu sync.Mutex
	at map[string]time.Duration
}

const maxPassedChecks = 1024

// maxHeldChecks bounds the checks held at once (?wait=): the health endpoints are open to
// anyone, and a flood of held requests must not pile up goroutines and connections in the
// agent. Past it a check is answered at once, as without ?wait=. A cluster's load balancers
// hold a few each (members out of service times services times HAProxies).
const maxHeldChecks = 128

func (p *passedChecks) record(key string, now time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil || len(p.at) >= maxPassedChecks {
		p.at = map[string]time.Duration{}
	}
	p.at[key] = now
}

// recently: the check passed within holdSettle of now, or its memory was lost (cleared when
// full: then it is not held either).
func (p *passedChecks) recently(key string, now time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.at[key]
	return ok && now-at <= holdSettle
}

// holdSlot takes one of the maxHeldChecks slots; false when all are taken.
func (a *Agent) holdSlot() bool {
	if a.heldChecks.Add(1) > maxHeldChecks {
		a.heldChecks.Add(-1)
		return false
	}
	return true
}

// checkKey names a health check by its path and query without ?wait=.
func checkKey(r *http.Request) string {
	q := r.URL.Query()
	q.Del("wait")
	return r.URL.Path + "?" + q.Encode()
}

// handleHealth answers one health check: 200 or 503, with the member's status as the body
// (none for HEAD).
//
// ?wait=DURATION (pigwf's, not Patroni's) holds a failing check for up to that long and
// answers 200 the moment the check holds: the loop's next snapshot after a promotion answers a
// load balancer's check that is already waiting, so HAProxy puts a new primary in service
// without waiting for its next check interval. A check that holds, or stops holding, is never
// held: a primary that loses leadership answers 503 at once.
func (a *Agent) handleHealth(c healthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !healthMethod(w, r) {
			return
		}
		q := r.URL.Query()
		var wait time.Duration
		if v := q.Get("wait"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > maxHealthWait {
				http.Error(w, fmt.Sprintf("wait %q: want a duration up to %v, e.g. 250ms", v, maxHealthWait), http.StatusBadRequest)
				return
			}
			wait = d
		}
		passes := func(s snapshot, now time.Duration) bool {
			return c.ok(a.factsOf(s, now), q) && (!c.tags || tagsMatch(haagent.ClusterTags(a.cfg.Tags), q))
		}
		key := checkKey(r)
		var timeout <-chan time.Time
		if wait > 0 && !a.passed.recently(key, a.clock.Now()) && a.holdSlot() {
			defer a.heldChecks.Add(-1)
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		for {
			s, changed := a.snapshotAndChange()
			now := a.clock.Now()
			code := http.StatusServiceUnavailable
			if passes(s, now) {
				code = http.StatusOK
				a.passed.record(key, now)
			}
			if code == http.StatusOK || timeout == nil {
				a.writeJSON(w, r, code, a.status(s, now))
				return
			}
			select {
			case <-changed:
			case <-timeout:
				timeout = nil // answer with the snapshot as it is now
			case <-r.Context().Done():
				return
			}
		}
	}
}

// healthMethod: health checks answer GET, HEAD and OPTIONS (HAProxy's httpchk default).
func healthMethod(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	http.Error(w, "method not allowed: health checks answer GET, HEAD and OPTIONS", http.StatusMethodNotAllowed)
	return false
}

// handleLiveness is Patroni's /liveness: 200 while the HA loop keeps cycling (its last cycle
// began within the leader timeout, twice that on a standby, as Patroni uses its ttl) or the
// cluster is paused; 503 when the loop is stuck.
func (a *Agent) handleLiveness(w http.ResponseWriter, r *http.Request) {
	if !healthMethod(w, r) {
		return
	}
	s, now := a.snapshot(), a.clock.Now()
	code := http.StatusServiceUnavailable
	if a.loopAlive(s, now) {
		code = http.StatusOK
	}
	a.writeJSON(w, r, code, a.status(s, now))
}

func (a *Agent) loopAlive(s snapshot, now time.Duration) bool {
	if s.view.Paused {
		return true
	}
	began := time.Duration(a.metrics.lastCycleNs.Load())
	if began == 0 {
		return false
	}
	cfg := s.view.Config
	if cfg.LeaderTimeoutMs == 0 { // before the first full cycle
		cfg = haagent.DefaultConfig()
	}
	// Never under three loop intervals: a cycle may take one (an etcd request) and a tick
	// comes one later.
	limit := max(cfg.LeaderTimeout(), 3*cfg.LoopInterval())
	if !(s.obs.State == haagent.PGRunning && !s.obs.InRecovery) {
		limit *= 2
	}
	return now-began < limit
}

// parseBytes parses a lag as Patroni's parse_int with unit B does: "1048576", "16kB", "10MB",
// "1GB", "1TB" (binary multiples, as PostgreSQL's memory units).
func parseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"kB", 1 << 10}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<64-1)/mult {
		return 0, fmt.Errorf("lag %q: want bytes, e.g. 1048576 or 16MB", s)
	}
	return n * mult, nil
}
