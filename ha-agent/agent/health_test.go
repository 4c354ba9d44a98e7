package agent

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// The leader's WAL position in the snapshots below, and the standby's distances behind it.
const (
	leaderLSN   = haagent.LSN(0x50000000)
	receiveLag  = 512 << 10
	replayLag   = 2 << 20
	healthStart = time.Hour
)

// healthAgent is member n2 of pg-test without a loop: its API answers from the snapshot the
// test sets, at the manual clock's instant. Its fence timer is armed for another 400 ms.
func healthAgent(tags TagsConfig) *Agent {
	clock := &manualClock{now: healthStart}
	return &Agent{clock: clock, log: slog.New(slog.DiscardHandler),
		cfg:    LocalConfig{Cluster: "pg-test", Name: "n2", Tags: tags},
		fencer: &fencer{clock: clock, armed: true, deadline: healthStart + 400*time.Millisecond}}
}

// leaderSnap: n2 holds the lock (renewed 10 ms ago), its PostgreSQL a running primary that n1
// streams from as a sync standby.
func leaderSnap(mods ...func(*snapshot)) snapshot {
	now := healthStart
	obs := pgctl.Observation{State: haagent.PGRunning, Timeline: 3, FlushLSN: leaderLSN, ServerVersion: 150004,
		PostmasterAt: time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC), Sysid: "7000000000000000042",
		Replication: []pgctl.ReplicationRow{{ApplicationName: "n1", State: "streaming", SyncState: "sync", Usename: "replicator", ClientAddr: "10.0.0.1", SyncPriority: 1}}}
	local := pgLocal(obs)
	local.Name, local.DCSReachable, local.Lease = "n2", true, &haagent.Lease{Revision: 10, SentAt: now - 10*time.Millisecond}
	s := snapshot{obs: obs, local: local, reason: "no action: I hold the leader lock", at: now,
		view: haagent.ClusterView{Cluster: "pg-test", Config: haagent.DefaultConfig(),
			Leader:  &haagent.LeaderRecord{Holder: "n2", ModRevision: 10, Timeline: 3, Optime: leaderLSN, ObservedAt: now - 10*time.Millisecond},
			Members: map[string]haagent.Member{"n1": {Name: "n1", ObservedAt: now - 10*time.Millisecond}, "n2": {Name: "n2"}}},
		dcsLastSeen: time.Date(2030, 1, 2, 3, 5, 0, 0, time.UTC),
		history: []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148, Reason: "no recovery target specified"},
			{Timeline: 2, LSN: 0x5000000, Reason: "no recovery target specified", Leader: "n2", At: time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)}}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

// replicaSnap: n1 holds the lock (renewed 10 ms ago, its record as fresh) and reports n2 as
// syncState in its pg_stat_replication; n2 streams, receiveLag behind n1 and replayLag
// behind in replay.
func replicaSnap(syncState string, mods ...func(*snapshot)) snapshot {
	now := healthStart
	obs := pgctl.Observation{State: haagent.PGRunning, InRecovery: true, Timeline: 3, ServerVersion: 150004,
		ReceivedLSN: leaderLSN - receiveLag, ReplayedLSN: leaderLSN - replayLag, WALReceiverRunning: true, WALReceiverStatus: "streaming",
		ReplayedAt: time.Date(2030, 1, 2, 3, 4, 59, 0, time.UTC), PostmasterAt: time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)}
	local := pgLocal(obs)
	local.Name, local.DCSReachable = "n2", true
	s := snapshot{obs: obs, local: local, at: now,
		view: haagent.ClusterView{Cluster: "pg-test", Config: haagent.DefaultConfig(),
			Leader:  &haagent.LeaderRecord{Holder: "n1", ModRevision: 10, Timeline: 3, Optime: leaderLSN, ObservedAt: now - 10*time.Millisecond},
			Members: map[string]haagent.Member{"n1": {Name: "n1", ObservedAt: now - 10*time.Millisecond}, "n2": {Name: "n2"}}},
		members: map[string]memberEntry{"n1": {rec: dcs.MemberRecord{Role: "primary", State: "running",
			Replication: map[string]dcs.ReplicationReport{"n2": {State: "streaming", SyncState: syncState}}}}}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

// request answers one request of the agent's REST API with snapshot s.
func request(a *Agent, s snapshot, method, path string) *httptest.ResponseRecorder {
	a.mu.Lock()
	a.snap = s
	a.mu.Unlock()
	w := httptest.NewRecorder()
	a.routes().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

// Every health check's decision, as Patroni's api.py makes it, from a snapshot and the
// request: numbered cases, each asserting the status code.
func TestHealthChecks(t *testing.T) {
	east := TagsConfig{NoFailover: true, Custom: map[string]string{"dc": "east"}}
	noLB := TagsConfig{NoLoadBalance: true, Custom: map[string]string{"dc": "east"}}
	stale := func(s *snapshot) { // the leader's record is older than member_report_fresh_ms
		m := s.view.Members["n1"]
		m.ObservedAt = healthStart - time.Second
		s.view.Members["n1"] = m
	}
	caughtUp := func(s *snapshot) { s.obs.ReceivedLSN, s.obs.ReplayedLSN = leaderLSN, leaderLSN-1000 }
	receiver := func(status string) func(*snapshot) { return func(s *snapshot) { s.obs.WALReceiverStatus = status } }
	stopped := func(s *snapshot) { s.obs.State, s.local.Postgres = haagent.PGStopped, haagent.PGStopped }
	for _, c := range []struct {
		name   string
		tags   TagsConfig
		snap   snapshot
		fenced bool // the fence timer's deadline has passed
		method string
		path   string
		want   int
	}{
		// The leader.
		{name: "1 GET / on the leader", snap: leaderSnap(), path: "/", want: 200},
		{name: "2 OPTIONS / (bare httpchk) on the leader", snap: leaderSnap(), method: "OPTIONS", path: "/", want: 200},
		{name: "3 HEAD /primary", snap: leaderSnap(), method: "HEAD", path: "/primary", want: 200},
		{name: "4 /leader", snap: leaderSnap(), path: "/leader", want: 200},
		{name: "5 /master", snap: leaderSnap(), path: "/master", want: 200},
		{name: "6 /read-write", snap: leaderSnap(), path: "/read-write", want: 200},
		{name: "7 /replica on the leader", snap: leaderSnap(), path: "/replica", want: 503},
		{name: "8 /read-only on the leader", snap: leaderSnap(), path: "/read-only", want: 200},
		{name: "9 /read-only on the leader, other dc", tags: east, snap: leaderSnap(), path: "/read-only?tag_dc=west", want: 503},
		{name: "10 /primary ignores tags", tags: east, snap: leaderSnap(), path: "/primary?tag_dc=west", want: 200},
		{name: "11 /standby-leader: no standby clusters", snap: leaderSnap(), path: "/standby-leader", want: 503},
		{name: "12 /sync on the leader", snap: leaderSnap(), path: "/sync", want: 503},
		{name: "13 /async on the leader", snap: leaderSnap(), path: "/async", want: 503},
		{name: "14 /read-only-sync on the leader", snap: leaderSnap(), path: "/read-only-sync", want: 200},
		{name: "15 /health on the leader", snap: leaderSnap(), path: "/health", want: 200},
		{name: "16 /readiness on the leader", snap: leaderSnap(), path: "/readiness", want: 200},
		{name: "17 / past the fence deadline", snap: leaderSnap(), fenced: true, path: "/", want: 503},
		{name: "18 / once a planned stop began", snap: leaderSnap(func(s *snapshot) { s.stopping = true }), path: "/", want: 503},
		{name: "19 /read-only once a planned stop began", snap: leaderSnap(func(s *snapshot) { s.stopping = true }), path: "/read-only", want: 503},
		{name: "20 / with the lease expired", snap: leaderSnap(func(s *snapshot) { s.local.Lease.SentAt = healthStart - time.Second }), path: "/", want: 503},
		{name: "21 POST /primary", snap: leaderSnap(), method: "POST", path: "/primary", want: 405},
		// A streaming standby.
		{name: "22 GET / on a replica (Patroni's sample haproxy.cfg)", snap: replicaSnap("async"), path: "/", want: 503},
		{name: "23 OPTIONS / on a replica", snap: replicaSnap("async"), method: "OPTIONS", path: "/", want: 503},
		{name: "24 /primary on a replica", snap: replicaSnap("async"), path: "/primary", want: 503},
		{name: "25 /replica", snap: replicaSnap("async"), path: "/replica", want: 200},
		{name: "26 /replica within lag", snap: replicaSnap("async"), path: "/replica?lag=3MB", want: 200},
		{name: "27 /replica beyond lag (replay is 2 MiB behind)", snap: replicaSnap("async"), path: "/replica?lag=1MB", want: 503},
		{name: "28 /replica with a lag that does not parse", snap: replicaSnap("async"), path: "/replica?lag=lots", want: 503},
		{name: "29 /replica streaming", snap: replicaSnap("async"), path: "/replica?replication_state=streaming", want: 200},
		{name: "30 /replica streaming, receiver starting", snap: replicaSnap("async", receiver("starting")), path: "/replica?replication_state=streaming", want: 503},
		{name: "31 /replica not streaming, no filter", snap: replicaSnap("async", receiver("")), path: "/replica", want: 200},
		{name: "32 /replica in archive recovery", snap: replicaSnap("async", receiver(""), func(s *snapshot) { s.obs.RestoreCommand = true }),
			path: "/replica?replication_state=in%20archive%20recovery", want: 200},
		{name: "33 /replica, tag matches", tags: east, snap: replicaSnap("async"), path: "/replica?tag_dc=east", want: 200},
		{name: "34 /replica, tag differs", tags: east, snap: replicaSnap("async"), path: "/replica?tag_dc=west", want: 503},
		{name: "35 /replica, tag absent", tags: east, snap: replicaSnap("async"), path: "/replica?tag_rack=1", want: 503},
		{name: "36 /replica, all tags must match", tags: east, snap: replicaSnap("async"), path: "/replica?tag_dc=east&tag_nofailover=true", want: 200},
		{name: "37 /replica, one of two differs", tags: east, snap: replicaSnap("async"), path: "/replica?tag_dc=east&tag_nosync=true", want: 503},
		{name: "38 /replica, noloadbalance", tags: noLB, snap: replicaSnap("async"), path: "/replica", want: 503},
		{name: "39 /read-only, noloadbalance", tags: noLB, snap: replicaSnap("async"), path: "/read-only", want: 503},
		{name: "40 /async, noloadbalance", tags: noLB, snap: replicaSnap("async"), path: "/async", want: 503},
		{name: "41 /health, noloadbalance", tags: noLB, snap: replicaSnap("async"), path: "/health", want: 200},
		{name: "42 /read-only on a replica", snap: replicaSnap("async"), path: "/read-only", want: 200},
		{name: "43 /read-only beyond lag", snap: replicaSnap("async"), path: "/read-only?lag=1MB", want: 503},
		{name: "44 /sync, the leader reports sync", snap: replicaSnap("sync"), path: "/sync", want: 200},
		{name: "45 /synchronous", snap: replicaSnap("sync"), path: "/synchronous", want: 200},
		{name: "46 /async, the leader reports sync", snap: replicaSnap("sync"), path: "/async", want: 503},
		{name: "47 /read-only-sync, sync", snap: replicaSnap("sync"), path: "/read-only-sync", want: 200},
		{name: "48 /sync, the leader reports async", snap: replicaSnap("async"), path: "/sync", want: 503},
		{name: "49 /async, the leader reports async", snap: replicaSnap("async"), path: "/asynchronous", want: 200},
		{name: "50 /read-only-sync, async", snap: replicaSnap("async"), path: "/read-only-sync", want: 503},
		{name: "51 /quorum, the leader reports quorum", snap: replicaSnap("quorum"), path: "/quorum", want: 200},
		{name: "52 /quorum, the leader reports sync", snap: replicaSnap("sync"), path: "/quorum", want: 503},
		{name: "53 /sync, the leader reports quorum", snap: replicaSnap("quorum"), path: "/sync", want: 503},
		{name: "54 /async, the leader reports quorum", snap: replicaSnap("quorum"), path: "/async", want: 503},
		{name: "55 /read-only-quorum", snap: replicaSnap("quorum"), path: "/read-only-quorum", want: 200},
		{name: "56 /sync, the leader's report is stale", snap: replicaSnap("sync", stale), path: "/sync", want: 503},
		{name: "57 /async, stale report, sync key does not name me", snap: replicaSnap("sync", stale), path: "/async", want: 200},
		{name: "58 /async, stale report, sync key names me", snap: replicaSnap("async", stale, func(s *snapshot) {
			s.view.Sync = &haagent.SyncRecord{Leader: "n1", Standbys: []string{"n2"}}
		}), path: "/async", want: 503},
		{name: "59 /sync, sync key alone never makes a sync standby", snap: replicaSnap("", func(s *snapshot) {
			s.view.Sync = &haagent.SyncRecord{Leader: "n1", Standbys: []string{"n2"}}
		}), path: "/sync", want: 503},
		{name: "60 /readiness, 2 MiB replay lag over maximum_lag_on_failover", snap: replicaSnap("async"), path: "/readiness", want: 503},
		{name: "61 /readiness, caught up", snap: replicaSnap("async", caughtUp), path: "/readiness", want: 200},
		{name: "62 /readiness with ?lag=", snap: replicaSnap("async"), path: "/readiness?lag=4MB", want: 200},
		{name: "63 /readiness ?mode=write: received is 512 KiB behind", snap: replicaSnap("async"), path: "/readiness?mode=write", want: 200},
		{name: "64 /readiness ?mode=apply", snap: replicaSnap("async"), path: "/readiness?mode=apply", want: 503},
		{name: "65 /readiness, unknown mode", snap: replicaSnap("async", caughtUp), path: "/readiness?mode=fast", want: 503},
		{name: "66 /readiness, not streaming", snap: replicaSnap("async", caughtUp, receiver("waiting")), path: "/readiness", want: 503},
		{name: "67 /readiness without etcd or the leader's position", snap: replicaSnap("async", caughtUp, func(s *snapshot) {
			s.local.DCSReachable, s.view.Leader, s.obs.ReceivedLSN = false, nil, 0
		}), path: "/readiness", want: 503},
		{name: "68 /readiness, ignores tags", tags: east, snap: replicaSnap("async", caughtUp), path: "/readiness?tag_dc=west", want: 200},
		{name: "69 /health, tag differs", tags: east, snap: replicaSnap("async"), path: "/health?tag_dc=west", want: 503},
		// A stopped member.
		{name: "70 /health, stopped", snap: replicaSnap("async", stopped), path: "/health", want: 503},
		{name: "71 /replica, stopped", snap: replicaSnap("async", stopped), path: "/replica", want: 503},
		{name: "72 /read-only, stopped", snap: replicaSnap("async", stopped), path: "/read-only", want: 503},
		{name: "73 /async, stopped", snap: replicaSnap("async", stopped), path: "/async", want: 503},
		{name: "74 unknown path", snap: replicaSnap("async"), path: "/replicas", want: 404},
		// A new leader whose promotion still runs: it holds the lock, PostgreSQL is still in recovery.
		{name: "75 / while the promotion runs", snap: leaderSnap(func(s *snapshot) { s.obs.InRecovery = true }), path: "/", want: 503},
		{name: "76 /primary on a leader whose PostgreSQL is down", snap: leaderSnap(stopped), path: "/primary", want: 503},
		{name: "77 /primary?wait= on the leader answers at once", snap: leaderSnap(), path: "/primary?wait=2s", want: 200},
		{name: "78 /primary?wait= that does not parse", snap: leaderSnap(), path: "/primary?wait=soon", want: 400},
		{name: "79 /read-only?prefer=replica on a leader with a streaming standby", snap: leaderSnap(), path: "/read-only?prefer=replica", want: 503},
		{name: "80 /read-only?prefer=replica on a leader with none", snap: leaderSnap(func(s *snapshot) { s.obs.Replication = nil }), path: "/read-only?prefer=replica", want: 200},
		{name: "81 /read-only?prefer=replica on a replica", snap: replicaSnap("async"), path: "/read-only?prefer=replica", want: 200},
	} {
		a := healthAgent(c.tags)
		if c.fenced {
			a.fencer.deadline = healthStart - time.Millisecond
		}
		method := c.method
		if method == "" {
			method = http.MethodGet
		}
		if w := request(a, c.snap, method, c.path); w.Code != c.want {
			t.Errorf("case %s: %s %s answered %d, want %d\n%s", c.name, method, c.path, w.Code, c.want, w.Body)
		}
	}
}

// /liveness: 200 while the loop's last cycle began within the leader timeout (twice it on a
// standby), or while paused; 503 once the loop is stuck.
func TestLiveness(t *testing.T) {
	timeout := haagent.DefaultConfig().LeaderTimeout()
	for i, c := range []struct {
		snap      snapshot
		cycleAgo  time.Duration // -1: no cycle yet
		wantAlive bool
	}{
		{leaderSnap(), 100 * time.Millisecond, true},                                                                 // 1
		{leaderSnap(), timeout + time.Millisecond, false},                                                            // 2: a stuck primary's loop
		{replicaSnap("async"), timeout + time.Millisecond, true},                                                     // 3: a standby gets twice as long
		{replicaSnap("async"), 2*timeout + time.Millisecond, false},                                                  // 4
		{replicaSnap("async", func(s *snapshot) { s.view.Paused = true }), time.Minute, true},                        // 5: paused
		{replicaSnap("async"), -1, false},                                                                            // 6: never cycled
		{replicaSnap("async", func(s *snapshot) { s.view.Config = haagent.Config{} }), 900 * time.Millisecond, true}, // 7: defaults before a full cycle
	} {
		a := healthAgent(TagsConfig{})
		if c.cycleAgo >= 0 {
			a.metrics.lastCycleNs.Store(int64(healthStart - c.cycleAgo))
		}
		want := http.StatusServiceUnavailable
		if c.wantAlive {
			want = http.StatusOK
		}
		if w := request(a, c.snap, http.MethodGet, "/liveness"); w.Code != want {
			t.Errorf("case %d: /liveness %d, want %d", i+1, w.Code, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for i, c := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{"1048576", 1 << 20, false}, {"16kB", 16 << 10, false}, {"10MB", 10 << 20, false}, {"1GB", 1 << 30, false},
		{"2TB", 2 << 40, false}, {"512B", 512, false}, {" 3 MB ", 3 << 20, false}, {"", 0, true}, {"-1", 0, true},
		{"1.5MB", 0, true}, {"99999999999TB", 0, true},
	} {
		got, err := parseBytes(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("case %d: parseBytes(%q) = %d, %v", i+1, c.in, got, err)
		}
	}
}

// TestHealthWaitAnswersTheNextSnapshot: a held /primary?wait= check of a member that has been
// failing answers 200 as soon as the loop publishes the snapshot in which the promotion
// finished; a member whose check just passed answers 503 at once when it stops passing (a load
// balancer counting its falls is not held up); one still failing when the wait ends answers
// 503 then.
func TestHealthWaitAnswersTheNextSnapshot(t *testing.T) {
	a := healthAgent(TagsConfig{})
	clock := a.clock.(*manualClock)
	promoting := leaderSnap(func(s *snapshot) { s.obs.InRecovery = true })
	a.setSnapshot(promoting)
	done := make(chan *httptest.ResponseRecorder)
	start := time.Now()
	go func() {
		w := httptest.NewRecorder()
		a.routes().ServeHTTP(w, httptest.NewRequest(http.MethodOptions, "/primary?wait=3s", nil))
		done <- w
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case w := <-done:
		t.Fatalf("the held check answered %d before the promotion finished", w.Code)
	default:
	}
	a.setSnapshot(promoting) // a snapshot in which it still fails: keeps waiting
	time.Sleep(50 * time.Millisecond)
	a.setSnapshot(leaderSnap())
	select {
	case w := <-done:
		if w.Code != http.StatusOK || time.Since(start) > 2*time.Second {
			t.Fatalf("held check: %d after %v; want 200 once the promotion's snapshot is published", w.Code, time.Since(start))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the held check did not answer when the check started to hold")
	}

	// It just passed: when it stops passing, 503 at once, whatever ?wait= says.
	a.setSnapshot(promoting)
	start = time.Now()
	w := httptest.NewRecorder()
	a.routes().ServeHTTP(w, httptest.NewRequest(http.MethodOptions, "/primary?wait=3s", nil))
	if w.Code != http.StatusServiceUnavailable || time.Since(start) > time.Second {
		t.Fatalf("check of a member that just stopped passing: %d after %v; want 503 at once", w.Code, time.Since(start))
	}

	// Failing for longer than holdSettle, nothing changes: 503 when the wait ends.
	clock.now += holdSettle + time.Millisecond // no request is in flight
	start = time.Now()
	w = httptest.NewRecorder()
	a.routes().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/primary?wait=150ms", nil))
	if w.Code != http.StatusServiceUnavailable || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("held check without a change: %d after %v; want 503 after the wait", w.Code, time.Since(start))
	}
}
