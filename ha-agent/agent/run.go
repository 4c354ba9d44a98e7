package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// Run runs the agent until ctx is cancelled (then it stops PostgreSQL
// cleanly and releases the leader key if it holds it).
func (a *Agent) Run(ctx context.Context) error {
	defer a.fencer.Close()
	if a.ownCli {
		defer a.cli.Close()
	}
	lis, err := net.Listen("tcp", a.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("REST API: listen on %s: %w", a.cfg.API.Listen, err)
	}
	a.server = a.apiServer()
	go func() {
		if err := serveAPI(a.server, lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("REST API stopped", "err", err)
		}
	}()
	defer a.server.Close()

	// A PostgreSQL this agent did not start is stopped in the first cycle,
	// once the pause key is known (see observe).
	obsCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	obs, err := a.pg.Observe(obsCtx)
	cancel()
	if err != nil {
		a.log.Warn("first observation of PostgreSQL failed", "err", err)
	}
	if obs.State == haagent.PGCrashed && !obs.BackupLabel {
		a.downAtStart = true
		a.log.Info("PostgreSQL was down when the agent started (it dies with its agent); it restarts after this agent takes part in the loop",
			"control_state", controlState(obs))
	}
	a.noteWasPrimary(obs)

	pubCtx, stopPub := context.WithCancel(context.Background())
	defer stopPub()
	go a.publisher(pubCtx)
	go a.params.run(pubCtx)
	if a.ownCli && len(a.cfg.Etcd.Endpoints) > 1 {
		go newEndpointHealth(a.cli, a.etcdCfg, a.hacfg.LoopInterval(), a.log).run(pubCtx)
	}

	a.needLoad = true
	ticker := time.NewTicker(a.hacfg.LoopInterval())
	defer ticker.Stop()
	interval := a.hacfg.LoopInterval()
	a.log.Info("HA agent started", "cluster", a.cfg.Cluster, "api", a.cfg.API.Listen, "data_dir", a.cfg.Postgres.DataDir)
	a.cycle(ctx)
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-ticker.C:
			a.kicks = 0
		case u, ok := <-a.watchCh:
			if !ok || u.Err != nil {
				if u.Err != nil {
					a.log.Warn("etcd watch ended; reloading", "err", u.Err)
				}
				a.watchCh, a.needLoad = nil, true
				break
			}
			if !a.applyWatch(u) {
				continue // nothing that needs a decision now
			}
		case <-a.pg.Exited():
			a.log.Warn("the postmaster exited")
		case r := <-a.asyncDone:
			a.finishAsync(r)
		case ask := <-a.restarts:
			a.beginRestart(ask)
		case <-a.kick:
		}
		a.cycle(ctx)
		a.armStaleWake()
		if iv := a.hacfg.LoopInterval(); iv != interval {
			interval = iv
			ticker.Reset(iv)
		}
	}
}

// applyWatch applies a watch update and says whether it needs a decision
// at once: a change of the leader key by someone else (or its deletion),
// or of the failover, pause, sync, config or initialize keys. Member
// reports and our own renewals do not (they would make every renewal
// trigger the next one).
func (a *Agent) applyWatch(u dcs.WatchUpdate) bool {
	now := a.clock.Now()
	urgent := false
	for _, e := range u.Events {
		if e.Kind == dcs.KindLeader && !e.Deleted {
			for _, p := range a.pendingRenews {
				if g, ok := dcs.GuardFromEvent(e, p.rec); ok {
					// Our renewal whose response was lost has been applied.
					a.guard, a.pendingRenews = g, nil
					a.setLease(g.Revision, p.sentAt)
					break
				}
			}
		}
		if err := a.cache.applyEvent(e, now); err != nil {
			a.log.Warn("malformed value in etcd", "key", e.Kind.String(), "member", e.Member, "err", err)
		}
		switch e.Kind {
		case dcs.KindLeader:
			if e.Deleted || a.cache.leader == nil || a.cache.leader.rec.Holder != a.cfg.Name {
				urgent = true
			}
		case dcs.KindFailover, dcs.KindPause, dcs.KindSync, dcs.KindConfig, dcs.KindInitialize, dcs.KindHistory:
			urgent = true
		}
	}
	a.dcsReachable = true
	if u.Revision > a.cache.revision {
		a.cache.revision = u.Revision
	}
	a.reloadConfig()
	return urgent
}

// load reads every key and (re)starts the watch.
func (a *Agent) load(ctx context.Context) error {
	// Short: one etcd member that is down (its node crashed) must cost one loop, not half a
	// second; the client's round-robin sends the next attempt to another member.
	lctx, cancel := context.WithTimeout(ctx, max(a.hacfg.LoopInterval(), 150*time.Millisecond))
	snap, err := a.store.Load(lctx)
	cancel()
	if err != nil {
		a.dcsReachable = false
		return err
	}
	now := a.clock.Now()
	for _, p := range snap.Problems {
		a.log.Warn("malformed value in etcd", "err", p)
	}
	a.cache.applySnapshot(snap, now)
	a.reloadConfig()
	if a.watchCancel != nil {
		a.watchCancel()
	}
	wctx, wcancel := context.WithCancel(ctx)
	a.watchCancel = wcancel
	a.watchCh = a.store.Watch(wctx, snap.Revision)
	a.needLoad, a.lastLoad, a.dcsReachable = false, now, true
	return nil
}

// shutdown: stop PostgreSQL cleanly and release the lock if held (a
// planned stop of the agent is a switchover, not a failover).
func (a *Agent) shutdown() error {
	a.log.Info("agent stopping: shutting PostgreSQL down (fast) and releasing the leader lock if held")
	a.beginStop() // the API still answers meanwhile: /primary says 503 first
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.pg.Stop(ctx, pgctl.StopFast); err != nil {
		a.log.Error("stop PostgreSQL", "err", err)
		if _, ferr := a.fencer.FenceNow(); ferr != nil {
			a.log.Error("fence after a failed stop", "err", ferr)
		}
	}
	if a.lease != nil {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		if err := a.store.ReleaseLeader(rctx, a.guard); err != nil {
			a.log.Warn("release leader key on shutdown", "err", err)
		}
		rcancel()
		a.lease = nil
	}
	a.fencer.Disarm()
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	_ = a.store.DeleteMember(dctx, a.cfg.Name)
	_ = a.store.Close(dctx)
	dcancel()
	if a.watchCancel != nil {
		a.watchCancel()
	}
	return nil
}

// armStaleWake runs the loop the moment the leader record turns stale on this agent's clock
// rather than at the next tick, which would add up to one loop interval to a failover. Waking a
// little early is harmless: Decide judges staleness itself and answers "not yet".
func (a *Agent) armStaleWake() {
	if a.lease != nil || a.cache.leader == nil {
		return
	}
	wait := a.cache.leaderRecord().StaleAt(a.timing()) + time.Millisecond - a.clock.Now()
	if wait <= 0 || wait > a.hacfg.LoopInterval() {
		return // already stale (the next cycle acts) or a tick comes first and re-arms
	}
	if a.staleWake != nil {
		a.staleWake.Stop()
	}
	a.staleWake = time.AfterFunc(wait, func() {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	})
}

// kickSoon runs the next cycle at once: a step of a multi-step change
// (acquire → stop WAL receiver → promote) made progress.
func (a *Agent) kickSoon() {
	if a.kicks >= 5 {
		return
	}
	a.kicks++
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func controlState(o pgctl.Observation) string {
	if o.Control == nil {
		return ""
	}
	return o.Control.State
}
