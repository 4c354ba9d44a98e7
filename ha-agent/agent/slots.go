package agent

import (
	"context"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

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
