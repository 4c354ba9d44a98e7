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
