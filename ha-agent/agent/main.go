package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const usage = `pg-ha-agent: pigwf's HA agent for one PostgreSQL node.

Usage:
  pg-ha-agent [run] [--config FILE]       run the agent (as the postgres OS user)
  pg-ha-agent supervise [--config FILE]   run the agent as a child and restart it within 100 ms when it dies
  pg-ha-agent check-config [--config FILE] validate the config file and exit

FILE defaults to ` + DefaultConfigPath + `.
`

// Main is the pg-ha-agent command line; it returns the exit code.
func Main(args []string) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "supervise" || args[0] == "check-config") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("pg-ha-agent "+cmd, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	configPath := fs.String("config", DefaultConfigPath, "local config file (YAML)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pg-ha-agent: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pg-ha-agent: %v\n", err)
		return 1
	}
	switch cmd {
	case "check-config":
		fmt.Printf("%s: OK (cluster %s, member %s)\n", *configPath, cfg.Cluster, cfg.Name)
		return 0
	case "supervise":
		log, closeLog, err := newLogger(cfg.LogFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pg-ha-agent: %v\n", err)
			return 1
		}
		defer closeLog()
		return Supervise(*configPath, log.With("component", "supervisor", "member", cfg.Name))
	}
	log, closeLog, err := newLogger(cfg.LogFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pg-ha-agent: %v\n", err)
		return 1
	}
	defer closeLog()
	unlock, err := lockInstance(cfg)
	if err != nil {
		log.Error("another agent runs for this PostgreSQL", "err", err)
		return 3
	}
	defer unlock()
	ctx, stop := signal.NotifyContext(context.Background(), terminate...)
	defer stop()
	a, err := New(Options{Config: cfg, Logger: log})
	if err != nil {
		log.Error("cannot start the agent", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(path string) (*slog.Logger, func(), error) {
	var w io.Writer = os.Stderr
	closeFn := func() {}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", path, err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), closeFn, nil
}

// lockInstance makes sure one agent runs per PostgreSQL instance (a
// restarted supervisor must not start a second agent next to a live one).
func lockInstance(cfg LocalConfig) (func(), error) {
	path := filepath.Join(cfg.Postgres.SocketDir, ".pigwf-ha-agent."+strconv.Itoa(cfg.Postgres.Port)+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("lock %s (held by pid %s): %w", path, string(b), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return func() { f.Close() }, nil
}

// Supervise runs "pg-ha-agent run" as a child and restarts it 100 ms after
// it dies (backing off up to 5 s while it keeps dying within seconds). It
// does not manage PostgreSQL: the agent's postmaster dies with the agent
// (Pdeathsig), and the restarted agent re-takes its leader key by CAS and
// restarts PostgreSQL. SIGTERM/SIGINT are forwarded and end supervision.
//
// The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER): when the
// agent dies, its killed postmaster and that postmaster's backends are
// re-parented to the supervisor, which reaps them. Otherwise they would
// wait for PID 1 to reap them, and PostgreSQL refuses to start while the
// pid in its postmaster.pid (a zombie) still exists.
func Supervise(configPath string, log *slog.Logger) int {
	self, err := os.Executable()
	if err != nil {
		log.Error("cannot find my own executable", "err", err)
		return 1
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("cannot become a child subreaper; zombies of a dead agent's PostgreSQL are left to PID 1", "err", err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, terminate...)...)
	delay := 100 * time.Millisecond
	stopping := false
	for {
		cmd := exec.Command(self, "run", "--config", configPath)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
		started := time.Now()
		if err := cmd.Start(); err != nil {
			log.Error("start the agent", "err", err)
			return 1
		}
		agent := cmd.Process.Pid
		log.Info("agent started", "pid", agent)
		var status syscall.WaitStatus
		exited := false
		for !exited {
			sig := <-sigs
			if sig != syscall.SIGCHLD && !stopping {
				log.Info("stopping: forwarding the signal to the agent", "signal", sig.String())
				stopping = true
				_ = syscall.Kill(agent, sig.(syscall.Signal))
			}
			// Reap every child that exited: the agent, or orphans of it.
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
				if pid == agent {
					status, exited = ws, true
				}
			}
		}
		if stopping {
			return 0
		}
		ran := time.Since(started)
		if ran > 10*time.Second {
			delay = 100 * time.Millisecond
		}
		log.Warn("agent exited; restarting it", "status", describeWait(status), "ran", ran.Round(time.Millisecond).String(), "restart_in", delay.String())
		// Until the restart, kill whatever the dead agent left behind and
		// was re-parented to us: its postmaster dies by Pdeathsig, but that
		// postmaster's backends only notice at their next wait, and one
		// committing asynchronously in a loop might never wait.
		timer := time.NewTimer(delay)
		orphanSweep := time.NewTicker(5 * time.Millisecond)
		killed := 0
	wait:
		for {
			select {
			case <-timer.C:
				break wait
			case <-orphanSweep.C:
				killed += killOrphans()
			case sig := <-sigs:
				if sig != syscall.SIGCHLD {
					orphanSweep.Stop()
					return 0
				}
				for {
					var ws syscall.WaitStatus
					if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
						break
					}
				}
			}
		}
		orphanSweep.Stop()
		if killed > 0 {
			log.Warn("killed processes the dead agent left behind", "count", killed)
		}
		if ran <= 10*time.Second {
			delay = min(delay*2, 5*time.Second)
		}
	}
}

func describeWait(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// killOrphans SIGKILLs every child of this process (called only while no
// agent runs: every child is then an orphan of the dead agent's tree).
func killOrphans() int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	n := 0
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}
