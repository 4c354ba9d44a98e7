package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

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
			a.cache.deleteLeader(a.clock.Now())
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
	lost := a.leaderLostAt()
	rec := a.leaderRecord(act.Term, obs)
	sentAt := a.clock.Now()
	g, err := a.store.AcquireLeader(a.etcdCtx(ctx), rec, act.ExpectedRevision)
	if err != nil {
		var lc *dcs.LeaderConflictError
		if errors.As(err, &lc) {
			a.dcsReachable = true
			if lc.Current == nil {
				a.cache.deleteLeader(a.clock.Now())
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
		a.leaderLost = lost // the failover's time is measured when PostgreSQL takes writes
	}
	a.log.Warn("acquired the leader lock", "term", act.Term, "revision", g.Revision, "previous_holder", prev)
	return nil
}

// leaderLostAt is this agent's first evidence that the leader is gone, on its clock: the
// instant the leader record turned stale, or the instant the agent saw the key deleted (0:
// no evidence, e.g. never saw a leader).
func (a *Agent) leaderLostAt() time.Duration {
	if a.cache.leader != nil {
		return a.cache.leaderRecord().StaleAt(a.timing())
	}
	return a.cache.leaderGoneAt
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
	a.cache.deleteLeader(a.clock.Now())
	a.log.Warn("released the leader lock")
	return nil
}

type pendingRenew struct {
	rec    dcs.LeaderRecord
	sentAt time.Duration
}

// isConflict: a CAS on the leader key lost.
func isConflict(err error) bool {
	return errors.Is(err, dcs.ErrLeaderChanged) || errors.Is(err, dcs.ErrNotLeader)
}
