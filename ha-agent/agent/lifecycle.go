package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// upstream builds a replication source from a member record.
func (a *Agent) upstream(name string) (pgctl.Upstream, error) {
	m, ok := a.cache.members[name]
	if !ok || m.rec.Host == "" || m.rec.Port == 0 {
		return pgctl.Upstream{}, fmt.Errorf("member %s has not published its host and port", name)
	}
	return pgctl.Upstream{Name: name, Host: m.rec.Host, Port: m.rec.Port}, nil
}

// mayJoin: a former primary must not stream from a leader that is not on
// a later timeline yet (its promotion is not finished), or it would replay
// its own extra WAL and then fail to follow the fork.
func (a *Agent) mayJoin(leader string) error {
	if a.wasPrimaryOnTL == 0 || a.cache.leader == nil || a.cache.leader.rec.Holder != leader {
		return nil
	}
	if tl := a.cache.leader.rec.Timeline; tl <= a.wasPrimaryOnTL {
		return fmt.Errorf("%w: I was a primary on timeline %d; waiting for leader %s to finish its promotion (timeline %d) before rejoining",
			errNotYet, a.wasPrimaryOnTL, leader, tl)
	}
	return nil
}

// restart starts PostgreSQL: as the primary (holder), as a replica of
// act.Leader, or as a standby without upstream (to join the race).
func (a *Agent) restart(ctx context.Context, act haagent.Action, obs pgctl.Observation) error {
	opts := pgctl.StartOptions{AsPrimary: act.AsPrimary}
	// KeepLock: the holder restarts its own PostgreSQL, as a primary or,
	// to resume an unfinished promotion, as a standby; either counts as an
	// in-place restart for the crash-restart rules.
	if act.KeepLock && obs.State == haagent.PGCrashed {
		a.crashRestarts++
		if !a.inOutage {
			a.inOutage, a.crashedAt = true, a.clock.Now()
		}
	} else if act.Leader != "" {
		if err := a.mayJoin(act.Leader); err != nil {
			return err
		}
		up, err := a.upstream(act.Leader)
		if err != nil {
			return err
		}
		opts.Upstream = &up
	}
	return a.startPostgres(ctx, opts)
}

// startPostgres starts PostgreSQL, backing off while it keeps exiting
// right after starting (a broken config must not become a fork loop).
func (a *Agent) startPostgres(ctx context.Context, opts pgctl.StartOptions) error {
	if a.quickExits > 0 {
		backoff := min(100*time.Millisecond<<min(a.quickExits, 6), 5*time.Second)
		if wait := backoff - (a.clock.Now() - a.lastStart); wait > 0 {
			return fmt.Errorf("%w: PostgreSQL exited %d time(s) right after starting%s; next start in %s",
				errNotYet, a.quickExits, pgLogHint(a.cfg.Postgres.LogFile), wait.Round(time.Millisecond))
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	a.lastStart = a.clock.Now()
	if err := a.pg.Start(sctx, opts); err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	return nil
}

// pgLogHint returns the last FATAL/PANIC line of PostgreSQL's log, for
// messages about a PostgreSQL that does not stay up.
func pgLogHint(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-16384, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(string(buf), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "FATAL:") || strings.Contains(lines[i], "PANIC:") {
			return " (PostgreSQL log: " + strings.TrimSpace(lines[i]) + ")"
		}
	}
	return ""
}

// follow makes PostgreSQL a replica streaming from leader.
func (a *Agent) follow(ctx context.Context, leader string, obs pgctl.Observation) error {
	if err := a.mayJoin(leader); err != nil {
		return err
	}
	up, err := a.upstream(leader)
	if err != nil {
		return err
	}
	if obs.State == haagent.PGRunning && obs.InRecovery {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return a.pg.Follow(fctx, &up)
	}
	if obs.State == haagent.PGStarting && obs.InRecovery {
		return a.pg.FollowWhileStarting(&up)
	}
	if obs.State == haagent.PGRunning {
		return errors.New("follow: PostgreSQL runs as a primary")
	}
	return a.startPostgres(ctx, pgctl.StartOptions{Upstream: &up})
}

// rewind runs pg_rewind from leader (asynchronously) and starts as its replica.
func (a *Agent) rewind(leader string, view haagent.ClusterView) error {
	up, err := a.upstream(leader)
	if err != nil {
		return err
	}
	lm := a.cache.members[leader]
	if lr := view.Leader; lr != nil && lm.rec.CheckpointTimeline < lr.Timeline {
		return fmt.Errorf("%w: leader %s has not checkpointed on timeline %d yet (pg_rewind would see no divergence)", errNotYet, leader, lr.Timeline)
	}
	a.runAsync(haagent.BusyRewinding, showRewinding, "pg_rewind from "+leader, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := a.pg.Stop(sctx, pgctl.StopFast); err != nil {
			return fmt.Errorf("stop before pg_rewind: %w", err)
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Hour)
		defer rcancel()
		if err := a.pg.Rewind(rctx, up); err != nil {
			return err
		}
		return a.pg.Start(sctx, pgctl.StartOptions{Upstream: &up})
	}, func(err error) {
		if errors.Is(err, pgctl.ErrRewindSourceUnreachable) {
			// The leader was unreachable: not a failed rewind; retried.
			a.log.Warn("pg_rewind could not reach the leader; will retry", "leader", leader, "err", err)
			return
		}
		if err != nil {
			a.rewindFailed, a.rewindError = true, humanErr(err)
			a.note = "pg_rewind failed: " + a.rewindError + "; re-cloning next"
			a.log.Error("pg_rewind failed; the data directory will be re-cloned", "err", err)
			return
		}
		a.rewindFailed, a.rewindError, a.wasPrimaryOnTL, a.note = false, "", 0, ""
		a.log.Warn("rejoined as a replica after pg_rewind", "leader", leader)
	})
	return nil
}

// clone runs pg_basebackup from leader (moving an old data directory
// aside first when moveAside) and starts as its replica; the member record
// shows state meanwhile.
func (a *Agent) clone(leader string, moveAside bool, state recordState, note string) error {
	up, err := a.upstream(leader)
	if err != nil {
		return err
	}
	a.note = note
	a.runAsync(haagent.BusyCloning, state, note, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := a.pg.Stop(sctx, pgctl.StopFast); err != nil {
			return fmt.Errorf("stop before cloning: %w", err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 24*time.Hour)
		defer ccancel()
		movedTo, err := a.pg.Clone(cctx, up, moveAside)
		if movedTo != "" {
			a.log.Warn("old data directory kept", "path", movedTo)
		}
		if err != nil {
			return err
		}
		return a.pg.Start(sctx, pgctl.StartOptions{Upstream: &up})
	}, func(err error) {
		if err != nil {
			a.note = "clone from " + leader + " failed: " + humanErr(err)
			a.log.Error("clone failed", "leader", leader, "err", err)
			return
		}
		a.rewindFailed, a.rewindError, a.wasPrimaryOnTL, a.note = false, "", 0, ""
		a.log.Warn("cloned from the leader; starting as its replica", "leader", leader, "moved_aside", moveAside)
	})
	return nil
}
