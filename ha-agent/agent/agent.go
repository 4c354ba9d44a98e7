package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	// NudgeStandbys commits a local-only transaction so new synchronous standbys report at once.
	NudgeStandbys(ctx context.Context) (haagent.LSN, error)
	EnsureSlots(ctx context.Context, names []string) error
	DropSlots(ctx context.Context, names []string) error
	LiveReplication(ctx context.Context) ([]pgctl.ReplicationRow, string, haagent.LSN, error)
	Rewind(ctx context.Context, up pgctl.Upstream) error
	Clone(ctx context.Context, up pgctl.Upstream, moveAside bool) (string, error)
	Bootstrap(ctx context.Context) error
	HistoryFile(timeline uint32) (string, error)
	StopForeign(ctx context.Context) error
	// The cluster's dynamic parameters (params.go).
	paramsPG
}

// ensure the controller type satisfies Postgres.
var _ Postgres = (*pgctl.Controller)(nil)

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
//
// Its fields are grouped by concern. Everything between the wiring and mu
// belongs to the loop: only the loop goroutine touches it.
type Agent struct {
	// Wiring, set by New.
	cfg    LocalConfig
	log    *slog.Logger
	clock  Clock
	cli    *clientv3.Client
	ownCli bool
	// etcdCfg is the client configuration of the agent's own etcd client
	// (zero when a client was injected); the endpoint probes reuse it.
	etcdCfg clientv3.Config
	store   *dcs.Store
	pg      Postgres
	fencer  *fencer
	// http is the client of the other members' APIs (newPeerClient).
	http *http.Client
	// access decides who may call the REST API's mutating endpoints; apiTLS is its server TLS
	// configuration (nil: plain text).
	access *apiGuard
	apiTLS *tls.Config

	// The DCS as this agent sees it: the keys, the watch, reachability.
	cache        *cache
	watchCh      <-chan dcs.WatchUpdate
	watchCancel  context.CancelFunc
	needLoad     bool
	lastLoad     time.Duration
	dcsReachable bool

	// The DCS config key (see reloadConfig and timing).
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

	// Leadership: the CAS guard and lease of the last successful
	// acquire/renew, and what the leader record carries.
	guard dcs.Guard
	lease *haagent.Lease
	// pendingRenews are renewals whose response was lost (newest last):
	// if etcd applied one, its guard is recovered instead of fencing.
	pendingRenews []pendingRenew
	leaderSeq     uint64
	// lastTimeline/lastOptime: the last timeline and WAL position seen
	// while PostgreSQL answered.
	lastTimeline uint32
	lastOptime   haagent.LSN
	// leaderLost is this agent's first evidence of the previous leader's loss when it took the
	// lock from another holder (leaderLostAt); cleared when the promotion finishes.
	leaderLost time.Duration
	// historyFor is the timeline whose history file the history key was
	// last checked against (or written from) by this holder.
	historyFor uint32

	// What wakes the loop besides its ticker and the watch.
	kick chan struct{}
	// kicks counts cycles run at once after a step made progress since
	// the last tick (bounded, so a step that "succeeds" without changing
	// anything cannot spin the loop).
	kicks     int
	staleWake *time.Timer // wakes the loop when the leader record turns stale
	asyncDone chan asyncResult

	// The long action running off the loop (runAsync), if any.
	busy      haagent.Busy
	busyState recordState
	busyNote  string

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
	// cleanStopLSN: the shutdown checkpoint of a clean stop as primary on
	// timeline wasPrimaryOnTL (0 = none seen): with it, a former primary
	// can prove it did not diverge without pg_rewind.
	cleanStopLSN   haagent.LSN
	rewindFailed   bool
	rewindError    string
	receiverDownAt time.Duration

	// Synchronous standbys (see setSyncStandbys).
	syncPending   *syncPending
	syncTarget    []string
	syncTargetSet bool
	// ssnJustSet is the synchronous_standby_names this cycle set (the
	// cycle's observation predates it).
	ssnJustSet *string

	// Replication slots (see ensureSlots).
	slotsGoneSince map[string]time.Duration
	seenSlots      map[string]bool
	lastSlotCheck  time.Duration

	// failsafeAcks: member → send time of the failsafe request it
	// confirmed (see askFailsafe).
	failsafeAcks map[string]time.Duration

	// stopping: a planned stop of PostgreSQL began (demote's switchover shutdown); /primary
	// answers 503 from the moment it is set until the loop sees PostgreSQL down.
	stopping bool
	// dcsLastSeen: wall-clock time of the last cycle that found etcd reachable (/patroni).
	dcsLastSeen time.Time

	// The member record (see publish) and the logs.
	memberSeq     uint64
	note          string
	publishCh     chan dcs.MemberRecord
	lastPublished time.Duration
	logLimiter    reasonLimiter
	errLimiter    messageLimiter

	// Shared with the API (guarded by mu).
	mu   sync.Mutex
	snap snapshot
	// snapChanged is closed (and replaced) when a new snapshot is published: held health checks
	// (?wait=) wait on it.
	snapChanged chan struct{}
	// passed is when each health check (path and query) last answered 200: a check that
	// passed within holdSettle is not held (?wait=) when it fails.
	passed passedChecks
	// heldChecks counts the health checks held now (maxHeldChecks).
	heldChecks atomic.Int64
	promise    *haagent.FailsafePromise

	// acquireMu serializes our own acquire with failsafe confirmations we give.
	acquireMu sync.Mutex

	metrics metrics
	// metricsHTTP serves /metrics (built once, see handleMetrics).
	metricsOnce sync.Once
	metricsHTTP http.Handler
	server      *http.Server
	// lastFence is the clock reading of the last completed fence.
	lastFence atomic.Int64

	// params keeps the cluster's dynamic parameters in force (params.go); offeredRev is the
	// config revision the loop last offered it.
	params     *paramsWriter
	offeredRev int64
	// restarts carries POST /restart's requests to the loop (restart.go).
	restarts chan restartAsk
	// settings answers GET /settings (reload.go).
	settings settingsCache
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
	if err := a.setupAPI(); err != nil {
		return nil, err
	}
	var err error
	a.fencer = newFencer(a.clock, func() (pgctl.FenceReport, error) { return a.pg.Fence() }, a.timerFenced)
	if opts.Postgres != nil {
		a.pg, err = opts.Postgres(a.fencer)
	} else {
		a.pg, err = pgctl.New(pgctl.Config{
			MemberName: a.cfg.Name, BinDir: a.cfg.Postgres.BinDir, DataDir: a.cfg.Postgres.DataDir,
			Host: a.cfg.Postgres.Host, Port: a.cfg.Postgres.Port, SocketDir: a.cfg.Postgres.SocketDir,
			ReplicationUser: a.cfg.Postgres.ReplicationUser, Passfile: defaultPassfile(), TLS: a.cfg.PostgresTLS(),
			LogFile: a.cfg.Postgres.LogFile,
		}, a.fencer, a.log)
	}
	if err != nil {
		a.fencer.Close()
		return nil, err
	}
	a.params = newParamsWriter(a.pg, a.log)
	a.restarts = make(chan restartAsk, 1)
	a.cli = opts.Etcd
	if a.cli == nil {
		a.etcdCfg, err = dcs.ClientConfig(dcs.ClientOptions{Endpoints: a.cfg.Etcd.Endpoints, TLS: a.cfg.TLS,
			Plaintext: a.cfg.InsecurePlaintext, DialTimeout: 2 * time.Second})
		if err != nil {
			a.fencer.Close()
			return nil, err
		}
		a.etcdCfg.DialKeepAliveTime, a.etcdCfg.DialKeepAliveTimeout = 2*time.Second, time.Second
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

// terminate is how supervise and tests stop an agent.
var terminate = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
