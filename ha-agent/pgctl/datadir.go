package pgctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/libpq"
)

// requireStopped refuses data-directory surgery while PostgreSQL runs.
func (c *Controller) requireStopped(what string) error {
	if pm := c.pm.Load(); pm.running() {
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
	// -d takes the one connection string to another member (TLS, password
	// file), the same as streaming's.
	_, err = c.run(ctx, "pg_basebackup from "+up.Name, nil, "pg_basebackup",
		"-D", c.cfg.DataDir, "-d", c.memberConninfo(up, libpq.P("application_name", c.cfg.MemberName+"-clone")),
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
