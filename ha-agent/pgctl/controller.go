// Package pgctl drives one local PostgreSQL 15 instance for the HA agent:
// it starts the postmaster as a direct child of the agent, observes it,
// promotes, demotes, fences, rewinds and re-clones it. It runs as the
// postgres OS user and talks to PostgreSQL over the unix socket (peer
// authentication), never with a password.
//
// # PostgreSQL dies with the agent
//
// The postmaster is started with exec (not pg_ctl) as a child of the agent
// with Setpgid and Pdeathsig=SIGKILL. Linux delivers the parent-death
// signal when the THREAD that forked the child exits, not the process, and
// the Go runtime may retire threads at will; so every postmaster is forked
// from one goroutine that called runtime.LockOSThread and never unlocks or
// returns (spawner): its thread lives exactly as long as the agent. An
// agent that dies (SIGKILL, panic, OOM) therefore takes its postmaster
// with it, and cannot leave an unfenced primary behind; its backends find
// the postmaster gone at their next wait, and the next agent kills any
// that remain before it starts PostgreSQL again.
//
// # Fencing
//
// Fence makes PostgreSQL unable to acknowledge a commit: SIGSTOP the
// postmaster (it can fork no new backend), SIGKILL its children (each
// backend calls setsid(), so a process-group kill would miss them), SIGKILL
// the postmaster, SIGKILL anything else whose working directory is the
// data directory, and wait until none of them is alive. Fence reports how
// long that took; it is typically a few milliseconds.
//
// # Settings the agent passes on the postmaster command line
//
// port and unix_socket_directories (from the agent's config, so it always
// knows where to connect), hot_standby=on (it queries standbys),
// wal_log_hints=on (pg_rewind needs it unless data checksums are on), and
// wal_retrieve_retry_interval=100ms: after a failover a standby retries its
// new upstream after this long, not after the 5 s default.
//
// # Where things live
//
//   - controller.go: Config, Gate, Controller and New.
//   - start.go: Start, the spawner thread that forks every postmaster, and
//     clearing what a dead or foreign postmaster left behind (its backends,
//     stale lock files).
//   - stop.go: Stop and StopForeign.
//   - fence.go: Fence.
//   - observe.go: Observe and the Observation it returns (the SQL probe,
//     or the control file and postgresql.auto.conf when PostgreSQL answers
//     no query).
//   - conn.go: connections to the local PostgreSQL and ALTER SYSTEM.
//   - follow.go: pointing a standby at its upstream (primary_conninfo), and
//     memberConninfo, the one connection string to another member
//     (streaming, pg_rewind, pg_basebackup): verify-full TLS unless the lab
//     is plain text.
//   - promote.go: the two promotion phases and the checkpoint after them.
//   - replication.go: a primary's side of replication: synchronous
//     standbys, slots, pg_stat_replication.
//   - datadir.go: running PostgreSQL's tools on a stopped data directory:
//     Clone (pg_basebackup), Bootstrap (initdb), timeline history files.
//   - rewind.go: Rewind (pg_rewind) and how its failures are classified.
//   - conf.go: postgresql.auto.conf.
//   - controldata.go: pg_controldata.
//   - procs.go: finding PostgreSQL's processes.
package pgctl

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/pki"
)

// Config is the local PostgreSQL the controller drives.
type Config struct {
	MemberName      string
	BinDir          string
	DataDir         string
	Host            string // address other members use for replication
	Port            int
	SocketDir       string
	ReplicationUser string
	// Passfile is the libpq password file for replication connections
	// (~postgres/.pgpass); the password is never in a config or on a
	// command line.
	Passfile string
	// TLS are the deployment CA and the node's certificate: every
	// connection to another member (streaming, pg_rewind, pg_basebackup)
	// verifies that member's certificate (sslmode=verify-full) and
	// presents this one. Zero: a plain-text lab, no TLS.
	TLS     pki.Files
	LogFile string // postmaster stdout/stderr; "" = discard
}

// Gate guards the two ways a PostgreSQL starts taking writes (start as a
// primary, promote): fn runs only while the agent holds a valid lease,
// and a fence cannot run concurrently with it.
type Gate interface {
	WhileWritable(fn func() error) error
}

// postmaster is a postmaster this controller started.
type postmaster struct {
	pid       int
	cmd       *exec.Cmd
	done      chan struct{} // closed when it exited
	exitErr   error
	startedAt time.Time
	connected atomic.Bool // accepted a connection since start
}

// running: p is a postmaster this controller started (not nil) and it has
// not exited.
func (p *postmaster) running() bool { return p != nil && !p.exited() }

func (p *postmaster) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Controller drives the local PostgreSQL. Its methods may be called from
// several goroutines; Fence never waits for a long operation.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	gate    Gate
	spawner *spawner
	osUser  string

	pm atomic.Pointer[postmaster]
	// exitNotify receives a value whenever a postmaster exits (the loop
	// reacts at once instead of at its next probe).
	exitNotify chan struct{}

	probeMu  sync.Mutex // serializes Observe (it owns probeConn and last)
	probe    *pgwire.Conn
	last     Observation
	ctlCache *ControlData
	// receivedTLI is the highest timeline the WAL receiver reported since
	// this postmaster started: a standby's timeline while its receiver is
	// down (the checkpoint's timeline lags until a restartpoint).
	receivedTLI uint32

	// toolsRunning counts PostgreSQL tools (pg_rewind, pg_basebackup,
	// initdb) this controller runs now. pg_rewind starts `postgres
	// --single` for crash recovery, which runs in the data directory like
	// an orphaned backend: the sweep for backends of a dead postmaster must
	// leave it alone, or the rewind fails and turns into a re-clone.
	toolsRunning atomic.Int32

	actionMu sync.Mutex // guards action
	action   *pgwire.Conn
	actionPM *postmaster // the postmaster action is connected to
}

// New returns a controller. gate guards starts as primary and promotion.
func New(cfg Config, gate Gate, log *slog.Logger) (*Controller, error) {
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("pgctl: data dir %q must be an absolute path", cfg.DataDir)
	}
	if cfg.TLS.Enabled() {
		if err := cfg.TLS.Validate(); err != nil {
			return nil, fmt.Errorf("pgctl: TLS for connections to other members: %w", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("pgctl: current OS user: %w", err)
	}
	if u.Uid == "0" {
		return nil, errors.New("pgctl: refusing to run PostgreSQL as root; run the agent as the postgres OS user")
	}
	return &Controller{
		cfg: cfg, log: log, gate: gate, spawner: newSpawner(), osUser: u.Username,
		exitNotify: make(chan struct{}, 1),
	}, nil
}

// Exited signals (non-blocking, coalesced) that a postmaster exited.
func (c *Controller) Exited() <-chan struct{} { return c.exitNotify }

// PostmasterPID is the pid of the postmaster this controller started (0 if none runs).
func (c *Controller) PostmasterPID() int {
	if pm := c.pm.Load(); pm.running() {
		return pm.pid
	}
	return 0
}
