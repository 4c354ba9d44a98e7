package pgctl

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

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
	if !pm.running() {
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
