package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// fakePG is process control without PostgreSQL: enough state for the
// loop to bootstrap, follow, promote and fence, and a switch to make
// Observe hang (a stuck loop).
type fakePG struct {
	gate pgctl.Gate

	mu         sync.Mutex
	state      haagent.PGState
	inRecovery bool
	upstream   *pgctl.Upstream
	receiver   bool
	sysid      string
	timeline   uint32
	wal        haagent.LSN
	fencedAt   []time.Time
	// fencedClock: the agent's raw monotonic clock at each fence.
	fencedClock []time.Duration
	clock       Clock
	blocked     chan struct{} // non-nil: Observe waits until it is closed
	exited      chan struct{}
	ssn         string
}

func newFakePG(gate pgctl.Gate, sysid string, state haagent.PGState, inRecovery bool) *fakePG {
	return &fakePG{gate: gate, sysid: sysid, state: state, inRecovery: inRecovery, timeline: 1, wal: 0x3000060,
		exited: make(chan struct{}, 1), clock: RawClock()}
}

func (f *fakePG) Observe(ctx context.Context) (pgctl.Observation, error) {
	f.mu.Lock()
	blocked := f.blocked
	f.mu.Unlock()
	if blocked != nil {
		<-blocked // a stuck probe: ignores ctx on purpose
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := pgctl.Observation{State: f.state, InRecovery: f.inRecovery, Sysid: f.sysid, Timeline: f.timeline,
		CheckpointTimeline: f.timeline, SyncStandbyNames: f.ssn}
	if f.state != haagent.PGRunning {
		return o, nil
	}
	if f.inRecovery {
		o.ReceivedLSN, o.ReplayedLSN = f.wal, f.wal
		if f.upstream != nil {
			o.PrimaryConninfo = fmt.Sprintf("host=%s port=%d", f.upstream.Host, f.upstream.Port)
			o.PrimaryHost, o.PrimaryPort = f.upstream.Host, f.upstream.Port
			o.WALReceiverRunning = f.receiver
		}
	} else {
		o.FlushLSN = f.wal
	}
	return o, nil
}

func (f *fakePG) Exited() <-chan struct{} { return f.exited }

func (f *fakePG) Start(_ context.Context, opts pgctl.StartOptions) error {
	start := func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.state, f.inRecovery, f.upstream, f.receiver = haagent.PGRunning, !opts.AsPrimary, opts.Upstream, opts.Upstream != nil
		return nil
	}
	if opts.AsPrimary {
		return f.gate.WhileWritable(start)
	}
	return start()
}

func (f *fakePG) Stop(context.Context, pgctl.StopMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = haagent.PGStopped
	return nil
}

func (f *fakePG) Fence() (pgctl.FenceReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fencedAt = append(f.fencedAt, time.Now())
	if f.clock != nil {
		f.fencedClock = append(f.fencedClock, f.clock.Now())
	}
	if f.state == haagent.PGRunning || f.state == haagent.PGStarting {
		f.state = haagent.PGCrashed
	}
	return pgctl.FenceReport{Killed: 1, Elapsed: time.Millisecond}, nil
}

func (f *fakePG) FollowWhileStarting(up *pgctl.Upstream) error {
	return f.Follow(context.Background(), up)
}

func (f *fakePG) Follow(_ context.Context, up *pgctl.Upstream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upstream, f.receiver = up, up != nil
	return nil
}

func (f *fakePG) StopWALReceiver(_ context.Context, ssn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upstream, f.receiver, f.ssn = nil, false, ssn
	return nil
}

func (f *fakePG) Promote(context.Context) error {
	return f.gate.WhileWritable(func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.inRecovery, f.timeline = false, f.timeline+1
		return nil
	})
}

func (f *fakePG) Checkpoint(context.Context) error { return nil }
func (f *fakePG) SetSyncStandbyNames(_ context.Context, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ssn = v
	return nil
}
func (f *fakePG) NudgeStandbys(context.Context) (haagent.LSN, error) { return f.wal, nil }
func (f *fakePG) EnsureSlots(context.Context, []string) error        { return nil }
func (f *fakePG) DropSlots(context.Context, []string) error          { return nil }
func (f *fakePG) LiveReplication(context.Context) ([]pgctl.ReplicationRow, string, haagent.LSN, error) {
	return nil, f.ssn, f.wal, nil
}
func (f *fakePG) Rewind(context.Context, pgctl.Upstream) error { return errors.New("fake: no rewind") }
func (f *fakePG) Clone(context.Context, pgctl.Upstream, bool) (string, error) {
	return "", errors.New("fake: no clone")
}
func (f *fakePG) Bootstrap(context.Context) error    { return errors.New("fake: no initdb") }
func (f *fakePG) HistoryFile(uint32) (string, error) { return "", nil }
func (f *fakePG) StopForeign(context.Context) error  { return nil }

// The dynamic parameters: the fake keeps no files and knows no settings.
func (f *fakePG) WriteDynamicParams(string) (bool, error)              { return false, nil }
func (f *fakePG) Reload(context.Context) error                         { return nil }
func (f *fakePG) Settings(context.Context) ([]pgparams.Setting, error) { return nil, nil }
func (f *fakePG) PendingRestart(context.Context) (map[string]pgparams.PendingChange, time.Time, error) {
	return nil, time.Time{}, nil
}
func (f *fakePG) get() (haagent.PGState, bool, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.inRecovery, len(f.fencedAt)
}

// loopEnv is one etcd, one store for the test's own writes, and agents
// with fake PostgreSQL. The agents' APIs serve TLS with node certificates
// of a test CA (etcd is plain text: insecure_plaintext), so the members'
// failsafe confirmations and probes run over mutual TLS as on a node.
type loopEnv struct {
	startedAgents map[string]*Agent
	t             *testing.T
	etcd          string
	store         *dcs.Store
	prefix        string
	binDir        string
	pki           testPKI
	// client is a load balancer's: it trusts the CA and presents no certificate.
	client *http.Client
}

func newLoopEnv(t *testing.T, config string) *loopEnv {
	t.Helper()
	e := &loopEnv{t: t, etcd: startEtcd(t), prefix: "/pigwf-loop-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), pki: newTestPKI(t)}
	e.client = httpClient(t, e.pki.lb)
	store, err := dcs.New(newEtcdClient(t, e.etcd), e.prefix, "c1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	// LocalConfig validation wants a postgres binary in bin_dir.
	e.binDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(e.binDir, "postgres"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := store.RegisterCluster(ctx, dcs.InitializeRecord{ClaimedBy: "n1", Sysid: "7000000000000000042"}, json.RawMessage(config)); err != nil {
		t.Fatal(err)
	}
	return e
}

// startAgent runs an agent named name over pg until the test ends.
func (e *loopEnv) startAgent(name string, pg *fakePG) *Agent {
	e.t.Helper()
	a, _ := e.startAgentVia(name, pg, e.etcd)
	return a
}

// startAgentVia runs an agent that reaches etcd at endpoint; stop ends it.
func (e *loopEnv) startAgentVia(name string, pg *fakePG, endpoint string) (a *Agent, stop func()) {
	e.t.Helper()
	port := freePort(e.t)
	cfg := LocalConfig{
		Cluster: "c1", Name: name, Prefix: e.prefix,
		Etcd: EtcdConfig{Endpoints: []string{endpoint}},
		API:  APIConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), URL: fmt.Sprintf("https://127.0.0.1:%d", port)},
		Postgres: PostgresConfig{BinDir: e.binDir, DataDir: "/nonexistent/" + name, Host: "127.0.0.1", Port: 20000 + port%1000,
			SocketDir: "/nonexistent", ReplicationUser: "replicator"},
		TLS: e.pki.node, InsecurePlaintext: true,
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := New(Options{Config: cfg, Logger: log, Etcd: newEtcdClient(e.t, endpoint),
		Postgres: func(gate pgctl.Gate) (Postgres, error) { pg.gate = gate; return pg, nil }})
	if err != nil {
		e.t.Fatal(err)
	}
	if e.startedAgents == nil {
		e.startedAgents = map[string]*Agent{}
	}
	e.startedAgents[name] = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pg.mu.Lock()
			if pg.blocked != nil {
				close(pg.blocked)
				pg.blocked = nil
			}
			pg.mu.Unlock()
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return a, stop
}

func (e *loopEnv) leader() *dcs.Versioned[dcs.LeaderRecord] {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	snap, err := e.store.Load(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return snap.Leader
}

// The member named in the initialize key takes the first lock, starts
// PostgreSQL as a primary through the write gate and renews. When its loop
// gets stuck (a probe that never returns), the fence timer still fences
// at the holder deadline, and the gate refuses writes from then on.
func TestLoopAcquiresRenewsAndFencesWhenStuck(t *testing.T) {
	e := newLoopEnv(t, `{"loop_interval_ms": 100, "leader_timeout_ms": 500}`)
	pg := newFakePG(nil, "7000000000000000042", haagent.PGStopped, false)
	a := e.startAgent("n1", pg)
	waitFor(t, 5*time.Second, "n1 to lead with a running primary", func() (bool, string) {
		st, rec, _ := pg.get()
		l := e.leader()
		return l != nil && l.Value.Holder == "n1" && st == haagent.PGRunning && !rec, fmt.Sprintf("pg %s recovery=%v", st, rec)
	})
	first := e.leader().ModRevision
	time.Sleep(350 * time.Millisecond)
	if l := e.leader(); l.ModRevision <= first || l.Value.Holder != "n1" {
		t.Fatalf("leader key not renewed: revision %d → %d", first, l.ModRevision)
	}
	if !a.fencer.Writable() {
		t.Fatal("holder's write gate is closed while it renews")
	}
	// Patroni-compatible health checks; HAProxy (Pigsty) sends OPTIONS.
	for _, c := range []struct {
		method, path string
		want         int
	}{{"GET", "/primary", 200}, {"OPTIONS", "/primary", 200}, {"HEAD", "/leader", 200}, {"GET", "/read-write", 200},
		{"GET", "/replica", 503}, {"GET", "/read-only", 200}, {"GET", "/health", 200}, {"GET", "/sync", 503}} {
		req, _ := http.NewRequest(c.method, a.cfg.API.URL+c.path, nil)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s on the leader: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}

	deadline, armed := a.fencer.Deadline()
	if !armed {
		t.Fatal("fence timer not armed while holding the lease")
	}
	pg.mu.Lock()
	pg.blocked = make(chan struct{})
	pg.mu.Unlock()
	blockedAt := a.clock.Now()
	waitFor(t, 2*time.Second, "the fence timer to fence the stuck holder", func() (bool, string) {
		_, _, fences := pg.get()
		return fences > 0, ""
	})
	pg.mu.Lock()
	fencedAt := pg.fencedClock[0]
	pg.mu.Unlock()
	// The gate, /primary and the deadline are read while the loop is still stuck: once it runs
	// again, this lone member may rightly take its lease back, reopen the gate and move the deadline.
	if err := a.fencer.WhileWritable(func() error { return nil }); !errors.Is(err, ErrNoLease) {
		t.Fatalf("write gate after the fence: %v, want ErrNoLease", err)
	}
	if code, _ := e.httpGet(a.cfg.API.URL + "/primary"); code != 503 {
		t.Errorf("/primary after the fence: %d, want 503", code)
	}
	// The loop was stuck, so no renewal extended the deadline after the
	// one in flight when it blocked; the timer fences at that deadline.
	lastDeadline, _ := a.fencer.Deadline()
	pg.mu.Lock()
	close(pg.blocked) // unstick the loop
	pg.blocked = nil
	pg.mu.Unlock()
	if fencedAt > lastDeadline+10*time.Millisecond || fencedAt < lastDeadline {
		t.Errorf("fenced %s after the holder deadline", fencedAt-lastDeadline)
	}
	if lastDeadline < deadline {
		t.Errorf("deadline moved backwards: %s → %s", deadline, lastDeadline)
	}
	t.Logf("stuck loop: fenced %s after blocking, %s after the holder deadline", fencedAt-blockedAt, fencedAt-lastDeadline)
}

// A follower reacts to the leader key's deletion from the watch, not at
// its next loop tick: with a 1 s loop interval it still takes the
// released lock within a few tens of milliseconds, and promotes.
func TestLoopReactsToReleaseFromTheWatch(t *testing.T) {
	e := newLoopEnv(t, `{"loop_interval_ms": 1000, "leader_timeout_ms": 5000, "member_report_fresh_ms": 5000}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The test plays n1, the current leader, through the store.
	g, err := e.store.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "n1", Term: 1, Timeline: 1, Optime: 0x3000060}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutHistory(ctx, g, []dcs.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutMember(ctx, "n1", dcs.MemberRecord{Role: "primary", State: "running", Timeline: 1,
		FlushLSN: 0x3000060, Host: "127.0.0.1", Port: 1, APIURL: "http://127.0.0.1:1", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	pg := newFakePG(nil, "7000000000000000042", haagent.PGRunning, true)
	e.startAgent("n2", pg)
	waitFor(t, 5*time.Second, "n2 to follow n1", func() (bool, string) {
		pg.mu.Lock()
		defer pg.mu.Unlock()
		return pg.upstream != nil && pg.upstream.Port == 1, ""
	})
	n2 := e.startedAgents["n2"]
	waitFor(t, 3*time.Second, "n2's /replica to answer 200", func() (bool, string) {
		code, _ := e.httpGet(n2.cfg.API.URL + "/replica")
		return code == 200, fmt.Sprint(code)
	})
	for path, want := range map[string]int{"/primary": 503, "/read-only": 200, "/async": 200, "/sync": 503} {
		if code, _ := e.httpGet(n2.cfg.API.URL + path); code != want {
			t.Errorf("%s on the replica: %d, want %d", path, code, want)
		}
	}
	released := time.Now()
	if err := e.store.ReleaseLeader(ctx, g); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "n2 to take the released lock", func() (bool, string) {
		l := e.leader()
		return l != nil && l.Value.Holder == "n2", ""
	})
	took := time.Since(released)
	t.Logf("released → n2 holds the lock in %s (loop interval 1 s)", took.Round(time.Millisecond))
	if took > 300*time.Millisecond {
		t.Errorf("n2 took the lock %s after the release: not watch-driven", took)
	}
	waitFor(t, 3*time.Second, "n2 to promote", func() (bool, string) {
		_, rec, _ := pg.get()
		return !rec, ""
	})
}

// A holder whose key is taken over (here: overwritten by the test, as a
// member that judged it stale would) fences at once from the watch event,
// without waiting for its deadline.
func TestLoopFencesAtOnceWhenTheKeyIsTaken(t *testing.T) {
	e := newLoopEnv(t, `{"loop_interval_ms": 200, "leader_timeout_ms": 5000}`)
	pg := newFakePG(nil, "7000000000000000042", haagent.PGStopped, false)
	a := e.startAgent("n1", pg)
	waitFor(t, 5*time.Second, "n1 to lead", func() (bool, string) {
		st, rec, _ := pg.get()
		return st == haagent.PGRunning && !rec && a.fencer.Writable(), ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cur := e.leader()
	taken := time.Now()
	if _, err := e.store.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "n9", Term: cur.Value.Term + 1}, cur.ModRevision); err != nil {
		// n1 renewed in between; retry once on the newer revision.
		cur = e.leader()
		taken = time.Now()
		if _, err := e.store.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "n9", Term: cur.Value.Term + 1}, cur.ModRevision); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "n1 to fence", func() (bool, string) {
		_, _, fences := pg.get()
		return fences > 0, ""
	})
	took := time.Since(taken)
	t.Logf("key taken → fenced in %s (deadline would be %s away)", took.Round(time.Millisecond), 4500*time.Millisecond)
	if took > 300*time.Millisecond {
		t.Errorf("fenced %s after the key was taken: not at once", took)
	}
}

// Failsafe mode, etcd unreachable for everybody: the leader keeps its
// writes (and /primary) for as long as every member of the failsafe key
// confirms it over the REST API — far past its lease — and fences within
// one lease once a member stops answering.
func TestLoopFailsafeKeepsWritesOnlyWhileEveryMemberConfirms(t *testing.T) {
	e := newLoopEnv(t, `{"loop_interval_ms": 100, "leader_timeout_ms": 500, "failsafe_mode": true}`)
	p1, p2 := startProxy(t, strings.TrimPrefix(e.etcd, "http://")), startProxy(t, strings.TrimPrefix(e.etcd, "http://"))
	pg1 := newFakePG(nil, "7000000000000000042", haagent.PGStopped, false)
	pg2 := newFakePG(nil, "7000000000000000042", haagent.PGRunning, true)
	a1, _ := e.startAgentVia("n1", pg1, p1.url())
	_, stop2 := e.startAgentVia("n2", pg2, p2.url())
	waitFor(t, 10*time.Second, "n1 leading, n2 following, failsafe key [n1 n2]", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		snap, err := e.store.Load(ctx)
		if err != nil || snap.Leader == nil || snap.Leader.Value.Holder != "n1" || snap.Failsafe == nil {
			return false, "no leader or failsafe key yet"
		}
		pg2.mu.Lock()
		following := pg2.upstream != nil
		pg2.mu.Unlock()
		return following && strings.Join(snap.Failsafe.Value.Members, ",") == "n1,n2", fmt.Sprint(snap.Failsafe.Value.Members)
	})
	primaryCode := func() int {
		code, _ := e.httpGet(a1.cfg.API.URL + "/primary")
		return code
	}
	// The REST API answers from the loop's last snapshot: on a loaded
	// machine the first one with the renewed lease can lag the key.
	waitFor(t, 3*time.Second, "/primary 200 on the leader", func() (bool, string) {
		c := primaryCode()
		return c == 200, fmt.Sprint(c)
	})
	p1.cut()
	p2.cut()
	cutAt := time.Now()
	// Three lease lengths without etcd: still the primary, never fenced.
	time.Sleep(1500 * time.Millisecond)
	if _, _, fences := pg1.get(); fences != 0 {
		t.Fatalf("leader fenced %d times although every member confirmed it", fences)
	}
	if c := primaryCode(); c != 200 {
		t.Errorf("/primary on the failsafe leader %s after losing etcd: %d, want 200", time.Since(cutAt).Round(time.Millisecond), c)
	}
	// n2 goes away: no more confirmations, so n1 must fence within one lease.
	stop2()
	stoppedAt := time.Now()
	waitFor(t, 3*time.Second, "n1 to fence once n2 stopped confirming", func() (bool, string) {
		_, _, fences := pg1.get()
		return fences > 0, ""
	})
	took := time.Since(stoppedAt)
	t.Logf("failsafe: n1 kept writes %s without etcd; fenced %s after n2 stopped confirming", stoppedAt.Sub(cutAt).Round(time.Millisecond), took.Round(time.Millisecond))
	if took > 700*time.Millisecond {
		t.Errorf("fenced %s after the last confirmation could have been given; the bound is one lease (~450 ms)", took)
	}
	if c := primaryCode(); c == 200 {
		t.Error("/primary answers 200 after the fence")
	}
}

func (e *loopEnv) httpGet(url string) (int, []byte) {
	resp, err := e.client.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
