package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// errNotYet: an action's precondition is not met yet; retried next cycle
// and not counted as a failure.
var errNotYet = errors.New("not yet")

// execute performs one decision.
func (a *Agent) execute(ctx context.Context, act haagent.Action, reason string, view haagent.ClusterView, local haagent.LocalState, obs pgctl.Observation) {
	if act.KeepLock || act.Kind == haagent.ActionRenewLeader {
		err := a.renew(ctx, obs)
		if err != nil && act.Kind != haagent.ActionRenewLeader {
			a.log.Warn("not acting: could not renew the leader lock first", "action", act.Kind.String(), "err", err)
			if errors.Is(err, context.DeadlineExceeded) {
				a.kickSoon() // retry on the next etcd member now (see below)
			}
			return
		}
	}
	var err error
	switch act.Kind {
	case haagent.ActionNone, haagent.ActionRenewLeader:
	case haagent.ActionClaimInitialize:
		_, err = a.store.ClaimInitialize(a.etcdCtx(ctx), a.cfg.Name)
		if err = a.etcdResult(err); err == nil {
			a.cache.initialize = &dcs.InitializeRecord{ClaimedBy: a.cfg.Name}
		}
	case haagent.ActionBootstrap:
		a.runAsync(haagent.BusyBootstrap, showBootstrapping, "bootstrapping: initdb", func(ctx context.Context) error {
			return a.pg.Bootstrap(ctx)
		}, nil)
	case haagent.ActionCloneFromLeader:
		// A directory with files but no PG_VERSION (an interrupted copy)
		// is moved aside, never deleted.
		err = a.clone(act.Leader, obs.NotADataDir, showCloning, "cloning from leader "+act.Leader)
	case haagent.ActionReclone:
		err = a.clone(act.Leader, true, showRecloning, "re-cloning from leader "+act.Leader+": "+reason)
	case haagent.ActionWriteInitialize:
		rec := dcs.InitializeRecord{ClaimedBy: a.cfg.Name, Sysid: act.Sysid}
		if in := a.cache.initialize; in != nil && in.ClaimedBy != "" {
			rec.ClaimedBy = in.ClaimedBy
		}
		_, err = a.store.WriteInitialize(a.etcdCtx(ctx), a.guard, rec)
		if err = a.etcdResult(err); err == nil {
			a.cache.initialize = &rec
		}
	case haagent.ActionRefuseToJoin:
		a.note = reason // the member record says why this member stays out
	case haagent.ActionAcquireLeader:
		err = a.acquire(ctx, act, obs)
	case haagent.ActionStopWALReceiver:
		err = a.stopWALReceiver(ctx, view, obs)
	case haagent.ActionPromote:
		a.promote()
	case haagent.ActionFenceWrites:
		rep, ferr := a.fencer.FenceNow()
		a.noteFence(rep)
		if ferr != nil {
			err = fmt.Errorf("FENCE FAILED: %w", ferr)
		} else {
			a.log.Warn("fenced", "reason", reason, "killed_processes", rep.Killed, "fence_latency", rep.ChildrenSignalled.String(), "all_dead_after", rep.Elapsed.String())
		}
	case haagent.ActionDemote:
		err = a.demote(act)
	case haagent.ActionReleaseLeader:
		err = a.release(ctx)
	case haagent.ActionRestartPostgres:
		err = a.restart(ctx, act, obs)
	case haagent.ActionFollow:
		err = a.follow(ctx, act.Leader, obs)
	case haagent.ActionRewind:
		err = a.rewind(act.Leader, view)
	case haagent.ActionSetSyncStandbys:
		err = a.setSyncStandbys(ctx, act.Members, obs)
	case haagent.ActionSetFailsafeMembers:
		rec := dcs.FailsafeRecord{Members: act.Members}
		_, err = a.store.PutFailsafe(a.etcdCtx(ctx), a.guard, rec)
		if err = a.etcdResult(err); err == nil {
			a.cache.failsafe = &rec
		}
	case haagent.ActionClearFailoverRequest:
		_, err = a.store.ClearFailover(a.etcdCtx(ctx), a.guard, act.FailoverRev)
		err = a.etcdResult(err)
		if err == nil {
			a.cache.failover = nil
		}
		if errors.Is(err, dcs.ErrChanged) {
			// The request changed or vanished since this view: reload.
			cur := "absent"
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			if snap, lerr := a.store.Load(lctx); lerr == nil && snap.Failover != nil {
				cur = fmt.Sprintf("%+v at revision %d", snap.Failover.Value, snap.Failover.ModRevision)
			}
			cancel()
			err = fmt.Errorf("clear failover request at revision %d: it is now %s: %w", act.FailoverRev, cur, err)
			a.needLoad = true
		}
	}
	if err == nil {
		switch act.Kind {
		case haagent.ActionAcquireLeader, haagent.ActionStopWALReceiver, haagent.ActionReleaseLeader, haagent.ActionFenceWrites,
			haagent.ActionDemote, haagent.ActionClearFailoverRequest, haagent.ActionWriteInitialize, haagent.ActionSetSyncStandbys,
			haagent.ActionClaimInitialize:
			a.kickSoon()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// One etcd member did not answer in time (a dead node's member stays in the client's
		// round-robin until keepalive notices): try again now, on the next member, not at the
		// next tick.
		a.kickSoon()
	}
	if err != nil && !errors.Is(err, errNotYet) {
		if a.errLimiter.allow("action failed: " + act.Kind.String() + err.Error()) {
			a.log.Error("action failed", "action", act.String(), "err", err)
		}
	} else if errors.Is(err, errNotYet) {
		if a.errLimiter.allow(err.Error()) {
			a.log.Info("waiting", "action", act.String(), "why", err.Error())
		}
	}
}

// etcdCtx bounds one etcd request by the loop interval (a slow etcd must
// not stall the loop; the fence timer is independent anyway).
func (a *Agent) etcdCtx(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(ctx, max(a.hacfg.LoopInterval(), 50*time.Millisecond))
	time.AfterFunc(max(a.hacfg.LoopInterval(), 50*time.Millisecond), cancel)
	return c
}

// etcdResult records reachability from an etcd error.
func (a *Agent) etcdResult(err error) error {
	switch {
	case err == nil:
		a.dcsReachable = true
	case isConflict(err) || errors.Is(err, dcs.ErrChanged) || errors.Is(err, dcs.ErrExists):
		a.dcsReachable = true
	default:
		a.dcsReachable = false
	}
	return err
}

func (a *Agent) setLease(rev int64, sentAt time.Duration) {
	a.lease = &haagent.Lease{Revision: rev, SentAt: sentAt}
	a.fencer.Extend(a.timing().HolderDeadline(sentAt))
}

// leaderRecord is what acquire/renew write. While PostgreSQL starts the
// probe knows no timeline or position: the last known ones are written
// (the record must never show a timeline lower than the holder's).
func (a *Agent) leaderRecord(term int64, obs pgctl.Observation) dcs.LeaderRecord {
	a.leaderSeq++
	wal := pgLocal(obs).WALPosition()
	tl, pos := max(obs.Timeline, a.lastTimeline), max(wal, a.lastOptime)
	if obs.Timeline > 0 && obs.State == haagent.PGRunning && !obs.Stale {
		tl, pos = obs.Timeline, wal
	}
	return dcs.LeaderRecord{Holder: a.cfg.Name, Term: term, Timeline: tl, Optime: uint64(pos),
		Seq: a.leaderSeq, RenewedAt: time.Now().UTC()}
}

// renew CAS-renews the leader key, stamping the send time first.
func (a *Agent) renew(ctx context.Context, obs pgctl.Observation) error {
	if a.lease == nil || a.cache.leader == nil {
		return errors.New("renew: this agent holds no lease")
	}
	term := a.cache.leader.rec.Term
	rec := a.leaderRecord(term, obs)
	sentAt := a.clock.Now()
	timeout := a.hacfg.LoopInterval()
	if dl := a.timing().HolderDeadline(a.lease.SentAt) - sentAt; dl < timeout {
		timeout = max(dl, 5*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	g, err := a.store.RenewLeader(rctx, rec, a.guard)
	cancel()
	if err == nil {
		a.guard, a.pendingRenews, a.dcsReachable = g, nil, true
		a.setLease(g.Revision, sentAt)
		raw, _ := json.Marshal(rec)
		a.cache.setLeader(rec, raw, g.Revision, a.clock.Now())
		return nil
	}
	a.metrics.renewFailures.Add(1)
	var lc *dcs.LeaderConflictError
	if errors.As(err, &lc) {
		a.dcsReachable = true
		if p, ok := a.pendingFor(lc.Current); ok {
			// An earlier renewal of ours whose response was lost was applied.
			gctx, gcancel := context.WithTimeout(ctx, timeout)
			rg, rerr := a.store.RecoverGuard(gctx, p.rec)
			gcancel()
			if rerr == nil {
				a.guard, a.pendingRenews = rg, nil
				a.setLease(rg.Revision, p.sentAt)
				a.log.Info("recovered the guard of a renewal whose response was lost", "seq", p.rec.Seq)
				return nil
			}
		}
		now := a.clock.Now()
		if lc.Current == nil {
			a.cache.deleteLeader()
		} else {
			raw, _ := json.Marshal(lc.Current.Value)
			a.cache.setLeader(lc.Current.Value, raw, lc.Current.ModRevision, now)
		}
		return fmt.Errorf("renew: lost the leader key: %w", err)
	}
	a.dcsReachable = false
	a.pendingRenews = append(a.pendingRenews, pendingRenew{rec: rec, sentAt: sentAt})
	if len(a.pendingRenews) > 16 {
		a.pendingRenews = a.pendingRenews[1:]
	}
	return fmt.Errorf("renew: %w", err)
}

// pendingFor finds the unanswered renewal of ours that the leader key
// now holds, if any.
func (a *Agent) pendingFor(cur *dcs.Versioned[dcs.LeaderRecord]) (pendingRenew, bool) {
	if cur == nil || cur.Value.Holder != a.cfg.Name {
		return pendingRenew{}, false
	}
	for _, p := range a.pendingRenews {
		if p.rec.Seq == cur.Value.Seq {
			return p, true
		}
	}
	return pendingRenew{}, false
}

// acquire takes the leader key by CAS. It is serialized with failsafe
// confirmations: never while I promised another leader not to.
func (a *Agent) acquire(ctx context.Context, act haagent.Action, obs pgctl.Observation) error {
	a.acquireMu.Lock()
	defer a.acquireMu.Unlock()
	a.mu.Lock()
	p := a.promise
	a.mu.Unlock()
	if p.ForbidsAcquire(a.cfg.Name, a.clock.Now()) {
		return fmt.Errorf("acquire: refused, I promised %s in failsafe mode not to", p.Leader)
	}
	prev := ""
	if a.cache.lastLeader != nil {
		prev = a.cache.lastLeader.Holder
	}
	rec := a.leaderRecord(act.Term, obs)
	sentAt := a.clock.Now()
	g, err := a.store.AcquireLeader(a.etcdCtx(ctx), rec, act.ExpectedRevision)
	if err != nil {
		var lc *dcs.LeaderConflictError
		if errors.As(err, &lc) {
			a.dcsReachable = true
			if lc.Current == nil {
				a.cache.deleteLeader()
			} else {
				raw, _ := json.Marshal(lc.Current.Value)
				a.cache.setLeader(lc.Current.Value, raw, lc.Current.ModRevision, a.clock.Now())
			}
			return fmt.Errorf("acquire: another member was faster: %w", err)
		}
		a.dcsReachable = false
		return fmt.Errorf("acquire: %w", err)
	}
	a.guard, a.pendingRenews, a.dcsReachable = g, nil, true
	a.setLease(g.Revision, sentAt)
	raw, _ := json.Marshal(rec)
	a.cache.setLeader(rec, raw, g.Revision, a.clock.Now())
	a.syncPending, a.syncTargetSet = nil, false
	if prev != "" && prev != a.cfg.Name {
		a.metrics.failovers.Add(1)
	}
	a.log.Warn("acquired the leader lock", "term", act.Term, "revision", g.Revision, "previous_holder", prev)
	return nil
}

// release deletes the leader key (PostgreSQL cannot take writes).
func (a *Agent) release(ctx context.Context) error {
	if a.lease == nil {
		return errors.New("release: this agent holds no lease")
	}
	err := a.store.ReleaseLeader(a.etcdCtx(ctx), a.guard)
	if err != nil {
		return a.etcdResult(fmt.Errorf("release: %w", err))
	}
	a.dcsReachable = true
	a.lease = nil
	a.fencer.Disarm()
	a.cache.deleteLeader()
	a.log.Warn("released the leader lock")
	return nil
}

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

// applySSN sets synchronous_standby_names unless it (or what this cycle
// already set) is value.
func (a *Agent) applySSN(ctx context.Context, obs pgctl.Observation, value string) error {
	if obs.SyncStandbyNames == value || (a.ssnJustSet != nil && *a.ssnJustSet == value) {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.pg.SetSyncStandbyNames(sctx, value); err != nil {
		return err
	}
	a.ssnJustSet = &value
	a.log.Info("set synchronous_standby_names", "value", value, "was", obs.SyncStandbyNames)
	return nil
}

// promote runs promotion phase two asynchronously; the holder keeps
// renewing meanwhile (Busy).
func (a *Agent) promote() {
	started := time.Now()
	a.runAsync(haagent.BusyPromoting, showPostgresState, "", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return a.pg.Promote(pctx)
	}, func(err error) {
		if err != nil {
			a.log.Error("promotion failed", "err", err)
			return
		}
		a.log.Warn("promoted: PostgreSQL accepts writes", "promote_duration", time.Since(started).Round(time.Millisecond).String())
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
	}, nil)
	return nil
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

// recordState is what the member record shows as its state while a long
// action runs, in place of PostgreSQL's.
type recordState string

const (
	showPostgresState recordState = "" // PostgreSQL's own state
	showBootstrapping recordState = "bootstrapping"
	showCloning       recordState = "cloning"
	showRecloning     recordState = "recloning"
	showRewinding     recordState = "rewinding"
)

// runAsync runs a long action off the loop; the loop keeps renewing.
// Meanwhile the member record shows state and note.
func (a *Agent) runAsync(busy haagent.Busy, state recordState, note string, fn func(ctx context.Context) error, after func(error)) {
	a.busy, a.busyState, a.busyNote = busy, state, note
	go func() {
		err := fn(context.Background())
		a.asyncDone <- asyncResult{busy: busy, err: err, after: after}
	}()
}

func (a *Agent) finishAsync(r asyncResult) {
	a.busy, a.busyState, a.busyNote = haagent.BusyNone, showPostgresState, ""
	if r.err != nil && r.after == nil {
		a.log.Error("long action failed", "action", string(r.busy), "err", r.err)
	}
	if r.after != nil {
		r.after(r.err)
	}
}

// --- synchronous standbys ----------------------------------------------------

// strictPlaceholder is the standby name synchronous_standby_names waits
// for when strict synchronous mode has no standby: no member can have it,
// so commits wait (rather than '*', which any connecting standby would
// satisfy without being in the sync key).
const strictPlaceholder = "pigwf_no_sync_standby"

func ssnValue(names []string, syncMode, strict bool) string {
	if len(names) > 0 {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
		}
		return fmt.Sprintf("FIRST %d (%s)", len(names), strings.Join(q, ", "))
	}
	if syncMode && strict {
		return fmt.Sprintf(`FIRST 1 ("%s")`, strictPlaceholder)
	}
	return ""
}

type syncPending struct {
	names  []string
	target haagent.LSN
}

// setSyncStandbys keeps the invariant "every standby in the sync key
// holds every commit acknowledged so far": remove from the key first,
// then change synchronous_standby_names, and add to the key only once
// PostgreSQL reports the new standbys sync AND they flushed everything up
// to the primary's flush position seen at that moment.
func (a *Agent) setSyncStandbys(ctx context.Context, want []string, obs pgctl.Observation) error {
	want = slices.Sorted(slices.Values(want))
	cur := a.cache.sync
	mine := cur != nil && cur.Leader == a.cfg.Name
	var kept []string
	if mine {
		for _, n := range cur.Standbys {
			if slices.Contains(want, n) {
				kept = append(kept, n)
			}
		}
	}
	if !mine || !slices.Equal(slices.Sorted(slices.Values(cur.Standbys)), kept) {
		if err := a.putSync(ctx, kept); err != nil {
			return err
		}
	}
	a.syncTarget, a.syncTargetSet = want, true
	if err := a.applySSN(ctx, obs, ssnValue(want, a.hacfg.SynchronousMode, a.hacfg.SynchronousModeStrict)); err != nil {
		return err
	}
	var added []string
	for _, n := range want {
		if !slices.Contains(kept, n) {
			added = append(added, n)
		}
	}
	if len(added) == 0 {
		a.syncPending = nil
		return nil
	}
	rows := map[string]pgctl.ReplicationRow{}
	for _, r := range obs.Replication {
		rows[r.ApplicationName] = r
	}
	for _, n := range added {
		r, ok := rows[n]
		if !ok || r.State != haagent.ReplicationStreaming || !haagent.SyncState(r.SyncState).Synchronous() {
			return fmt.Errorf("%w: PostgreSQL does not report %s as a synchronous standby yet", errNotYet, n)
		}
	}
	if a.syncPending == nil || !slices.Equal(a.syncPending.names, want) {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		target, err := a.pg.CurrentFlushLSN(lctx)
		cancel()
		if err != nil {
			return err
		}
		a.syncPending = &syncPending{names: want, target: target}
		return fmt.Errorf("%w: waiting for %s to flush up to %s", errNotYet, strings.Join(added, ", "), target)
	}
	for _, n := range added {
		if rows[n].FlushLSN < a.syncPending.target {
			return fmt.Errorf("%w: %s flushed %s < %s", errNotYet, n, rows[n].FlushLSN, a.syncPending.target)
		}
	}
	if err := a.putSync(ctx, want); err != nil {
		return err
	}
	a.syncPending = nil
	a.log.Info("sync key updated: PostgreSQL reports the standbys synchronous and caught up", "standbys", strings.Join(want, ","))
	return nil
}

func (a *Agent) putSync(ctx context.Context, standbys []string) error {
	if standbys == nil {
		standbys = []string{}
	}
	rec := dcs.SyncRecord{Leader: a.cfg.Name, Standbys: standbys}
	if _, err := a.store.PutSync(a.etcdCtx(ctx), a.guard, rec); err != nil {
		return a.etcdResult(fmt.Errorf("write sync key: %w", err))
	}
	a.cache.sync = &rec
	return nil
}

// --- bookkeeping ------------------------------------------------------------------

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

// ensureSyncSetting: synchronous_standby_names must always cover the
// sync key (a value copied by pg_basebackup or changed by hand would
// otherwise block writes or break the invariant).
func (a *Agent) ensureSyncSetting(ctx context.Context, obs pgctl.Observation) {
	var want string
	switch {
	case a.syncTargetSet:
		want = ssnValue(a.syncTarget, a.hacfg.SynchronousMode, a.hacfg.SynchronousModeStrict)
	case a.cache.sync != nil && a.cache.sync.Leader == a.cfg.Name:
		want = ssnValue(a.cache.sync.Standbys, a.hacfg.SynchronousMode, a.hacfg.SynchronousModeStrict)
	case !a.hacfg.SynchronousMode:
		want = ""
	default:
		return // Decide will set the sync standbys
	}
	if err := a.applySSN(ctx, obs, want); err != nil {
		a.log.Warn("correct synchronous_standby_names", "err", err)
	}
}

// ensureHistory: the holder writes its timeline history to the history
// key (its presence also means "this cluster was led before").
func (a *Agent) ensureHistory(ctx context.Context, obs pgctl.Observation) {
	if obs.Timeline == 0 {
		return
	}
	if a.cache.hasHistory && uint32(len(a.cache.history)) >= obs.Timeline-1 {
		if obs.Timeline == 1 || a.cache.history[len(a.cache.history)-1].Timeline == obs.Timeline-1 {
			return
		}
	}
	text, err := a.pg.HistoryFile(obs.Timeline)
	if err != nil {
		a.log.Warn("read timeline history", "err", err)
		return
	}
	entries := parseHistory(text, a.cfg.Name)
	if _, err := a.store.PutHistory(a.etcdCtx(ctx), a.guard, entries); err != nil {
		a.log.Warn("write history key", "err", a.etcdResult(err))
		return
	}
	a.cache.history, a.cache.hasHistory = entries, true
}

// parseHistory parses a PostgreSQL timeline history file: lines of
// "<parent timeline> <switch LSN> <reason>".
func parseHistory(text, leader string) []dcs.HistoryEntry {
	entries := []dcs.HistoryEntry{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		tl, err1 := strconv.ParseUint(f[0], 10, 32)
		lsn, err2 := haagent.ParseLSN(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		entries = append(entries, dcs.HistoryEntry{Timeline: uint32(tl), LSN: uint64(lsn), Reason: strings.Join(f[2:], " ")})
	}
	if len(entries) > 0 {
		entries[len(entries)-1].Leader = leader
		entries[len(entries)-1].At = time.Now().UTC()
	}
	return entries
}

// slotRetention: a slot of a member gone from the DCS is kept this long
// (the member may come back), then dropped so WAL does not pile up.
const slotRetention = 30 * time.Minute

// ensureSlots: on the holder, a physical slot for every other member.
func (a *Agent) ensureSlots(ctx context.Context, view haagent.ClusterView, obs pgctl.Observation) {
	have := map[string]pgctl.Slot{}
	for _, s := range obs.Slots {
		have[s.Name] = s
	}
	wanted := map[string]bool{}
	var missing []string
	for _, n := range view.OtherMemberNames(a.cfg.Name) {
		sn := pgctl.SlotName(n)
		wanted[sn] = true
		a.seenSlots[sn] = true
		delete(a.slotsGoneSince, sn)
		if _, ok := have[sn]; !ok {
			missing = append(missing, sn)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if len(missing) > 0 {
		if err := a.pg.EnsureSlots(sctx, missing); err != nil {
			a.log.Warn("create replication slots", "err", err)
		} else {
			a.log.Info("created replication slots", "slots", strings.Join(missing, ","))
		}
	}
	now := a.clock.Now()
	var drop []string
	for name, s := range have {
		if wanted[name] || !s.Physical || s.Active || name == pgctl.SlotName(a.cfg.Name) {
			continue
		}
		if !a.seenSlots[name] {
			continue // not the slot of a member this agent saw: not ours to drop
		}
		since, ok := a.slotsGoneSince[name]
		if !ok {
			a.slotsGoneSince[name] = now
			continue
		}
		if now-since > slotRetention {
			drop = append(drop, name)
		}
	}
	if len(drop) > 0 {
		if err := a.pg.DropSlots(sctx, drop); err != nil {
			a.log.Warn("drop replication slots of departed members", "err", err)
		} else {
			a.log.Info("dropped replication slots of members gone from the DCS", "slots", strings.Join(drop, ","), "after", slotRetention.String())
		}
	}
}

// dropMemberSlots: a standby that does not hold the lock keeps no member
// slots (an unused slot on a standby would pin WAL forever).
func (a *Agent) dropMemberSlots(ctx context.Context, obs pgctl.Observation) {
	names := map[string]bool{}
	for n := range a.cache.members {
		names[pgctl.SlotName(n)] = true
	}
	var drop []string
	for _, s := range obs.Slots {
		if s.Physical && !s.Active && names[s.Name] {
			drop = append(drop, s.Name)
		}
	}
	if len(drop) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.pg.DropSlots(sctx, drop); err != nil {
		a.log.Warn("drop member slots on a standby", "err", err)
	}
}
