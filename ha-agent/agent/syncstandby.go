package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

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
		// PostgreSQL now counts them synchronous: new WAL makes them report their flush now, so
		// commits that waited for a standby no longer named are released at once.
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		target, err := a.pg.NudgeStandbys(lctx)
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
