package agent

import (
	"testing"
	"time"

	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// After a point-in-time restore to timeline 1, the new timeline 4's history
// lists one switch, fewer than its id suggests; the key written from it must
// count as current (one write per timeline, not one per loop).
func TestHistoryCurrentAfterBranchFromOlderTimeline(t *testing.T) {
	tl4 := "1\t0/3000148\tno recovery target specified\n"
	tl3 := "1\t0/3000148\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n"
	key := parseHistory(tl4, "n1")
	for i, c := range []struct {
		stored []dcs.HistoryEntry
		file   string
		want   bool
	}{
		{key, tl4, true},                      // 1: written from this file
		{parseHistory(tl3, "n2"), tl4, false}, // 2: the key still holds the pre-restore history
		{nil, tl4, false},                     // 3: no key yet
		{parseHistory(tl4, "n2"), tl4, true},  // 4: written by another holder: who led is not compared
		{parseHistory(tl4, "n1"), tl3, false}, // 5: the file has a switch the key lacks
		{[]dcs.HistoryEntry{}, "", true},      // 6: timeline 1: no switches either side
	} {
		if got := sameSwitches(c.stored, parseHistory(c.file, "n1")); got != c.want {
			t.Errorf("case %d: sameSwitches = %v, want %v", i+1, got, c.want)
		}
	}
}

// A new timeline's history is written with who led after each earlier switch, and when, as
// the key recorded them (the history file knows neither); the new switch is this holder's.
func TestHistoryKeepsLeaders(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	known := keepLeaders(parseHistory("1\t0/3000148\tno recovery target specified\n", "n2"), nil)
	known[0].At = at
	got := keepLeaders(parseHistory("1\t0/3000148\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n", "n3"), known)
	if len(got) != 2 || got[0].Leader != "n2" || !got[0].At.Equal(at) || got[1].Leader != "n3" || got[1].At.IsZero() {
		t.Errorf("history: %+v", got)
	}
	if got := keepLeaders([]dcs.HistoryEntry{}, known); len(got) != 0 {
		t.Errorf("timeline 1: %+v", got)
	}
}
