package pgctl

import (
	"fmt"
	"slices"
	"syscall"
	"time"
)

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
	if pm.running() {
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
