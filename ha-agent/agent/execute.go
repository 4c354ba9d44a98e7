package agent

import (
	"context"
	"errors"
	"fmt"
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
