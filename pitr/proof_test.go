package pitr

import (
	"errors"
	"testing"
	"time"
)

func TestReached(t *testing.T) {
	target := func(f Flags) Target {
		t.Helper()
		tg, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	at := func(s string) time.Time { tm, _ := ParsePGTime(s); return tm }
	prefix := "2026-11-30 07:01:02.500 UTC [4242] LOG:  "
	for i, c := range []struct {
		target     Target
		line       string
		lastCommit time.Time
		ok         bool
	}{
		// 1-4: time, inclusive: stop before the first commit after the target.
		{target(Flags{Time: "2026-11-30 09:00:01.5+02"}), prefix + "recovery stopping before commit of transaction 745, time 2026-11-30 07:00:01.500001+00", at("2026-11-30 07:00:01.4999+00"), true},
		{target(Flags{Time: "2026-11-30 09:00:01.5+02"}), prefix + "recovery stopping before commit of transaction 745, time 2026-11-30 07:00:01.5+00", at("2026-11-30 07:00:01.4+00"), false},
		{target(Flags{Time: "2026-11-30 09:00:01.5+02"}), prefix + "recovery stopping before commit of transaction 745, time 2026-11-30 07:00:02+00", at("2026-11-30 07:00:01.6+00"), false},
		{target(Flags{Time: "2026-11-30 09:00:01.5+02"}), prefix + "recovery stopping after commit of transaction 745, time 2026-11-30 07:00:02+00", time.Time{}, false},
		// 5-6: time, exclusive: a commit exactly at the target is not replayed.
		{target(Flags{Time: "2026-11-30T07:00:01.5Z", Exclusive: true}), prefix + "recovery stopping before commit of transaction 9, time 2026-11-30 07:00:01.5+00", at("2026-11-30 07:00:01.4+00"), true},
		{target(Flags{Time: "2026-11-30T07:00:01.5Z", Exclusive: true}), prefix + "recovery stopping before commit of transaction 9, time 2026-11-30 07:00:01.5+00", at("2026-11-30 07:00:01.5+00"), false},
		// 7-9: xid.
		{target(Flags{XID: "745"}), prefix + "recovery stopping after commit of transaction 745, time 2026-11-30 07:00:02+00", time.Time{}, true},
		{target(Flags{XID: "745"}), prefix + "recovery stopping after commit of transaction 746, time 2026-11-30 07:00:02+00", time.Time{}, false},
		{target(Flags{XID: "745", Exclusive: true}), prefix + "recovery stopping before commit of transaction 745, time 2026-11-30 07:00:02+00", time.Time{}, true},
		// 10-11: LSN.
		{target(Flags{LSN: "0/3000060"}), prefix + `recovery stopping after WAL location (LSN) "0/3000098"`, time.Time{}, true},
		{target(Flags{LSN: "0/3000060"}), prefix + `recovery stopping after WAL location (LSN) "0/3000028"`, time.Time{}, false},
		// 12-13: restore point.
		{target(Flags{Name: "before-migration"}), prefix + `recovery stopping at restore point "before-migration", time 2026-11-30 07:00:02.1+05:30`, time.Time{}, true},
		{target(Flags{Name: "before-migration"}), prefix + `recovery stopping at restore point "other", time 2026-11-30 07:00:02+00`, time.Time{}, false},
		// 14-15: immediate; a stop line of another kind proves nothing.
		{target(Flags{Immediate: true}), prefix + "recovery stopping after reaching consistency", time.Time{}, true},
		{target(Flags{Immediate: true}), prefix + `recovery stopping at restore point "x", time 2026-11-30 07:00:02+00`, time.Time{}, false},
	} {
		s, found := ParseStop([]string{"LOG:  consistent recovery state reached at 0/2000100", c.line, "LOG:  pausing at the end of recovery"})
		if !found {
			t.Fatalf("case %d: no stop line found in %q", i+1, c.line)
		}
		err := c.target.Reached(s, c.lastCommit)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrNotProven)) {
			t.Errorf("case %d: %s against %q: %v, want ok=%v", i+1, c.target, c.line, err, c.ok)
		}
	}
	if _, found := ParseStop([]string{"LOG:  consistent recovery state reached at 0/2000100"}); found {
		t.Error("consistent recovery state taken for a stop line")
	}
}
