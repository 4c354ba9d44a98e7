package agent

import (
	"context"
	"maps"
	"strconv"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// cycle is one observe → decide → act iteration.
func (a *Agent) cycle(ctx context.Context) {
	start := a.clock.Now()
	a.metrics.cycles.Add(1)
	a.metrics.lastCycleNs.Store(int64(start)) // /liveness: a cycle that never ends shows
	a.ssnJustSet = nil
	// While etcd looks unreachable, retry every loop: a single timed-out request (a dead
	// member) must not hold a promotion back by a second.
	if (a.needLoad || a.watchCh == nil) && (start-a.lastLoad >= a.hacfg.LoopInterval() || a.lastLoad == 0 || a.dcsReachable) {
		a.lastLoad = start
		if err := a.load(ctx); err != nil {
			if a.errLimiter.allow("etcd unreachable: " + err.Error()) {
				a.log.Warn("etcd unreachable", "err", err)
			}
		}
	}
	obs := a.observe(ctx)
	a.params.running.Store(obs.State == haagent.PGRunning && !obs.Stale)
	now := a.clock.Now()
	a.trackOutage(obs, now)
	if !a.configValid {
		if a.errLimiter.allow("no valid config") {
			a.log.Error("not acting: no valid DCS config key loaded yet, so this agent cannot know the cluster's leadership timing; fix the config key",
				"problem", a.configErr, "key", a.store.Key(dcs.KeyConfig))
		}
		a.publish(obs, a.cache.view(a.cfg.Cluster, a.hacfg))
		return
	}
	view := a.cache.view(a.cfg.Cluster, a.timing())
	a.fillReplication(&view, obs)
	local := a.buildLocal(obs, view)
	if a.lease == nil && view.LeaderStale(now) && obs.State == haagent.PGRunning {
		view.Probes = a.probeMembers(ctx, view)
	}
	if a.lease != nil && !a.dcsReachable && a.hacfg.FailsafeMode {
		a.askFailsafe(ctx, view)
		local.FailsafeAcks = maps.Clone(a.failsafeAcks)
		// Every member's confirmation is a proof like a renewal: extend
		// the fence timer now, before the lease deadline, or the timer
		// would fence a primary that failsafe mode keeps writable.
		if dl, ok := view.FailsafeProof(a.cfg.Name, a.failsafeAcks).Deadline(view.Config); ok && view.LeaseIsMine(a.cfg.Name, a.lease) {
			a.fencer.Extend(dl)
		}
	} else if a.dcsReachable && len(a.failsafeAcks) > 0 {
		clear(a.failsafeAcks)
	}
	now = a.clock.Now()
	action, reason := haagent.Decide(view, local, now)
	if a.logLimiter.allow(reason) {
		a.log.Info(reason, "action", action.String())
	}
	a.execute(ctx, action, reason, view, local, obs)
	if !view.Paused { // maintenance mode: change nothing
		a.bookkeeping(ctx, view, obs)
	}
	a.publish(obs, view)
	a.metrics.loopNs.Store(int64(a.clock.Now() - start))
	if a.stopping && !pgLocal(obs).MayAcceptWrites() {
		a.stopping = false // the planned stop is done: the snapshot below shows it
	}
	if a.dcsReachable {
		a.dcsLastSeen = time.Now()
	}
	snap := snapshot{view: view, local: local, obs: obs, action: action, reason: reason, at: now,
		members: maps.Clone(a.cache.members), leaderRec: a.cache.leader, sync: a.cache.sync,
		history: a.cache.history, stopping: a.stopping, dcsLastSeen: a.dcsLastSeen, params: a.params.current().forPostmaster(obs.PostmasterAt)}
	snap.local.Lease = a.lease
	a.setSnapshot(snap)
}

// observe probes the local PostgreSQL; a postmaster this agent did not
// start is stopped first.
func (a *Agent) observe(ctx context.Context) pgctl.Observation {
	octx, cancel := context.WithTimeout(ctx, max(a.hacfg.LoopInterval()/2, 50*time.Millisecond))
	obs, err := a.pg.Observe(octx)
	cancel()
	if err != nil {
		if a.errLimiter.allow("observe: " + err.Error()) {
			a.log.Warn("could not observe PostgreSQL", "err", err)
		}
	}
	if obs.ForeignPostmaster != 0 && a.cache.pause != nil {
		if a.errLimiter.allow("foreign postmaster while paused") {
			a.log.Info("paused: leaving alone a PostgreSQL this agent did not start (it will be restarted as the agent's child after resume)", "pid", obs.ForeignPostmaster)
		}
	} else if obs.ForeignPostmaster != 0 {
		// It would not die with the agent: an agent crash could leave an
		// unfenced primary behind. Stop it; the loop starts our own child.
		a.log.Warn("found a postmaster this agent did not start; stopping it (pg_ctl stop -m fast) so PostgreSQL runs as the agent's child and dies with it", "pid", obs.ForeignPostmaster)
		sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
		if err := a.pg.StopForeign(sctx); err != nil {
			a.log.Error("stop foreign postmaster", "err", err)
		}
		scancel()
		octx, cancel := context.WithTimeout(ctx, time.Second)
		obs, _ = a.pg.Observe(octx)
		cancel()
	}
	a.noteWasPrimary(obs)
	if obs.State == haagent.PGRunning && !obs.Stale && obs.Timeline > 0 {
		a.lastTimeline, a.lastOptime = obs.Timeline, pgLocal(obs).WALPosition()
	}
	now := a.clock.Now()
	if obs.State == haagent.PGRunning && obs.InRecovery && obs.PrimaryConninfo != "" && !obs.WALReceiverRunning {
		if a.receiverDownAt == 0 {
			a.receiverDownAt = now
		}
	} else {
		a.receiverDownAt = 0
	}
	return obs
}

// noteWasPrimary remembers that this data directory ran as a primary on
// a timeline: such a node must not stream from a leader until that leader
// is on a later timeline, and then may need pg_rewind.
func (a *Agent) noteWasPrimary(obs pgctl.Observation) {
	switch {
	case pgLocal(obs).AcceptingWrites() && !obs.Stale && obs.Timeline > 0:
		a.wasPrimaryOnTL, a.cleanStopLSN = obs.Timeline, 0
	case obs.Control != nil && obs.Control.WasPrimary() && !obs.BackupLabel && obs.Timeline > 0:
		if obs.Timeline > a.wasPrimaryOnTL {
			a.cleanStopLSN = 0
		}
		a.wasPrimaryOnTL = max(a.wasPrimaryOnTL, obs.Timeline)
		if obs.Control.State == "shut down" && obs.Control.Timeline == a.wasPrimaryOnTL {
			a.cleanStopLSN = obs.Control.CheckpointLSN
		} else {
			a.cleanStopLSN = 0
		}
	case obs.State == haagent.PGRunning && obs.InRecovery && a.wasPrimaryOnTL != 0 && obs.Timeline > a.wasPrimaryOnTL && obs.WALReceiverRunning:
		a.wasPrimaryOnTL, a.cleanStopLSN = 0, 0 // streaming on a later timeline: rejoined
	}
}

// trackOutage keeps CrashedAt/CrashRestarts for the holder's in-place
// restart rule.
func (a *Agent) trackOutage(obs pgctl.Observation, now time.Duration) {
	if (obs.State == haagent.PGCrashed || obs.State == haagent.PGStopped) && a.lastStart != 0 && a.runningSince == 0 &&
		now-a.lastStart < 2*time.Second && a.lastCrashCounted != a.lastStart {
		a.quickExits++ // exited (again) right after a start
		a.lastCrashCounted = a.lastStart
	}
	if obs.State == haagent.PGRunning && !obs.Stale {
		a.downAtStart = false
		if a.runningSince == 0 {
			a.runningSince = now
		}
		if now-a.runningSince > 10*time.Second {
			a.quickExits = 0
		}
		if a.inOutage && now-a.runningSince > 10*time.Second {
			a.inOutage, a.crashRestarts, a.crashedAt = false, 0, 0
		}
		return
	}
	a.runningSince = 0
	if !a.inOutage && obs.State != haagent.PGRunning {
		a.inOutage, a.crashedAt = true, now
	}
}

// fillReplication adds what this node's own pg_stat_replication says
// about the others (only a primary or cascading standby has rows).
func (a *Agent) fillReplication(v *haagent.ClusterView, obs pgctl.Observation) {
	for _, r := range obs.Replication {
		m, ok := v.Members[r.ApplicationName]
		if !ok {
			continue
		}
		m.SyncState, m.ReplicationState = haagent.SyncState(r.SyncState), r.State
		v.Members[r.ApplicationName] = m
	}
}

// pgLocal is the part of LocalState an observation of PostgreSQL fills
// in. The rules on it (AcceptingWrites, MayAcceptWrites, WALPosition) are
// LocalState's, so the executor and the REST API judge an observation
// exactly as Decide does.
func pgLocal(obs pgctl.Observation) haagent.LocalState {
	return haagent.LocalState{
		Postgres:    obs.State,
		InRecovery:  obs.InRecovery,
		Timeline:    obs.Timeline,
		ReceivedLSN: obs.ReceivedLSN,
		ReplayedLSN: obs.ReplayedLSN,
		FlushLSN:    obs.FlushLSN,
	}
}

func (a *Agent) buildLocal(obs pgctl.Observation, view haagent.ClusterView) haagent.LocalState {
	l := pgLocal(obs)
	l.Name = a.cfg.Name
	l.Tags = haagent.Tags{NoFailover: a.cfg.Tags.NoFailover, NoSync: a.cfg.Tags.NoSync}
	l.DCSReachable = a.dcsReachable
	l.DataDirEmpty = obs.DataDirEmpty || obs.NotADataDir
	l.Sysid = obs.Sysid
	l.Upstream = a.upstreamName(obs)
	l.WALReceiverStopped = obs.State == haagent.PGRunning && obs.InRecovery && obs.PrimaryConninfo == "" && !obs.WALReceiverRunning
	l.Diverged = a.diverged(obs, view)
	l.RewindFailed, l.RewindError = a.rewindFailed, a.rewindError
	l.Busy = a.busy
	l.CrashRestarts, l.CrashedAt = a.crashRestarts, a.crashedAt
	l.PostgresDownAtAgentStart = a.downAtStart
	l.WallClock = time.Now()
	if a.lease != nil {
		lease := *a.lease
		l.Lease = &lease
	}
	if len(a.failsafeAcks) > 0 {
		l.FailsafeAcks = maps.Clone(a.failsafeAcks)
	}
	a.mu.Lock()
	if a.promise != nil {
		p := *a.promise
		l.FailsafePromise = &p
	}
	a.mu.Unlock()
	return l
}

// upstreamName maps primary_conninfo's host:port to a member name.
func (a *Agent) upstreamName(obs pgctl.Observation) string {
	if obs.PrimaryConninfo == "" || obs.PrimaryHost == "" {
		return ""
	}
	for name, m := range a.cache.members {
		if m.rec.Host == obs.PrimaryHost && m.rec.Port == obs.PrimaryPort {
			return name
		}
	}
	return obs.PrimaryHost + ":" + strconv.Itoa(obs.PrimaryPort)
}

// diverged: my WAL may go past the point where the leader's timeline
// forked off mine, so following needs pg_rewind (which itself says "no
// rewind required" when it was not). Judged only once the leader is on a
// later timeline than mine.
func (a *Agent) diverged(obs pgctl.Observation, view haagent.ClusterView) bool {
	lr := view.Leader
	if lr == nil || lr.Holder == a.cfg.Name || obs.Timeline == 0 || obs.Timeline >= lr.Timeline {
		return false
	}
	fork, known := a.cache.forkPoint(obs.Timeline)
	if a.wasPrimaryOnTL != 0 && a.wasPrimaryOnTL <= obs.Timeline {
		// A former primary: it may have WAL nobody else has. Only a clean
		// shutdown (seen now, or remembered from before a restart as a
		// standby) whose checkpoint lies before the fork proves otherwise.
		return !(known && a.cleanStopLSN != 0 && a.cleanStopLSN < fork)
	}
	pos := max(obs.ReceivedLSN, obs.ReplayedLSN)
	if known && pos > fork {
		return true
	}
	// A standby that keeps failing to stream from a leader on a later
	// timeline is stuck on WAL the leader does not have.
	return obs.State == haagent.PGRunning && a.receiverDownAt != 0 && a.clock.Now()-a.receiverDownAt > 5*time.Second
}

// bookkeeping is what the executor keeps true besides Decide's actions:
// synchronous_standby_names matching the sync state, replication slots,
// the history key.
func (a *Agent) bookkeeping(ctx context.Context, view haagent.ClusterView, obs pgctl.Observation) {
	holdsNow := a.lease != nil && a.fencer.Writable()
	primary := pgLocal(obs).AcceptingWrites() && !obs.Stale
	if holdsNow && primary && a.busy == haagent.BusyNone {
		a.ensureSyncSetting(ctx, obs)
		a.ensureHistory(ctx, obs)
	}
	if obs.State == haagent.PGRunning && !obs.Stale && a.clock.Now()-a.lastSlotCheck >= time.Second {
		a.lastSlotCheck = a.clock.Now()
		if holdsNow {
			a.ensureSlots(ctx, view, obs)
		} else if obs.InRecovery {
			a.dropMemberSlots(ctx, obs)
		}
	}
}
