package pgctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
)

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
	if !pm.running() {
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
