package agent

import (
	"context"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// ensureHistory: the holder writes its timeline history to the history
// key (its presence also means "this cluster was led before").
func (a *Agent) ensureHistory(ctx context.Context, obs pgctl.Observation) {
	if obs.Timeline == 0 || (a.historyFor == obs.Timeline && a.cache.hasHistory) {
		return
	}
	if a.cache.hasHistory && obs.Timeline == 1 {
		a.historyFor = 1
		return
	}
	text, err := a.pg.HistoryFile(obs.Timeline)
	if err != nil {
		a.log.Warn("read timeline history", "err", err)
		return
	}
	entries := keepLeaders(parseHistory(text, a.cfg.Name), a.cache.history)
	// The key is current when it lists the same switches as this
	// timeline's history file. Counting entries is not enough: after a
	// point-in-time restore the new timeline branches from an older one,
	// so its history is shorter than its id suggests, and the check must
	// still settle once the key is written (one read of the file per
	// timeline, not one write per loop).
	if a.cache.hasHistory && sameSwitches(a.cache.history, entries) {
		a.historyFor = obs.Timeline
		return
	}
	if _, err := a.store.PutHistory(a.etcdCtx(ctx), a.guard, entries); err != nil {
		a.log.Warn("write history key", "err", a.etcdResult(err))
		return
	}
	a.cache.history, a.cache.hasHistory = entries, true
	a.historyFor = obs.Timeline
}

// keepLeaders copies who led after each switch, and when, from the key's entries (known) to
// the same switches of a history read from the file, which records neither (GET /history
// shows them); the last entry is this holder's own.
func keepLeaders(entries, known []dcs.HistoryEntry) []dcs.HistoryEntry {
	for i := range entries[:max(len(entries)-1, 0)] {
		for _, k := range known {
			if k.Timeline == entries[i].Timeline && k.LSN == entries[i].LSN {
				entries[i].Leader, entries[i].At = k.Leader, k.At
			}
		}
	}
	return entries
}

// sameSwitches: both histories list the same timeline switches (who led
// and when are for people, not part of the comparison).
func sameSwitches(a, b []dcs.HistoryEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Timeline != b[i].Timeline || a[i].LSN != b[i].LSN {
			return false
		}
	}
	return true
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
