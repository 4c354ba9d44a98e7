package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// HAHistory is what `pigwf ha history` shows (like `patronictl history`): the switches of the
// DCS history key, which the leader's agent writes from its timeline's history file, each with
// the members on both sides of it, and where the cluster is now.
type HAHistory struct {
	Cluster string `json:"cluster"`
	// Timeline and Leader are the leader key's now ("" when no member holds it; timeline 0
	// while the holder's PostgreSQL has not reported one yet).
	Timeline uint32 `json:"timeline"`
	Leader   string `json:"leader"`
	// Recorded: the history key exists. A leader's agent writes it (an empty list on timeline 1)
	// soon after it takes the lead, so it is absent only before that.
	Recorded bool `json:"recorded"`
	// Stale: the key was written by another member than the leader, so from an older timeline's
	// history file: the leader's agent rewrites it within a loop or two.
	Stale    bool       `json:"stale,omitempty"`
	Switches []HASwitch `json:"switches"`
}

// HASwitch is one line of a PostgreSQL timeline history file as the history key stores it
// (Timeline ended at LSN, for Reason; Leader, when set, wrote the key) and who led on each
// side of it.
type HASwitch struct {
	dcs.HistoryEntry
	// Next is the timeline the switch started: the next switch's Timeline, or for the last one
	// the current timeline (a restore branches from an older timeline, so it is not always
	// Timeline+1). 0 when unknown: no leader, or a stale key.
	Next uint32 `json:"next_timeline,omitempty"`
	// OldLeader led Timeline up to the switch, NewLeader led Next from it; "" when the DCS does
	// not say (timelineLeaders).
	OldLeader string `json:"old_leader,omitempty"`
	NewLeader string `json:"new_leader,omitempty"`
}

// History reads the cluster's timeline history and its leader in one read of the DCS.
func (h *HAClient) History(ctx context.Context) (HAHistory, error) {
	snap, err := h.store.Load(ctx)
	if err != nil {
		return HAHistory{}, fmt.Errorf("while reading the cluster's history from etcd: %w", err)
	}
	return historyOf(h.cluster, snap)
}

// historyOf is the history in snap (decoded by dcs.Store.Load, the one reader of the key),
// with each switch's next timeline and leaders.
func historyOf(cluster string, snap *dcs.Snapshot) (HAHistory, error) {
	for _, p := range snap.Problems {
		var ke *dcs.KeyError
		if errors.As(p, &ke) && ke.Kind == dcs.KindHistory {
			return HAHistory{}, fmt.Errorf("cluster %s: %w (the leader's agent rewrites the key when its timeline changes; `etcdctl get %s` shows what is there)", cluster, p, ke.Key)
		}
	}
	out := HAHistory{Cluster: cluster, Switches: []HASwitch{}}
	if snap.Leader != nil {
		out.Timeline, out.Leader = snap.Leader.Value.Timeline, snap.Leader.Value.Holder
	}
	if snap.History == nil {
		return out, nil
	}
	out.Recorded = true
	entries := snap.History.Value
	// The key's writer led the timeline of the history file it wrote; a writer other than the
	// leader means the leader has promoted since (only a promotion changes the leader), so the
	// current timeline is not the last switch's next.
	fileTL := out.Timeline
	if n := len(entries); n > 0 && entries[n-1].Leader != "" && out.Leader != "" && entries[n-1].Leader != out.Leader {
		out.Stale, fileTL = true, 0
	}
	for i, e := range entries {
		s := HASwitch{HistoryEntry: e, Next: fileTL}
		if i+1 < len(entries) {
			s.Next = entries[i+1].Timeline
		}
		out.Switches = append(out.Switches, s)
	}
	bootstrapper := ""
	if snap.Initialize != nil {
		bootstrapper = snap.Initialize.Value.ClaimedBy
	}
	led := timelineLeaders(out.Switches, bootstrapper, out.Timeline, out.Leader)
	for i := range out.Switches {
		s := &out.Switches[i]
		s.OldLeader, s.NewLeader = led[s.Timeline], s.Leader
		if s.NewLeader == "" {
			s.NewLeader = led[s.Next]
		}
	}
	return out, nil
}

// timelineLeaders is who led each timeline, as far as the DCS says:
//   - a switch's Leader wrote the key from the history file of the switch's next timeline, so it
//     led that one (the agent names itself on the last switch it writes; earlier switches keep
//     a name only where the key was merged);
//   - the leader key's holder leads the current timeline;
//   - the member that bootstrapped the cluster (the initialize key) led timeline 1: only a
//     promotion changes the leader, and a promotion starts a new timeline.
func timelineLeaders(switches []HASwitch, bootstrapper string, current uint32, leader string) map[uint32]string {
	led := map[uint32]string{}
	set := func(tl uint32, name string) {
		if tl != 0 && name != "" && led[tl] == "" {
			led[tl] = name
		}
	}
	for _, s := range switches {
		set(s.Next, s.Leader)
	}
	set(current, leader)
	set(1, bootstrapper)
	return led
}

// PrintHAHistory renders the history in the shape of `patronictl history` (TL, LSN, Reason,
// Timestamp, New Leader) with the leader each switch ended (Old Leader), then the current
// timeline and leader. A cluster that never changed timeline gets one line instead of a table.
func PrintHAHistory(w io.Writer, h HAHistory) {
	if len(h.Switches) == 0 {
		fmt.Fprintln(w, noSwitches(h))
		return
	}
	header := []string{"TL", "LSN", "Reason", "Timestamp", "Old Leader", "New Leader"}
	rows := make([][]string, 0, len(h.Switches))
	for _, s := range h.Switches {
		at := ""
		if !s.At.IsZero() {
			at = utcSeconds(s.At)
		}
		rows = append(rows, []string{fmt.Sprint(s.Timeline), haagent.LSN(s.LSN).String(), s.Reason, at, s.OldLeader, s.NewLeader})
	}
	printBoxTable(w, fmt.Sprintf(" Cluster: %s ", h.Cluster), header, rows, map[int]bool{0: true, 1: true})
	fmt.Fprintln(w, " "+current(h))
	if h.Stale {
		last := h.Switches[len(h.Switches)-1]
		fmt.Fprintf(w, " Note: %s wrote this history, not the leader %s: the leader's agent rewrites it within seconds\n", last.Leader, h.Leader)
	}
}

// noSwitches is the one line for a history without switches: never failed over, not yet
// written by a leader on a later timeline, or never led.
func noSwitches(h HAHistory) string {
	switch {
	case h.Timeline > 1:
		return fmt.Sprintf("Cluster %s: no timeline switch in the DCS yet, though its leader %s is on timeline %d: its agent writes the history key from pg_wal/%08X.history (try again in a few seconds)",
			h.Cluster, h.Leader, h.Timeline, h.Timeline)
	case !h.Recorded && h.Leader == "":
		return fmt.Sprintf("Cluster %s: no timeline history and no leader in the DCS: the cluster was never led (`pigwf ha list` shows its members)", h.Cluster)
	}
	return fmt.Sprintf("Cluster %s: never failed over or switched over (%s)", h.Cluster, current(h))
}

// current is where the cluster is now, from the leader key.
func current(h HAHistory) string {
	switch {
	case h.Leader == "":
		return "current: no leader (the leader key is absent)"
	case h.Timeline == 0:
		return fmt.Sprintf("current: leader %s, timeline not reported yet", h.Leader)
	}
	return fmt.Sprintf("current: timeline %d, leader %s", h.Timeline, h.Leader)
}

// utcSeconds is how `pigwf ha` commands print a moment: UTC to the second.
func utcSeconds(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") }
