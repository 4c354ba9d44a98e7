package pgctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	if pm := c.pm.Load(); pm.running() {
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
