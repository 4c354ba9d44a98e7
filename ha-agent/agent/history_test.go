package agent

import (
	"testing"

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
