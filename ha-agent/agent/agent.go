package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// Postgres is the process control the loop drives; pgctl.Controller is
// the real one, tests use a fake.
type Postgres interface {
	Observe(ctx context.Context) (pgctl.Observation, error)
	// Exited fires when a postmaster the controller started exits.
	Exited() <-chan struct{}
	Start(ctx context.Context, opts pgctl.StartOptions) error
	Stop(ctx context.Context, mode pgctl.StopMode) error
	Fence() (pgctl.FenceReport, error)
	Follow(ctx context.Context, up *pgctl.Upstream) error
	// FollowWhileStarting re-points a standby that accepts no connection yet.
	FollowWhileStarting(up *pgctl.Upstream) error
	// StopWALReceiver clears primary_conninfo and sets
	// synchronous_standby_names in one reload (promotion phase one).
	StopWALReceiver(ctx context.Context, syncStandbyNames string) error
	Promote(ctx context.Context) error
	Checkpoint(ctx context.Context) error
	SetSyncStandbyNames(ctx context.Context, value string) error
	CurrentFlushLSN(ctx context.Context) (haagent.LSN, error)
	EnsureSlots(ctx context.Context, names []string) error
	DropSlots(ctx context.Context, names []string) error
	LiveReplication(ctx context.Context) ([]pgctl.ReplicationRow, string, haagent.LSN, error)
	Rewind(ctx context.Context, up pgctl.Upstream) error
	Clone(ctx context.Context, up pgctl.Upstream, moveAside bool) (string, error)
	Bootstrap(ctx context.Context) error
	HistoryFile(timeline uint32) (string, error)
	StopForeign(ctx context.Context) error
}

// Options builds an Agent. Only Config is required.
type Options struct {
	Config LocalConfig
	Logger *slog.Logger
	Clock  Clock
	// Postgres builds the process control given the write gate (nil: the
	// real pgctl.Controller for Config.Postgres).
	Postgres func(gate pgctl.Gate) (Postgres, error)
	// Etcd is an existing client (nil: one is dialled from Config.Etcd).
	Etcd *clientv3.Client
}

// Agent is one member's HA agent: the loop, the fence timer and the REST API.
type Agent struct {
	cfg    LocalConfig
	log    *slog.Logger
	clock  Clock
	cli    *clientv3.Client
	ownCli bool
	store  *dcs.Store
	pg     Postgres
	fencer *fencer
	http   *http.Client

	// Loop-owned state (only the loop goroutine touches it).
	cache *cache
	hacfg haagent.Config
	// configValid: a valid config key (or none: defaults) was loaded. An
	// agent that has only seen an invalid one does not act: it cannot
	// know the timing the other members use.
	configValid bool
	// prevCfg/cfgChangedAt: the timing in force before the last change,
	// and when this agent saw the change (see timing).
	prevCfg      haagent.Config
	cfgChangedAt time.Duration
	configErr    string
	watchCh      <-chan dcs.WatchUpdate
	watchCancel  context.CancelFunc
	needLoad     bool
	lastLoad     time.Duration
	guard        dcs.Guard
	lease        *haagent.Lease
	// pendingRenews are renewals whose response was lost (newest last):
	// if etcd applied one, its guard is recovered instead of fencing.
	pendingRenews []pendingRenew
	// lastTimeline/lastOptime: the last timeline and WAL position seen
	// while PostgreSQL answered.
	lastTimeline uint32
	lastOptime   haagent.LSN
	leaderSeq    uint64
	dcsReachable bool
	busy         haagent.Busy
	busyState    recordState
	busyNote     string
	asyncDone    chan asyncResult
	kick         chan struct{}
	// etcdCfg is the client configuration of the agent's own etcd client
	// (zero when a client was injected); the endpoint probes reuse it.
	etcdCfg   clientv3.Config
	staleWake *time.Timer // wakes the loop when the leader record turns stale
	// Outage bookkeeping for the holder's in-place restart rule.
	crashRestarts int
	crashedAt     time.Duration
	inOutage      bool
	downAtStart   bool
	runningSince  time.Duration
	// Start backoff: PostgreSQL exits that came right after a start.
	lastStart        time.Duration
	quickExits       int
	lastCrashCounted time.Duration
	// Rejoin bookkeeping.
	wasPrimaryOnTL uint32
	rewindFailed   bool
	rewindError    string
	receiverDownAt time.Duration
	syncPending    *syncPending
	syncTarget     []string
	// ssnJustSet is the synchronous_standby_names this cycle set (the
	// cycle's observation predates it).
	ssnJustSet     *string
	syncTargetSet  bool
	slotsGoneSince map[string]time.Duration
	seenSlots      map[string]bool
	lastSlotCheck  time.Duration
	failsafeAcks   map[string]time.Duration
	memberSeq      uint64
	note           string
	logLimiter     reasonLimiter
	errLimiter     messageLimiter
	publishCh      chan dcs.MemberRecord
	lastPublished  time.Duration
	// kicks counts cycles run at once after a step made progress since
	// the last tick (bounded, so a step that "succeeds" without changing
	// anything cannot spin the loop).
	kicks int
	// cleanStopLSN: the shutdown checkpoint of a clean stop as primary on
	// timeline wasPrimaryOnTL (0 = none seen): with it, a former primary
	// can prove it did not diverge without pg_rewind.
	cleanStopLSN haagent.LSN

	// Shared with the API (guarded by mu).
	mu      sync.Mutex
	snap    snapshot
	promise *haagent.FailsafePromise

	// acquireMu serializes our own acquire with failsafe confirmations we give.
	acquireMu sync.Mutex

	metrics metrics
	server  *http.Server
	// lastFence is the clock reading of the last completed fence.
	lastFence atomic.Int64
}

type pendingRenew struct {
	rec    dcs.LeaderRecord
	sentAt time.Duration
}

type asyncResult struct {
	busy haagent.Busy
	err  error
	// after runs on the loop goroutine once the action finished.
	after func(error)
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

type metrics struct {
	failovers       atomic.Int64
	fences          atomic.Int64
	lastFenceNs     atomic.Int64 // postmaster and children SIGKILLed
	lastFenceDeadNs atomic.Int64 // every process dead
	loopNs          atomic.Int64
	cycles          atomic.Int64
	renewFailures   atomic.Int64
}

// New builds an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:            opts.Config,
		log:            opts.Logger,
		clock:          opts.Clock,
		cache:          newCache(),
		hacfg:          haagent.DefaultConfig(),
		asyncDone:      make(chan asyncResult, 4),
		kick:           make(chan struct{}, 1),
		slotsGoneSince: map[string]time.Duration{},
		seenSlots:      map[string]bool{},
		failsafeAcks:   map[string]time.Duration{},
		publishCh:      make(chan dcs.MemberRecord, 1),
		http:           &http.Client{Timeout: 2 * time.Second},
		leaderSeq:      uint64(time.Now().UnixNano()),
		memberSeq:      uint64(time.Now().UnixNano()),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.clock == nil {
		a.clock = RawClock()
	}
	a.log = a.log.With("member", a.cfg.Name)
	a.fencer = newFencer(a.clock, func() (pgctl.FenceReport, error) { return a.pg.Fence() }, a.timerFenced)
	var err error
	if opts.Postgres != nil {
		a.pg, err = opts.Postgres(a.fencer)
	} else {
		a.pg, err = pgctl.New(pgctl.Config{
			MemberName: a.cfg.Name, BinDir: a.cfg.Postgres.BinDir, DataDir: a.cfg.Postgres.DataDir,
			Host: a.cfg.Postgres.Host, Port: a.cfg.Postgres.Port, SocketDir: a.cfg.Postgres.SocketDir,
			ReplicationUser: a.cfg.Postgres.ReplicationUser, Passfile: defaultPassfile(),
			LogFile: a.cfg.Postgres.LogFile,
		}, a.fencer, a.log)
	}
	if err != nil {
		a.fencer.Close()
		return nil, err
	}
	a.cli = opts.Etcd
	if a.cli == nil {
		a.etcdCfg = clientv3.Config{
			Endpoints:            a.cfg.Etcd.Endpoints,
			DialTimeout:          2 * time.Second,
			DialKeepAliveTime:    2 * time.Second,
			DialKeepAliveTimeout: time.Second,
			Logger:               zap.NewNop(),
		}
		a.cli, err = clientv3.New(a.etcdCfg)
		if err != nil {
			a.fencer.Close()
			return nil, fmt.Errorf("etcd client for %v: %w", a.cfg.Etcd.Endpoints, err)
		}
		a.ownCli = true
	}
	a.store, err = dcs.New(a.cli, a.cfg.Prefix, a.cfg.Cluster, time.Duration(a.hacfg.MemberTTLSeconds)*time.Second)
	if err != nil {
		a.fencer.Close()
		return nil, err
	}
	return a, nil
}

// defaultPassfile is ~/.pgpass of the user the agent runs as.
func defaultPassfile() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".pgpass")
	}
	return ""
}

// Run runs the agent until ctx is cancelled (then it stops PostgreSQL
// cleanly and releases the leader key if it holds it).
func (a *Agent) Run(ctx context.Context) error {
	defer a.fencer.Close()
	if a.ownCli {
		defer a.cli.Close()
	}
	lis, err := net.Listen("tcp", a.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("REST API: listen on %s: %w", a.cfg.API.Listen, err)
	}
	a.server = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.server.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("REST API stopped", "err", err)
		}
	}()
	defer a.server.Close()

	// A PostgreSQL this agent did not start is stopped in the first cycle,
	// once the pause key is known (see observe).
	obsCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	obs, err := a.pg.Observe(obsCtx)
	cancel()
	if err != nil {
		a.log.Warn("first observation of PostgreSQL failed", "err", err)
	}
	if obs.State == haagent.PGCrashed && !obs.BackupLabel {
		a.downAtStart = true
		a.log.Info("PostgreSQL was down when the agent started (it dies with its agent); it restarts after this agent takes part in the loop",
			"control_state", controlState(obs))
	}
	a.noteWasPrimary(obs)

	pubCtx, stopPub := context.WithCancel(context.Background())
	defer stopPub()
	go a.publisher(pubCtx)
	if a.ownCli && len(a.cfg.Etcd.Endpoints) > 1 {
		go newEndpointHealth(a.cli, a.etcdCfg, a.hacfg.LoopInterval(), a.log).run(pubCtx)
	}

	a.needLoad = true
	ticker := time.NewTicker(a.hacfg.LoopInterval())
	defer ticker.Stop()
	interval := a.hacfg.LoopInterval()
	a.log.Info("HA agent started", "cluster", a.cfg.Cluster, "api", a.cfg.API.Listen, "data_dir", a.cfg.Postgres.DataDir)
	a.cycle(ctx)
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-ticker.C:
			a.kicks = 0
		case u, ok := <-a.watchCh:
			if !ok || u.Err != nil {
				if u.Err != nil {
					a.log.Warn("etcd watch ended; reloading", "err", u.Err)
				}
				a.watchCh, a.needLoad = nil, true
				break
			}
			if !a.applyWatch(u) {
				continue // nothing that needs a decision now
			}
		case <-a.pg.Exited():
			a.log.Warn("the postmaster exited")
		case r := <-a.asyncDone:
			a.finishAsync(r)
		case <-a.kick:
		}
		a.cycle(ctx)
		a.armStaleWake()
		if iv := a.hacfg.LoopInterval(); iv != interval {
			interval = iv
			ticker.Reset(iv)
		}
	}
}

// applyWatch applies a watch update and says whether it needs a decision
// at once: a change of the leader key by someone else (or its deletion),
// or of the failover, pause, sync, config or initialize keys. Member
// reports and our own renewals do not (they would make every renewal
// trigger the next one).
func (a *Agent) applyWatch(u dcs.WatchUpdate) bool {
	now := a.clock.Now()
	urgent := false
	for _, e := range u.Events {
		if e.Kind == dcs.KindLeader && !e.Deleted {
			for _, p := range a.pendingRenews {
				if g, ok := dcs.GuardFromEvent(e, p.rec); ok {
					// Our renewal whose response was lost has been applied.
					a.guard, a.pendingRenews = g, nil
					a.setLease(g.Revision, p.sentAt)
					break
				}
			}
		}
		if err := a.cache.applyEvent(e, now); err != nil {
			a.log.Warn("malformed value in etcd", "key", e.Kind.String(), "member", e.Member, "err", err)
		}
		switch e.Kind {
		case dcs.KindLeader:
			if e.Deleted || a.cache.leader == nil || a.cache.leader.rec.Holder != a.cfg.Name {
				urgent = true
			}
		case dcs.KindFailover, dcs.KindPause, dcs.KindSync, dcs.KindConfig, dcs.KindInitialize, dcs.KindHistory:
			urgent = true
		}
	}
	a.dcsReachable = true
	if u.Revision > a.cache.revision {
		a.cache.revision = u.Revision
	}
	a.reloadConfig()
	return urgent
}

// load reads every key and (re)starts the watch.
func (a *Agent) load(ctx context.Context) error {
	// Short: one etcd member that is down (its node crashed) must cost one loop, not half a
	// second; the client's round-robin sends the next attempt to another member.
	lctx, cancel := context.WithTimeout(ctx, max(a.hacfg.LoopInterval(), 150*time.Millisecond))
	snap, err := a.store.Load(lctx)
	cancel()
	if err != nil {
		a.dcsReachable = false
		return err
	}
	now := a.clock.Now()
	for _, p := range snap.Problems {
		a.log.Warn("malformed value in etcd", "err", p)
	}
	a.cache.applySnapshot(snap, now)
	a.reloadConfig()
	if a.watchCancel != nil {
		a.watchCancel()
	}
	wctx, wcancel := context.WithCancel(ctx)
	a.watchCancel = wcancel
	a.watchCh = a.store.Watch(wctx, snap.Revision)
	a.needLoad, a.lastLoad, a.dcsReachable = false, now, true
	return nil
}

// reloadConfig parses the config key; an invalid one is refused (the last
// valid one stays in force) and said so.
func (a *Agent) reloadConfig() {
	cfg := haagent.DefaultConfig()
	if a.cache.hasConfig {
		var err error
		cfg, err = haagent.ParseConfig(a.cache.configRaw)
		if err != nil {
			msg := fmt.Sprintf("refusing the DCS config key (the last valid one stays in force): %v", err)
			if msg != a.configErr {
				a.log.Error(msg)
				a.configErr = msg
			}
			return
		}
	}
	if a.configErr != "" {
		a.log.Info("the DCS config key is valid again")
	}
	if a.configValid && timingDiffers(a.hacfg, cfg) {
		a.prevCfg, a.cfgChangedAt = a.hacfg, a.clock.Now()
		a.log.Warn("leadership timing changed; using the more conservative of the old and new timing for two lease lengths",
			"leader_timeout_ms", cfg.LeaderTimeoutMs, "was", a.prevCfg.LeaderTimeoutMs)
	}
	a.hacfg, a.configErr, a.configValid = cfg, "", true
}

func timingDiffers(x, y haagent.Config) bool {
	return x.LeaderTimeoutMs != y.LeaderTimeoutMs || x.ClockDriftPPM != y.ClockDriftPPM ||
		x.FenceMarginMs != y.FenceMarginMs || x.PromoteMarginMs != y.PromoteMarginMs
}

// timing is the config Decide and the fence timer use. Members see a
// change of the timing at slightly different moments; for two (longer)
// lease lengths after a change this agent therefore uses, as the holder,
// the timing with the EARLIER fence deadline and, as an observer, the
// one with the LATER staleness, so that old and new members stay safe
// against each other.
func (a *Agent) timing() haagent.Config {
	cfg := a.hacfg
	if a.cfgChangedAt == 0 {
		return cfg
	}
	window := 2 * max(a.prevCfg.StaleAfter(), cfg.StaleAfter())
	if a.clock.Now()-a.cfgChangedAt > window {
		a.cfgChangedAt = 0
		return cfg
	}
	pick := a.prevCfg
	if a.lease != nil {
		if cfg.HolderDeadline(0) <= pick.HolderDeadline(0) {
			return cfg
		}
	} else if cfg.StaleAfter() >= pick.StaleAfter() {
		return cfg
	}
	cfg.LeaderTimeoutMs, cfg.ClockDriftPPM = pick.LeaderTimeoutMs, pick.ClockDriftPPM
	cfg.FenceMarginMs, cfg.PromoteMarginMs = pick.FenceMarginMs, pick.PromoteMarginMs
	return cfg
}

// shutdown: stop PostgreSQL cleanly and release the lock if held (a
// planned stop of the agent is a switchover, not a failover).
func (a *Agent) shutdown() error {
	a.log.Info("agent stopping: shutting PostgreSQL down (fast) and releasing the leader lock if held")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.pg.Stop(ctx, pgctl.StopFast); err != nil {
		a.log.Error("stop PostgreSQL", "err", err)
		if _, ferr := a.fencer.FenceNow(); ferr != nil {
			a.log.Error("fence after a failed stop", "err", ferr)
		}
	}
	if a.lease != nil {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		if err := a.store.ReleaseLeader(rctx, a.guard); err != nil {
			a.log.Warn("release leader key on shutdown", "err", err)
		}
		rcancel()
		a.lease = nil
	}
	a.fencer.Disarm()
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	_ = a.store.DeleteMember(dctx, a.cfg.Name)
	_ = a.store.Close(dctx)
	dcancel()
	if a.watchCancel != nil {
		a.watchCancel()
	}
	return nil
}

// armStaleWake runs the loop the moment the leader record turns stale on this agent's clock
// rather than at the next tick, which would add up to one loop interval to a failover. Waking a
// little early is harmless: Decide judges staleness itself and answers "not yet".
func (a *Agent) armStaleWake() {
	if a.lease != nil || a.cache.leader == nil {
		return
	}
	wait := a.cache.leaderRecord().StaleAt(a.timing()) + time.Millisecond - a.clock.Now()
	if wait <= 0 || wait > a.hacfg.LoopInterval() {
		return // already stale (the next cycle acts) or a tick comes first and re-arms
	}
	if a.staleWake != nil {
		a.staleWake.Stop()
	}
	a.staleWake = time.AfterFunc(wait, func() {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	})
}

// kickSoon runs the next cycle at once: a step of a multi-step change
// (acquire → stop WAL receiver → promote) made progress.
func (a *Agent) kickSoon() {
	if a.kicks >= 5 {
		return
	}
	a.kicks++
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// timerFenced reports a fence done by the deadline timer.
func (a *Agent) timerFenced(reason string, rep pgctl.FenceReport, err error) {
	a.noteFence(rep)
	if err != nil {
		a.log.Error("FENCE FAILED: "+reason, "err", err, "elapsed", rep.Elapsed.String())
		return
	}
	a.log.Warn("fenced: "+reason, "killed_processes", rep.Killed, "fence_latency", rep.ChildrenSignalled.String(), "all_dead_after", rep.Elapsed.String())
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// noteFence records a fence for metrics and /probe.
func (a *Agent) noteFence(rep pgctl.FenceReport) {
	a.metrics.fences.Add(1)
	a.metrics.lastFenceNs.Store(int64(rep.ChildrenSignalled))
	a.metrics.lastFenceDeadNs.Store(int64(rep.Elapsed))
	a.lastFence.Store(int64(a.clock.Now()))
}

// publisher writes member records in the background, newest wins, so a
// slow etcd never delays the loop.
func (a *Agent) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-a.publishCh:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := a.store.PutMember(pctx, a.cfg.Name, rec)
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Debug("publish member record", "err", err)
			}
		}
	}
}

func controlState(o pgctl.Observation) string {
	if o.Control == nil {
		return ""
	}
	return o.Control.State
}

// reasonLimiter logs a decision reason when it differs from the previous
// one, and a repeated one at most every 10 s.
type reasonLimiter struct {
	last     string
	loggedAt time.Time
}

func (r *reasonLimiter) allow(reason string) bool {
	if reason != r.last || time.Since(r.loggedAt) >= 10*time.Second {
		r.last, r.loggedAt = reason, time.Now()
		return true
	}
	return false
}

// messageLimiter logs each distinct message at most every 10 s.
type messageLimiter struct{ seen map[string]time.Time }

func (m *messageLimiter) allow(msg string) bool {
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := m.seen[msg]; ok && now.Sub(t) < 10*time.Second {
		return false
	}
	if len(m.seen) > 1000 {
		clear(m.seen)
	}
	m.seen[msg] = now
	return true
}

// isConflict: a CAS on the leader key lost.
func isConflict(err error) bool {
	return errors.Is(err, dcs.ErrLeaderChanged) || errors.Is(err, dcs.ErrNotLeader)
}

// humanErr shortens an error for a member note.
func humanErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// terminate is how supervise and tests stop an agent.
var terminate = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
