package agent

import (
	"context"
	"fmt"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// stopWALReceiver is promotion phase one. It also prepares the new
// primary so that the first commit after promotion needs nothing more:
//   - in synchronous mode the sync key becomes {leader: me, standbys: []}
//     BEFORE PostgreSQL can acknowledge anything (the old key still names
//     the old leader, who lacks what I will acknowledge asynchronously);
//   - synchronous_standby_names: the strict placeholder (commits wait
//     for a synchronous standby) or empty (asynchronous until one syncs);
//     a value copied from the old primary would name myself or a dead node;
//   - replication slots for the others, so they stream from me at once.
func (a *Agent) stopWALReceiver(ctx context.Context, view haagent.ClusterView, obs pgctl.Observation) error {
	// The key first: synchronous_standby_names has no effect before the
	// promotion, which comes after this whole phase.
	if a.hacfg.SynchronousMode && (a.cache.sync == nil || a.cache.sync.Leader != a.cfg.Name || len(a.cache.sync.Standbys) > 0) {
		if err := a.putSync(ctx, nil); err != nil {
			return fmt.Errorf("promotion: write the sync key before promoting: %w", err)
		}
	}
	ssn := ssnValue(nil, a.hacfg.SynchronousMode, a.hacfg.SynchronousModeStrict)
	sctx, cancel := context.WithTimeout(ctx, max(a.hacfg.LoopInterval(), 50*time.Millisecond))
	defer cancel()
	if err := a.pg.StopWALReceiver(sctx, ssn); err != nil {
		return err
	}
	a.syncTarget, a.syncTargetSet, a.ssnJustSet = nil, true, &ssn
	a.ensureSlots(ctx, view, obs)
	a.lastSlotCheck = a.clock.Now()
	return nil
}

// promote runs promotion phase two asynchronously; the holder keeps
// renewing meanwhile (Busy).
func (a *Agent) promote() {
	started := time.Now()
	var writable time.Duration // the agent's clock when PostgreSQL left recovery
	a.runAsync(haagent.BusyPromoting, showPostgresState, "", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		err := a.pg.Promote(pctx)
		writable = a.clock.Now()
		return err
	}, func(err error) {
		if err != nil {
			a.log.Error("promotion failed", "err", err)
			return
		}
		a.metrics.lastPromotionUnixNs.Store(time.Now().UnixNano())
		var failover time.Duration
		if a.leaderLost != 0 && writable > a.leaderLost {
			failover = writable - a.leaderLost
			a.metrics.lastFailoverNs.Store(int64(failover))
		}
		a.leaderLost = 0
		a.log.Warn("promoted: PostgreSQL accepts writes", "promote_duration", time.Since(started).Round(time.Millisecond).String(),
			"failover_duration", failover.Round(time.Millisecond).String())
		a.wasPrimaryOnTL = 0
		// The control file shows the new timeline only after a
		// checkpoint, and pg_rewind of the old primary needs that.
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := a.pg.Checkpoint(cctx); err != nil {
				a.log.Warn("checkpoint after promotion", "err", err)
			}
		}()
	})
}

// demote: a clean (fast) shutdown for a switchover, or a fence when I run
// as a primary without the lock.
func (a *Agent) demote(act haagent.Action) error {
	if !act.Clean {
		rep, err := a.fencer.FenceNow()
		a.noteFence(rep)
		return err
	}
	// /primary answers 503 before PostgreSQL stops taking connections, so a load balancer
	// drains this member first; the API sees it at once, not at the next cycle's snapshot.
	a.beginStop()
	a.runAsync(haagent.BusyStopping, showPostgresState, "switchover: shutting down", func(ctx context.Context) error {
		// A checkpoint while writes still flow leaves little for the
		// shutdown checkpoint, which is write downtime.
		cctx, ccancel := context.WithTimeout(ctx, time.Minute)
		if err := a.pg.Checkpoint(cctx); err != nil {
			a.log.Warn("checkpoint before the switchover shutdown", "err", err)
		}
		ccancel()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return a.pg.Stop(sctx, pgctl.StopFast)
	}, func(err error) {
		if err != nil {
			// PostgreSQL still runs as the primary and I still hold the lock: it serves again
			// until the next attempt.
			a.stopping = false
			a.log.Error("switchover shutdown failed", "err", err)
		}
	})
	return nil
}

// beginStop marks a planned stop of PostgreSQL: isPrimary is false from now on (in the
// snapshot the API reads, at once) until the loop sees PostgreSQL down.
func (a *Agent) beginStop() {
	a.stopping = true
	a.mu.Lock()
	a.snap.stopping = true
	a.mu.Unlock()
}
