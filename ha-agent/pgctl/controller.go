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
package pgctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgwire"
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
	LogFile  string // postmaster stdout/stderr; "" = discard
}

// Gate guards the two ways a PostgreSQL starts taking writes (start as a
// primary, promote): fn runs only while the agent holds a valid lease,
// and a fence cannot run concurrently with it.
type Gate interface {
	WhileWritable(fn func() error) error
}

// ReplicationRow is one pg_stat_replication row.
type ReplicationRow struct {
	ApplicationName string
	State           string
	SyncState       string
	FlushLSN        haagent.LSN
	ReplayLSN       haagent.LSN
}

// Slot is one replication slot.
type Slot struct {
	Name     string
	Physical bool
	Active   bool
}

// Observation is the local PostgreSQL right now.
type Observation struct {
	State        haagent.PGState
	InRecovery   bool
	DataDirEmpty bool
	// NotADataDir: the directory has files but no PG_VERSION.
	NotADataDir        bool
	Sysid              string
	Timeline           uint32
	CheckpointTimeline uint32
	ReceivedLSN        haagent.LSN
	ReplayedLSN        haagent.LSN
	FlushLSN           haagent.LSN
	WALReceiverRunning bool
	// PrimaryConninfo is the current primary_conninfo; PrimaryHost/Port
	// parsed from it.
	PrimaryConninfo  string
	PrimaryHost      string
	PrimaryPort      int
	SyncStandbyNames string
	Replication      []ReplicationRow
	Slots            []Slot
	// Control is pg_controldata's view, read while PostgreSQL is not running.
	Control *ControlData
	// BackupLabel: backup_label exists, i.e. the data directory is a base
	// backup (pg_basebackup) or was just rewound; its control file says
	// "in production" although it never ran as a primary.
	BackupLabel bool
	// ForeignPostmaster is the pid of a live postmaster this controller
	// did not start (0 = none).
	ForeignPostmaster int
	// Stale: the postmaster is alive but did not answer this probe; the
	// SQL fields are from the last successful probe.
	Stale     bool
	ProbeErr  string
	StartedAt time.Time // when the current postmaster was started (zero if not ours)
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

// --- spawning ------------------------------------------------------------------

// spawner forks every postmaster from one locked OS thread that lives as
// long as the process, so Pdeathsig fires only when the agent dies.
type spawner struct{ reqs chan spawnReq }

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		// Never unlocked and never returns: see the package comment.
		runtime.LockOSThread()
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

// StartOptions says how to start PostgreSQL.
type StartOptions struct {
	AsPrimary bool
	// Upstream to stream from when starting as a standby (nil = a standby
	// without upstream, e.g. to join the leader race).
	Upstream *Upstream
}

// Start writes the recovery settings and starts the postmaster as a child
// of the agent. It returns once the process runs; readiness shows up in
// Observe (starting → running).
func (c *Controller) Start(ctx context.Context, opts StartOptions) error {
	if pm := c.pm.Load(); pm != nil && !pm.exited() {
		return fmt.Errorf("start PostgreSQL: postmaster %d is still running", pm.pid)
	}
	if err := c.clearLeftovers(ctx); err != nil {
		return err
	}
	// A promote trigger left by a promotion that was cut short would make
	// PostgreSQL end recovery by itself, outside the write gate: only
	// Promote may ask for a promotion.
	if err := os.Remove(filepath.Join(c.cfg.DataDir, "promote")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("start PostgreSQL: remove a stale promote trigger: %w", err)
	}
	standby := filepath.Join(c.cfg.DataDir, "standby.signal")
	upstream := opts.Upstream
	if opts.AsPrimary {
		upstream = nil
		if err := os.Remove(standby); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("start PostgreSQL as primary: remove %s: %w", standby, err)
		}
	} else if err := os.WriteFile(standby, nil, 0o600); err != nil {
		return fmt.Errorf("start PostgreSQL as standby: write %s: %w", standby, err)
	}
	settings := c.recoverySettings(upstream)
	// wal_log_hints also goes into postgresql.auto.conf, not only on the
	// command line: pg_rewind's crash recovery (postgres --single) reads
	// only the files, and its shutdown checkpoint would record
	// wal_log_hints=off in pg_control, after which pg_rewind refuses.
	settings["wal_log_hints"] = "on"
	if err := setAutoConf(c.cfg.DataDir, settings); err != nil {
		return fmt.Errorf("start PostgreSQL: recovery settings: %w", err)
	}
	spawn := func() error { return c.spawn() }
	if opts.AsPrimary {
		return c.gate.WhileWritable(spawn)
	}
	return spawn()
}

func (c *Controller) spawn() error {
	args := []string{
		"-D", c.cfg.DataDir,
		"-p", strconv.Itoa(c.cfg.Port),
		"-c", "unix_socket_directories=" + c.cfg.SocketDir,
		"-c", "hot_standby=on",
		"-c", "wal_log_hints=on",
		"-c", "wal_retrieve_retry_interval=100ms",
	}
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "postgres"), args...)
	cmd.Dir = c.cfg.DataDir
	var logFile *os.File
	if c.cfg.LogFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.cfg.LogFile), 0o750); err != nil {
			return fmt.Errorf("start PostgreSQL: log directory: %w", err)
		}
		f, err := os.OpenFile(c.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("start PostgreSQL: open log %s: %w", c.cfg.LogFile, err)
		}
		logFile = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.spawner.start(cmd); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start PostgreSQL: exec %s: %w", cmd.Path, err)
	}
	pm := &postmaster{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), startedAt: time.Now()}
	c.probeMu.Lock()
	c.receivedTLI = 0
	c.probeMu.Unlock()
	c.pm.Store(pm)
	c.log.Info("started PostgreSQL as a child of the agent", "pid", pm.pid, "data_dir", c.cfg.DataDir)
	go func() {
		pm.exitErr = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(pm.done)
		select {
		case c.exitNotify <- struct{}{}:
		default:
		}
	}()
	return nil
}

// clearLeftovers stops a postmaster this controller did not start (pg_ctl
// stop -m fast) and kills backends left by a dead postmaster, which would
// otherwise keep PostgreSQL from starting (and could still answer clients).
func (c *Controller) clearLeftovers(ctx context.Context) error {
	if pid := c.foreignPostmaster(); pid != 0 {
		c.log.Warn("stopping a PostgreSQL this agent did not start (pg_ctl stop -m fast), so that PostgreSQL runs as the agent's child and dies with it",
			"pid", pid, "data_dir", c.cfg.DataDir)
		cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "pg_ctl"), "stop", "-m", "fast", "-w", "-t", "60", "-D", c.cfg.DataDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("stop foreign postmaster %d: %w: %s", pid, err, strings.TrimSpace(string(out)))
		}
	}
	if left := processesIn(c.cfg.DataDir); len(left) > 0 {
		c.log.Warn("killing processes left in the data directory by a dead postmaster", "pids", left)
		if still := killAndWait(left, 2*time.Second); len(still) > 0 {
			return fmt.Errorf("processes %v in %s survive SIGKILL", still, c.cfg.DataDir)
		}
	}
	c.removeStaleLocks()
	return nil
}

// removeStaleLocks removes the lock files of a postmaster of this data
// directory that is gone: postmaster.pid and the socket's lock file.
// PostgreSQL treats a lock file as live when its PID exists, and after a
// node restart that PID is often reused by another process (a new PID
// namespace or boot counts from low numbers again): PostgreSQL then
// refuses to start ("lock file ... already exists") until someone removes
// it by hand. The caller made sure no process runs in the data directory,
// where every PostgreSQL process of it runs, so neither lock is live.
//
// A lock whose PID is dead is left alone: PostgreSQL then takes it over
// itself, and postmaster.pid is how it finds the dead postmaster's shared
// memory to clean up (removed, its /dev/shm segments would leak).
func (c *Controller) removeStaleLocks() {
	if left := processesIn(c.cfg.DataDir); len(left) > 0 {
		return
	}
	locks := []string{filepath.Join(c.cfg.DataDir, "postmaster.pid")}
	if c.cfg.SocketDir != "" {
		locks = append(locks, filepath.Join(c.cfg.SocketDir, fmt.Sprintf(".s.PGSQL.%d.lock", c.cfg.Port)))
	}
	for _, lock := range locks {
		b, err := os.ReadFile(lock)
		if err != nil {
			continue
		}
		// Line 1 is the PID, line 2 the data directory it belongs to: a
		// socket lock of another data directory on the same port is not ours.
		lines := strings.SplitN(string(b), "\n", 3)
		if len(lines) < 2 || filepath.Clean(strings.TrimSpace(lines[1])) != filepath.Clean(c.cfg.DataDir) {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(lines[0])); err != nil || !alive(pid) {
			continue // PostgreSQL handles a dead (or unreadable) PID itself
		}
		if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("could not remove a stale PostgreSQL lock file", "file", lock, "err", err)
			continue
		}
		c.log.Warn("removed a stale PostgreSQL lock file: its PID now belongs to another process, and no process of its postmaster is left",
			"file", lock, "pid", strings.TrimSpace(lines[0]))
	}
}

// foreignPostmaster returns the pid of a live postmaster of the data
// directory that this controller did not start.
func (c *Controller) foreignPostmaster() int {
	pid, err := readPostmasterPID(c.cfg.DataDir)
	if err != nil || pid == 0 {
		return 0
	}
	if pm := c.pm.Load(); pm != nil && pm.pid == pid {
		return 0
	}
	if !alive(pid) || !slices.Contains(processesIn(c.cfg.DataDir), pid) {
		return 0
	}
	return pid
}

// StopForeign stops a postmaster this controller did not start, if any.
func (c *Controller) StopForeign(ctx context.Context) error { return c.clearLeftovers(ctx) }

// StopMode is a PostgreSQL shutdown mode.
type StopMode int

const (
	StopFast      StopMode = iota // SIGINT: roll back, shutdown checkpoint (switchover)
	StopImmediate                 // SIGQUIT: no checkpoint, crash recovery on start
)

// Stop shuts the postmaster down and waits until it exited.
func (c *Controller) Stop(ctx context.Context, mode StopMode) error {
	pm := c.pm.Load()
	if pm == nil || pm.exited() {
		return c.clearLeftovers(ctx)
	}
	sig := syscall.SIGINT
	if mode == StopImmediate {
		sig = syscall.SIGQUIT
	}
	if err := syscall.Kill(pm.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop PostgreSQL (pid %d): %w", pm.pid, err)
	}
	select {
	case <-pm.done:
	case <-ctx.Done():
		return fmt.Errorf("stop PostgreSQL (pid %d): %w", pm.pid, ctx.Err())
	}
	if left := processesIn(c.cfg.DataDir); len(left) > 0 {
		killAndWait(left, time.Second)
	}
	return nil
}

// FenceReport says what a fence did.
type FenceReport struct {
	Killed int
	// ChildrenSignalled: the postmaster and all its children (every
	// process that can acknowledge a commit) had been sent SIGKILL; none
	// of them runs user code again (a send already inside the kernel may
	// complete).
	ChildrenSignalled time.Duration
	// Signalled: also every other process found in the data directory.
	Signalled time.Duration
	// Elapsed: every process is dead (exited or a zombie).
	Elapsed time.Duration
}

// Fence makes PostgreSQL unable to acknowledge a commit and returns when
// no PostgreSQL process of the data directory is alive. Safe to call from
// any goroutine at any time; it takes no lock a long operation holds.
func (c *Controller) Fence() (FenceReport, error) {
	start := time.Now()
	pmPID := 0
	pm := c.pm.Load()
	if pm != nil && !pm.exited() {
		pmPID = pm.pid
	} else if pid, _ := readPostmasterPID(c.cfg.DataDir); pid > 0 && alive(pid) {
		pmPID = pid
	}
	var victims []int
	var childrenSignalled time.Duration
	if pmPID > 0 {
		// Stopped, it forks nothing new while we kill its children.
		_ = syscall.Kill(pmPID, syscall.SIGSTOP)
		victims = append(victims, childrenOf(pmPID)...)
		for _, p := range victims {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		_ = syscall.Kill(pmPID, syscall.SIGKILL)
		victims = append(victims, pmPID)
		childrenSignalled = time.Since(start)
	}
	for _, p := range processesIn(c.cfg.DataDir) {
		if !slices.Contains(victims, p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
			victims = append(victims, p)
		}
	}
	signalled := time.Since(start)
	left := killAndWait(victims, time.Second)
	if pm != nil && pm.pid == pmPID && len(left) == 0 {
		// Dead is not yet reaped: wait for our child's exit to be
		// recorded, so that an Observe right after Fence says "crashed"
		// rather than the last "running" it saw.
		select {
		case <-pm.done:
		case <-time.After(time.Second):
		}
	}
	rep := FenceReport{Killed: len(victims), ChildrenSignalled: childrenSignalled, Signalled: signalled, Elapsed: time.Since(start)}
	if len(left) > 0 {
		return rep, fmt.Errorf("fence: processes %v survive SIGKILL after %s", left, rep.Elapsed)
	}
	return rep, nil
}

// --- observing ------------------------------------------------------------------

const probeSQL = `SELECT pg_is_in_recovery(),
 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END,
 pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),
 current_setting('primary_conninfo'), current_setting('synchronous_standby_names'),
 (SELECT timeline_id FROM pg_control_checkpoint()),
 CASE WHEN pg_is_in_recovery() THEN NULL
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_flush_lsn()), 1, 8))::bit(32)::bigint END,
 (SELECT system_identifier FROM pg_control_system()),
 (SELECT min_recovery_end_timeline FROM pg_control_recovery());
SELECT status, received_tli FROM pg_stat_wal_receiver;
SELECT application_name, state, sync_state, flush_lsn, replay_lsn FROM pg_stat_replication;
SELECT slot_name, slot_type, active FROM pg_replication_slots`

// Observe reports the local PostgreSQL. It never blocks longer than ctx.
func (c *Controller) Observe(ctx context.Context) (Observation, error) {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	var o Observation
	empty, notDataDir, err := inspectDataDir(c.cfg.DataDir)
	if err != nil {
		return o, err
	}
	o.DataDirEmpty, o.NotADataDir = empty, notDataDir
	pm := c.pm.Load()
	if pm != nil && !pm.exited() {
		o.StartedAt = pm.startedAt
		err := c.probeSQL(ctx, &o)
		if err == nil {
			pm.connected.Store(true)
			o.State = haagent.PGRunning
			c.last = o
			return o, nil
		}
		c.closeProbe()
		if !pm.connected.Load() {
			// Still starting (or in crash recovery): a standby if started so.
			o.State = haagent.PGStarting
			o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal"))
			o.ProbeErr = err.Error()
			if _, ferr := c.fromFiles(&o); ferr != nil {
				o.ProbeErr += "; " + ferr.Error()
			}
			return o, nil
		}
		// It answered before: a failed probe (connection limit, a slow
		// query) does not make a running primary "starting".
		stale := c.last
		stale.Stale, stale.ProbeErr = true, err.Error()
		return stale, nil
	}
	// While a tool of ours runs (see toolsRunning), every process in the
	// data directory is its own: neither a foreign postmaster to stop nor
	// an orphaned backend to kill.
	if c.toolsRunning.Load() > 0 {
		c.closeProbe()
		o.State = haagent.PGStopped
		o.ProbeErr = "a PostgreSQL tool (pg_rewind, pg_basebackup or initdb) is running on the data directory"
		return o, nil
	}
	if pid := c.foreignPostmaster(); pid != 0 {
		// Started by someone else (pg_ctl by hand, a restore workflow while
		// HA is paused): report what it is; the agent decides what to do.
		o.ForeignPostmaster = pid
		o.State = haagent.PGRunning
		if err := c.probeSQL(ctx, &o); err != nil {
			c.closeProbe()
			o.State, o.ProbeErr = haagent.PGStarting, err.Error()
			o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal")) || fileExists(filepath.Join(c.cfg.DataDir, "recovery.signal"))
		}
		return o, nil
	}
	c.closeProbe()
	// No postmaster. Backends of a dead postmaster may still run (they
	// notice its death only at their next wait): kill them before
	// reporting "crashed", which lets others take over.
	if left := processesIn(c.cfg.DataDir); len(left) > 0 {
		c.log.Warn("postmaster is gone; killing its remaining processes", "pids", left)
		if still := killAndWait(left, time.Second); len(still) > 0 {
			o.State = haagent.PGRunning // cannot prove they cannot commit
			o.ProbeErr = fmt.Sprintf("processes %v of a dead postmaster survive SIGKILL", still)
			return o, nil
		}
	}
	if o.DataDirEmpty || o.NotADataDir {
		o.State = haagent.PGStopped
		return o, nil
	}
	cd, err := c.fromFiles(&o)
	if err != nil {
		o.State = haagent.PGUnknown
		return o, err
	}
	o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal"))
	pidFile := fileExists(filepath.Join(c.cfg.DataDir, "postmaster.pid"))
	if cd.CleanShutdown() && !pidFile {
		o.State = haagent.PGStopped
	} else {
		o.State = haagent.PGCrashed
	}
	return o, nil
}

// fromFiles fills what the control file and postgresql.auto.conf say,
// for a PostgreSQL that answers no query: stopped, crashed, or starting.
// A standby that is starting may never become consistent (rewound against
// a member that is no longer the leader): its position and upstream from
// the files are what the loop judges it by.
func (c *Controller) fromFiles(o *Observation) (*ControlData, error) {
	cd, err := c.controlData()
	if err != nil {
		return nil, err
	}
	o.Control, o.Sysid, o.Timeline = cd, cd.Sysid, max(cd.Timeline, cd.MinRecoveryTL)
	o.BackupLabel = fileExists(filepath.Join(c.cfg.DataDir, "backup_label"))
	o.CheckpointTimeline = cd.Timeline
	o.PrimaryConninfo = readAutoConf(c.cfg.DataDir, "primary_conninfo")
	o.PrimaryHost, o.PrimaryPort = hostPort(o.PrimaryConninfo)
	if !cd.WasPrimary() || o.BackupLabel {
		o.ReplayedLSN = max(cd.MinRecoveryLSN, cd.CheckpointLSN)
	} else {
		o.FlushLSN = cd.CheckpointLSN
	}
	return cd, nil
}

func (c *Controller) controlData() (*ControlData, error) {
	st, err := os.Stat(filepath.Join(c.cfg.DataDir, "global", "pg_control"))
	if err != nil {
		return nil, fmt.Errorf("read control file: %w", err)
	}
	if cd := c.ctlCache; cd != nil && cd.controlFileModTime == st.ModTime().UnixNano() {
		return cd, nil
	}
	cd, err := runControlData(c.cfg.BinDir, c.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cd.controlFileModTime = st.ModTime().UnixNano()
	c.ctlCache = cd
	return cd, nil
}

func (c *Controller) closeProbe() {
	if c.probe != nil {
		c.probe.Close()
		c.probe = nil
	}
}

// Connect opens a connection to the local PostgreSQL as the OS user
// (peer authentication over the unix socket).
func (c *Controller) Connect(ctx context.Context) (*pgwire.Conn, error) {
	return pgwire.Connect(ctx, pgwire.Config{
		Network: "unix", Address: pgwire.SocketPath(c.cfg.SocketDir, c.cfg.Port),
		User: c.osUser, Database: "postgres", ApplicationName: "pigwf-ha-agent",
	})
}

func (c *Controller) probeSQL(ctx context.Context, o *Observation) error {
	if c.probe == nil {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		c.probe = conn
	}
	res, err := c.probe.Query(ctx, probeSQL)
	if err != nil {
		return fmt.Errorf("probe local PostgreSQL: %w", err)
	}
	if len(res) != 4 || len(res[0].Rows) != 1 {
		return fmt.Errorf("probe local PostgreSQL: unexpected result shape (%d results)", len(res))
	}
	r := res[0].Rows[0]
	o.InRecovery = str(r[0]) == "t"
	o.FlushLSN = lsn(r[1])
	o.ReceivedLSN, o.ReplayedLSN = lsn(r[2]), lsn(r[3])
	o.PrimaryConninfo, o.SyncStandbyNames = str(r[4]), str(r[5])
	o.PrimaryHost, o.PrimaryPort = hostPort(o.PrimaryConninfo)
	o.CheckpointTimeline = u32(r[6])
	o.Sysid = str(r[8])
	for _, row := range res[1].Rows {
		o.WALReceiverRunning = true
		c.receivedTLI = max(c.receivedTLI, u32(row[1]))
	}
	if o.InRecovery {
		o.Timeline = max(o.CheckpointTimeline, u32(r[9]), c.receivedTLI)
	} else {
		o.Timeline = u32(r[7])
	}
	for _, row := range res[2].Rows {
		o.Replication = append(o.Replication, ReplicationRow{
			ApplicationName: str(row[0]), State: str(row[1]), SyncState: str(row[2]),
			FlushLSN: lsn(row[3]), ReplayLSN: lsn(row[4]),
		})
	}
	for _, row := range res[3].Rows {
		o.Slots = append(o.Slots, Slot{Name: str(row[0]), Physical: str(row[1]) == "physical", Active: str(row[2]) == "t"})
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func lsn(p *string) haagent.LSN {
	if p == nil {
		return 0
	}
	l, _ := haagent.ParseLSN(*p)
	return l
}

func u32(p *string) uint32 {
	if p == nil {
		return 0
	}
	n, _ := strconv.ParseUint(*p, 10, 32)
	return uint32(n)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// inspectDataDir: empty = absent or no entries; notDataDir = entries but no PG_VERSION.
func inspectDataDir(dir string) (empty, notDataDir bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("inspect data directory: %w", err)
	}
	if len(entries) == 0 {
		return true, false, nil
	}
	return false, !fileExists(filepath.Join(dir, "PG_VERSION")), nil
}

// --- SQL actions ---------------------------------------------------------------

// withConn runs fn on the action connection: one persistent connection,
// separate from the probe's, reused across actions (a new backend costs a
// fork, which is slow on a loaded host right when a failover runs). A
// failed fn drops the connection; the next action reconnects.
func (c *Controller) withConn(ctx context.Context, fn func(*pgwire.Conn) error) error {
	c.actionMu.Lock()
	defer c.actionMu.Unlock()
	if c.action != nil && c.actionPM != c.pm.Load() {
		c.action.Close() // a connection to a postmaster that is gone
		c.action = nil
	}
	if c.action == nil {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		c.action, c.actionPM = conn, c.pm.Load()
	}
	err := fn(c.action)
	if err != nil && pgwire.SQLState(err) == "" {
		c.action.Close()
		c.action = nil
	}
	return err
}

// withFreshConn runs fn on a connection of its own (long waits, and the
// REST API, which must not queue behind the loop's actions).
func (c *Controller) withFreshConn(ctx context.Context, fn func(*pgwire.Conn) error) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// alterSystem sets (value non-nil) or resets settings with ALTER SYSTEM,
// then reloads. ALTER SYSTEM refuses multi-statement queries, so one
// statement per query.
func alterSystem(ctx context.Context, conn *pgwire.Conn, settings map[string]string) error {
	for _, k := range sortedKeys(settings) {
		q := fmt.Sprintf("ALTER SYSTEM SET %s = %s", k, pgwire.QuoteLiteral(settings[k]))
		if settings[k] == "" {
			q = "ALTER SYSTEM RESET " + k
		}
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("ALTER SYSTEM %s: %w", k, err)
		}
	}
	if err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload configuration: %w", err)
	}
	return nil
}

// PrimaryConninfo is the primary_conninfo for streaming from up.
func (c *Controller) PrimaryConninfo(up Upstream) string {
	parts := []string{
		"host=" + conninfoQuote(up.Host),
		"port=" + strconv.Itoa(up.Port),
		"user=" + conninfoQuote(c.cfg.ReplicationUser),
		"application_name=" + conninfoQuote(c.cfg.MemberName),
		"connect_timeout=2",
		"keepalives=1", "keepalives_idle=2", "keepalives_interval=1", "keepalives_count=3",
	}
	if c.cfg.Passfile != "" {
		parts = append(parts, "passfile="+conninfoQuote(c.cfg.Passfile))
	}
	return strings.Join(parts, " ")
}

// Follow points a running standby at up (or at nothing) and reloads; the
// startup process restarts its WAL receiver.
func (c *Controller) Follow(ctx context.Context, up *Upstream) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		if err := alterSystem(ctx, conn, c.recoverySettings(up)); err != nil {
			return fmt.Errorf("follow %v: %w", up, err)
		}
		return nil
	})
}

// recoverySettings are the recovery settings for streaming from up (nil:
// no upstream; empty values are removed from postgresql.auto.conf).
func (c *Controller) recoverySettings(up *Upstream) map[string]string {
	if up == nil {
		return map[string]string{"primary_conninfo": "", "primary_slot_name": ""}
	}
	return map[string]string{"primary_conninfo": c.PrimaryConninfo(*up), "primary_slot_name": SlotName(c.cfg.MemberName)}
}

// FollowWhileStarting points a standby that is still starting (it accepts
// no connection, so ALTER SYSTEM is impossible) at up: it rewrites the
// recovery settings in postgresql.auto.conf and reloads. The startup
// process applies a changed primary_conninfo on reload (PostgreSQL 13+).
func (c *Controller) FollowWhileStarting(up *Upstream) error {
	pm := c.pm.Load()
	if pm == nil || pm.exited() {
		return errors.New("follow while starting: PostgreSQL is not running")
	}
	if err := setAutoConf(c.cfg.DataDir, c.recoverySettings(up)); err != nil {
		return fmt.Errorf("follow %v while starting: %w", up, err)
	}
	if err := syscall.Kill(pm.pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("follow %v while starting: reload postmaster %d: %w", up, pm.pid, err)
	}
	return nil
}

// StopWALReceiver is promotion phase one: clear primary_conninfo, set the
// synchronous_standby_names the new primary starts with (same reload),
// and wait (up to ctx) until the WAL receiver is gone, so the old primary
// can get no more acknowledgements from this standby.
func (c *Controller) StopWALReceiver(ctx context.Context, syncStandbyNames string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		settings := map[string]string{"primary_conninfo": "", "synchronous_standby_names": syncStandbyNames}
		if err := alterSystem(ctx, conn, settings); err != nil {
			return fmt.Errorf("stop WAL receiver: %w", err)
		}
		for {
			res, err := conn.Query(ctx, "SELECT count(*) FROM pg_stat_wal_receiver")
			if err != nil {
				return fmt.Errorf("stop WAL receiver: %w", err)
			}
			if len(res) == 1 && len(res[0].Rows) == 1 && str(res[0].Rows[0][0]) == "0" {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("stop WAL receiver: still running: %w", ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
}

// Promote is promotion phase two: pg_ctl promote's mechanism (a promote
// file and SIGUSR1 to the postmaster) under the write gate, then wait
// until PostgreSQL leaves recovery (polled every 2 ms; pg_ctl and
// pg_promote poll every 100 ms).
func (c *Controller) Promote(ctx context.Context) error {
	pm := c.pm.Load()
	if pm == nil || pm.exited() {
		return errors.New("promote: PostgreSQL is not running")
	}
	err := c.gate.WhileWritable(func() error {
		if err := os.WriteFile(filepath.Join(c.cfg.DataDir, "promote"), nil, 0o600); err != nil {
			return fmt.Errorf("promote: write promote file: %w", err)
		}
		if err := syscall.Kill(pm.pid, syscall.SIGUSR1); err != nil {
			return fmt.Errorf("promote: signal postmaster %d: %w", pm.pid, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		for {
			res, err := conn.Query(ctx, "SELECT pg_is_in_recovery()")
			if err != nil {
				return fmt.Errorf("promote: wait for the end of recovery: %w", err)
			}
			if len(res) == 1 && len(res[0].Rows) == 1 && str(res[0].Rows[0][0]) == "f" {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("promote: still in recovery: %w", ctx.Err())
			case <-pm.done:
				return errors.New("promote: PostgreSQL exited")
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
}

// Checkpoint runs CHECKPOINT: after a promotion the control file shows the
// new timeline only after one, and pg_rewind against this node needs it.
func (c *Controller) Checkpoint(ctx context.Context) error {
	return c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		if err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		return nil
	})
}

// SetSyncStandbyNames sets synchronous_standby_names (ALTER SYSTEM + reload).
func (c *Controller) SetSyncStandbyNames(ctx context.Context, value string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		if err := alterSystem(ctx, conn, map[string]string{"synchronous_standby_names": value}); err != nil {
			return fmt.Errorf("set synchronous_standby_names to %q: %w", value, err)
		}
		return nil
	})
}

// CurrentFlushLSN is pg_current_wal_flush_lsn() on a primary.
func (c *Controller) CurrentFlushLSN(ctx context.Context) (haagent.LSN, error) {
	var out haagent.LSN
	err := c.withConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, "SELECT pg_current_wal_flush_lsn()")
		if err != nil {
			return fmt.Errorf("current flush LSN: %w", err)
		}
		if len(res) != 1 || len(res[0].Rows) != 1 {
			return errors.New("current flush LSN: no row")
		}
		out = lsn(res[0].Rows[0][0])
		return nil
	})
	return out, err
}

// EnsureSlots creates missing physical slots; DropSlots drops inactive ones.
func (c *Controller) EnsureSlots(ctx context.Context, names []string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		for _, n := range names {
			err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot("+pgwire.QuoteLiteral(n)+", true)")
			if err != nil && pgwire.SQLState(err) != "42710" { // duplicate_object
				return fmt.Errorf("create replication slot %s: %w", n, err)
			}
		}
		return nil
	})
}

// DropSlots drops the named slots if they are not in use.
func (c *Controller) DropSlots(ctx context.Context, names []string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		for _, n := range names {
			err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "+
				pgwire.QuoteLiteral(n)+" AND NOT active")
			if err != nil {
				return fmt.Errorf("drop replication slot %s: %w", n, err)
			}
		}
		return nil
	})
}

// LiveReplication is pg_stat_replication, synchronous_standby_names and
// the flush LSN read right now on a fresh connection (for the REST API).
func (c *Controller) LiveReplication(ctx context.Context) ([]ReplicationRow, string, haagent.LSN, error) {
	var rows []ReplicationRow
	var ssn string
	var flush haagent.LSN
	err := c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, `SELECT application_name, state, sync_state, flush_lsn, replay_lsn FROM pg_stat_replication;
SELECT current_setting('synchronous_standby_names'), CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END`)
		if err != nil {
			return err
		}
		if len(res) != 2 || len(res[1].Rows) != 1 {
			return errors.New("unexpected result shape")
		}
		for _, row := range res[0].Rows {
			rows = append(rows, ReplicationRow{ApplicationName: str(row[0]), State: str(row[1]), SyncState: str(row[2]),
				FlushLSN: lsn(row[3]), ReplayLSN: lsn(row[4])})
		}
		ssn, flush = str(res[1].Rows[0][0]), lsn(res[1].Rows[0][1])
		return nil
	})
	if err != nil {
		return nil, "", 0, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return rows, ssn, flush, nil
}

// --- data directory actions ----------------------------------------------------

// requireStopped refuses data-directory surgery while PostgreSQL runs.
func (c *Controller) requireStopped(what string) error {
	if pm := c.pm.Load(); pm != nil && !pm.exited() {
		return fmt.Errorf("%s: PostgreSQL (pid %d) is running", what, pm.pid)
	}
	if pid := c.foreignPostmaster(); pid != 0 {
		return fmt.Errorf("%s: a postmaster (pid %d) not started by this agent is running", what, pid)
	}
	return nil
}

func (c *Controller) run(ctx context.Context, what string, env []string, name string, args ...string) (string, error) {
	c.toolsRunning.Add(1)
	defer c.toolsRunning.Add(-1)
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, name), args...)
	// Not the agent's working directory (often a home the postgres user
	// cannot read, which makes the tools warn); never the data directory.
	cmd.Dir = "/"
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Env = append(cmd.Env, "LC_ALL=C", "LANG=C")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("%s: %s failed after %s: %w: %s", what, name, time.Since(start).Round(time.Millisecond), err, lastLines(text, 5))
	}
	c.log.Info(what+" finished", "command", name, "elapsed", time.Since(start).Round(time.Millisecond).String(), "output", lastLines(text, 3))
	return text, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// sourceServer is the libpq connection string for pg_rewind's source. It
// sets statement_timeout=0 (and the other timeouts) in the session: a
// cluster-wide statement_timeout would otherwise kill pg_rewind's long
// reads of the source's files (a known trap).
func (c *Controller) sourceServer(up Upstream) string {
	parts := []string{
		"host=" + conninfoQuote(up.Host), "port=" + strconv.Itoa(up.Port),
		"user=" + conninfoQuote(c.cfg.ReplicationUser), "dbname=postgres",
		"application_name=" + conninfoQuote(c.cfg.MemberName+"-pg_rewind"),
		"connect_timeout=5",
		"options=" + conninfoQuote("-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"),
	}
	if c.cfg.Passfile != "" {
		parts = append(parts, "passfile="+conninfoQuote(c.cfg.Passfile))
	}
	return strings.Join(parts, " ")
}

// Rewind runs pg_rewind against up. PostgreSQL must be stopped; pg_rewind
// itself runs crash recovery first when the target was not shut down
// cleanly. pg_rewind needs wal_log_hints or data checksums from before the
// divergence; the agent always starts PostgreSQL with wal_log_hints=on.
func (c *Controller) Rewind(ctx context.Context, up Upstream) error {
	if err := c.requireStopped("pg_rewind"); err != nil {
		return err
	}
	out, err := c.run(ctx, "pg_rewind from "+up.Name, nil, "pg_rewind",
		"--target-pgdata="+c.cfg.DataDir, "--source-server="+c.sourceServer(up))
	if err != nil && rewindSourceUnreachable(out) {
		return fmt.Errorf("%w: %w", ErrRewindSourceUnreachable, err)
	}
	return err
}

// ErrRewindSourceUnreachable: pg_rewind failed because it could not connect
// to its source server. That says nothing about whether this data directory
// can be rewound, so it is a reason to retry the rewind, not to re-clone.
var ErrRewindSourceUnreachable = errors.New("pg_rewind could not connect to the source server")

// rewindSourceUnreachable classifies a failed pg_rewind's combined output.
// pg_rewind reports a failed connection only as text: libpq's
// "connection to server at ... failed: ..." (PostgreSQL 14 and later). This
// is the one place that matches that text; callers test
// errors.Is(err, ErrRewindSourceUnreachable). It looks at the same last
// lines that run puts into the error message.
func rewindSourceUnreachable(output string) bool {
	return strings.Contains(lastLines(output, 5), "connection to server")
}

// Clone runs pg_basebackup from up into the data directory. With
// moveAside, the current data directory is first renamed to
// <data_dir>.<UTC timestamp>.pigwf-old — never deleted — and the new name
// is returned.
func (c *Controller) Clone(ctx context.Context, up Upstream, moveAside bool) (movedTo string, err error) {
	if err := c.requireStopped("clone"); err != nil {
		return "", err
	}
	if moveAside {
		if empty, _, _ := inspectDataDir(c.cfg.DataDir); !empty {
			movedTo = fmt.Sprintf("%s.%s.pigwf-old", c.cfg.DataDir, time.Now().UTC().Format("20060102T150405Z"))
			if err := os.Rename(c.cfg.DataDir, movedTo); err != nil {
				return "", fmt.Errorf("re-clone: move the old data directory aside to %s: %w", movedTo, err)
			}
			c.log.Warn("moved the old data directory aside before re-cloning; it is kept for inspection", "from", c.cfg.DataDir, "to", movedTo)
		}
	}
	env := []string{"PGAPPNAME=" + c.cfg.MemberName + "-clone"}
	if c.cfg.Passfile != "" {
		env = append(env, "PGPASSFILE="+c.cfg.Passfile)
	}
	_, err = c.run(ctx, "pg_basebackup from "+up.Name, env, "pg_basebackup",
		"-D", c.cfg.DataDir, "-h", up.Host, "-p", strconv.Itoa(up.Port), "-U", c.cfg.ReplicationUser,
		"-X", "stream", "-c", "fast", "-w")
	c.ctlCache = nil
	return movedTo, err
}

// Bootstrap initdb's an empty data directory (the initialize race winner
// when no workflow prepared one). pg_hba and the replication user are the
// cluster-creation workflow's job.
func (c *Controller) Bootstrap(ctx context.Context) error {
	if err := c.requireStopped("bootstrap"); err != nil {
		return err
	}
	_, err := c.run(ctx, "initdb", nil, "initdb", "-D", c.cfg.DataDir, "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256")
	return err
}

// HistoryFile reads pg_wal/<timeline>.history ("" for timeline 1).
func (c *Controller) HistoryFile(timeline uint32) (string, error) {
	if timeline <= 1 {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(c.cfg.DataDir, "pg_wal", fmt.Sprintf("%08X.history", timeline)))
	if err != nil {
		return "", fmt.Errorf("read timeline history %d: %w", timeline, err)
	}
	return string(b), nil
}

// PostmasterPID is the pid of the postmaster this controller started (0 if none runs).
func (c *Controller) PostmasterPID() int {
	if pm := c.pm.Load(); pm != nil && !pm.exited() {
		return pm.pid
	}
	return 0
}
