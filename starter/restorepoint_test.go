package starter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/pitr"
)

func TestCheckRestorePointName(t *testing.T) {
	if got, err := CheckRestorePointName("before-change"); err != nil || got != "before-change" {
		t.Fatalf("before-change: %q, %v", got, err)
	}
	for _, bad := range []string{"x; drop", "", "-x", "it's", strings.Repeat("a", 64)} {
		_, err := CheckRestorePointName(bad)
		if !errors.Is(err, pitr.ErrBadName) {
			t.Errorf("%q: want ErrBadName, got %v", bad, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "restore point NAME") || strings.Contains(msg, pitr.FlagTargetName) || !strings.Contains(msg, "1 to 63 letters") {
			t.Errorf("%q: the error should name the argument and the rule: %s", bad, msg)
		}
	}
}

func TestParseRestorePointOutput(t *testing.T) {
	lsn, wal, at, err := ParseRestorePointOutput("0/3000090|000000010000000000000003|2026-11-30T05:40:01.123456Z\n0/30000C0\n")
	if err != nil {
		t.Fatal(err)
	}
	if lsn.String() != "0/3000090" || wal != "000000010000000000000003" || !at.Equal(time.Date(2026, 11, 30, 5, 40, 1, 123456000, time.UTC)) {
		t.Errorf("got %s %s %s", lsn, wal, at)
	}
	for _, bad := range []string{"", "0/3000090|000000010000000000000003", "0/0|000000010000000000000003|2026-11-30T05:40:01Z",
		"0/3000090|3|2026-11-30T05:40:01Z", "0/3000090|000000010000000000000003|yesterday", "ERROR: x"} {
		if _, _, _, err := ParseRestorePointOutput(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestArchivedPast(t *testing.T) {
	const wal = "000000010000000000000003"
	for last, want := range map[string]bool{
		"":                         false,
		"000000010000000000000002": false,
		wal:                        true,
		"000000010000000000000004": true,
		"000000010000000000000003.00000028.backup": false, // the backup label, not its segment
		"000000010000000000000004.00000028.backup": true,
		"000000010000000000000003.partial":         false,
		"000000020000000000000004":                 false, // another timeline: not this point's segment
		"00000002.history":                         false,
	} {
		if got := archivedPast(last, wal); got != want {
			t.Errorf("archivedPast(%q) = %v, want %v", last, got, want)
		}
	}
}
