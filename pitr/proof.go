package pitr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A restore is proven only by PostgreSQL's own words: the "recovery stopping ..." line its
// startup process logs where replay stopped, checked against the target, and for a time target
// the last replayed commit's time. "Consistent recovery state reached" proves nothing about the
// target.

// StopKind says what PostgreSQL stopped at.
type StopKind int

const (
	StopCommit       StopKind = iota + 1 // a commit or abort record (time and xid targets)
	StopLSN                              // a WAL location (LSN targets)
	StopRestorePoint                     // a restore point (name targets)
	StopConsistency                      // reaching consistency (immediate)
)

// Stop is one parsed "recovery stopping ..." line.
type Stop struct {
	Kind   StopKind
	Before bool // "stopping before" (the record was not replayed) rather than "after"/"at"
	XID    uint32
	Time   time.Time // commit, abort or restore point time; zero when not logged
	LSN    LSN
	Name   string
	Line   string // the line as logged
}

var (
	stopCommit      = regexp.MustCompile(`recovery stopping (before|after) (?:commit|abort) of transaction (\d+), time (.+)$`)
	stopLSN         = regexp.MustCompile(`recovery stopping (before|after) WAL location \(LSN\) "([0-9A-Fa-f]+/[0-9A-Fa-f]+)"`)
	stopPoint       = regexp.MustCompile(`recovery stopping at restore point "(.*)", time (.+)$`)
	stopConsistency = regexp.MustCompile(`recovery stopping after reaching consistency`)
)

// pgTimeLayouts are how PostgreSQL prints a timestamptz in its log (timestamptz_to_str).
var pgTimeLayouts = []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00:00"}

// ParsePGTime reads a timestamptz as PostgreSQL prints it in the log and in ISO DateStyle.
func ParsePGTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range pgTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a PostgreSQL timestamptz", s)
}

// ParseStop finds the "recovery stopping" line in a server log's lines (the last one wins).
func ParseStop(lines []string) (Stop, bool) {
	var out Stop
	found := false
	for _, line := range lines {
		line = strings.TrimRight(line, "\r")
		if m := stopCommit.FindStringSubmatch(line); m != nil {
			xid, _ := strconv.ParseUint(m[2], 10, 32)
			t, _ := ParsePGTime(m[3])
			out, found = Stop{Kind: StopCommit, Before: m[1] == "before", XID: uint32(xid), Time: t, Line: line}, true
		} else if m := stopLSN.FindStringSubmatch(line); m != nil {
			l, _ := ParseLSN(m[2])
			out, found = Stop{Kind: StopLSN, Before: m[1] == "before", LSN: l, Line: line}, true
		} else if m := stopPoint.FindStringSubmatch(line); m != nil {
			t, _ := ParsePGTime(m[2])
			out, found = Stop{Kind: StopRestorePoint, Name: m[1], Time: t, Line: line}, true
		} else if stopConsistency.MatchString(line) {
			out, found = Stop{Kind: StopConsistency, Line: line}, true
		}
	}
	return out, found
}

// ErrNotProven: where replay stopped does not show the target was reached.
var ErrNotProven = errors.New("the recovery target is not proven reached")

// Reached checks where PostgreSQL stopped against the target. lastCommit is
// pg_last_xact_replay_timestamp() (zero when no transaction was replayed). Nil means proven:
//   - time: stopped before the first commit after the target (at or after it with --exclusive),
//     and the last replayed commit is at or before the target (before it with --exclusive);
//   - xid: stopped after that transaction's commit (before it with --exclusive);
//   - LSN: stopped at or after the target position (after it: the record at or past the target);
//   - name: stopped at that restore point; immediate: stopped on reaching consistency.
func (t Target) Reached(s Stop, lastCommit time.Time) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s, but PostgreSQL logged %q (%s)", ErrNotProven, t, s.Line, why)
	}
	switch t.Kind {
	case KindTime:
		if s.Kind != StopCommit || !s.Before || s.Time.IsZero() {
			return bad("not a stop before a commit")
		}
		if t.Exclusive {
			if s.Time.Before(t.Time) {
				return bad("it stopped before a commit earlier than the target")
			}
			if !lastCommit.IsZero() && !lastCommit.Before(t.Time) {
				return bad("the last replayed commit, at " + FormatTime(lastCommit) + ", is not before the target")
			}
			return nil
		}
		if !s.Time.After(t.Time) {
			return bad("it stopped before a commit at or before the target")
		}
		if !lastCommit.IsZero() && lastCommit.After(t.Time) {
			return bad("the last replayed commit, at " + FormatTime(lastCommit) + ", is after the target")
		}
		return nil
	case KindXID:
		if s.Kind != StopCommit || s.XID != t.XID || s.Before != t.Exclusive {
			return bad("not the target transaction's commit")
		}
		return nil
	case KindLSN:
		if s.Kind != StopLSN || s.LSN < t.LSN || s.Before != t.Exclusive {
			return bad("not the target position")
		}
		return nil
	case KindName:
		if s.Kind != StopRestorePoint || s.Name != t.Name {
			return bad("not the target restore point")
		}
		return nil
	case KindImmediate:
		if s.Kind != StopConsistency {
			return bad("not the end of the backup")
		}
		return nil
	}
	return fmt.Errorf("%w: %s has no stop line; the end of the archive is proven by recovery ending", ErrNotProven, t)
}
