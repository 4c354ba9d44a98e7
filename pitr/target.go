package pitr

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind says what a recovery target points at. Exactly one kind per target.
type Kind int

const (
	KindTime      Kind = iota + 1 // the first commit after a moment (recovery_target_time)
	KindLSN                       // a WAL position (recovery_target_lsn)
	KindXID                       // a transaction's commit (recovery_target_xid)
	KindName                      // a restore point made by pg_create_restore_point (recovery_target_name)
	KindImmediate                 // the end of the backup: the earliest consistent state (recovery_target = 'immediate')
	KindLatest                    // the end of the archived WAL (no recovery_target_* at all)
)

func (k Kind) String() string {
	switch k {
	case KindTime:
		return "time"
	case KindLSN:
		return "lsn"
	case KindXID:
		return "xid"
	case KindName:
		return "name"
	case KindImmediate:
		return "immediate"
	case KindLatest:
		return "latest"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Flag names as the user types them; errors name them so the user knows which one to fix.
const (
	FlagTargetTime     = "--target-time"
	FlagTargetLSN      = "--target-lsn"
	FlagTargetXID      = "--target-xid"
	FlagTargetName     = "--target-name"
	FlagImmediate      = "--immediate"
	FlagLatest         = "--latest"
	FlagExclusive      = "--exclusive"
	FlagTargetTimeline = "--target-timeline"
	FlagBackupSet      = "--backup-set"
)

// Flags is the target as given on the command line, before any checking.
type Flags struct {
	Time, LSN, XID, Name string
	Immediate, Latest    bool
	Exclusive            bool
	Timeline             string
}

// Target is a checked recovery target. Build it with Parse; the zero value is not a target.
type Target struct {
	Kind Kind
	// Time is the moment for KindTime, in UTC, to the microsecond (PostgreSQL's precision).
	Time time.Time
	LSN  LSN
	// XID is a 32-bit transaction id (see ParseXID for why epoch-qualified ids are refused).
	XID  uint32
	Name string
	// Exclusive stops just before the target instead of just after it
	// (recovery_target_inclusive = false, pgBackRest --target-exclusive).
	Exclusive bool
	Timeline  Timeline
}

// Sentinel errors, so callers decide with errors.Is and never by wording.
var (
	ErrNoTarget       = errors.New("no recovery target")
	ErrManyTargets    = errors.New("more than one recovery target")
	ErrBadTime        = errors.New("not a time")
	ErrNoTimeZone     = errors.New("no time zone")
	ErrNamedTimeZone  = errors.New("time zone given by name")
	ErrTooPrecise     = errors.New("more than microsecond precision")
	ErrBadXID         = errors.New("not a 32-bit transaction id")
	ErrBadName        = errors.New("not an allowed restore point name")
	ErrBadTimeline    = errors.New("not a timeline")
	ErrExclusiveNoUse = errors.New("--exclusive does not apply to this target")
	ErrTimelineNotSet = errors.New("target timeline not chosen")
)

// FlagError is a refused flag value: which flag, what was given, what is wrong (Err, one of the
// sentinels above) and how to fix it.
type FlagError struct {
	Flag  string
	Value string
	Err   error
	Fix   string
}

func (e *FlagError) Error() string {
	var b strings.Builder
	b.WriteString(e.Flag)
	if e.Value != "" {
		fmt.Fprintf(&b, " %q", e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

func (e *FlagError) Unwrap() error { return e.Err }

// Parse checks the flags and returns the one target they name. Every problem is reported
// together (errors.Join of *FlagError, one per flag), so a user fixes them in one go. Nothing is
// looked up: whether the target is inside a recoverable window is Check's job.
func Parse(f Flags) (Target, error) {
	var t Target
	var errs []error
	var given []string
	// Each target flag given is checked, even when several are: the user learns every fix at once.
	for _, k := range []struct {
		flag  string
		given bool
		parse func(*Target) error
	}{
		{FlagTargetTime, f.Time != "", func(t *Target) (err error) { t.Kind = KindTime; t.Time, err = ParseTime(f.Time); return }},
		{FlagTargetLSN, f.LSN != "", func(t *Target) (err error) { t.Kind = KindLSN; t.LSN, err = parseLSNFlag(f.LSN); return }},
		{FlagTargetXID, f.XID != "", func(t *Target) (err error) { t.Kind = KindXID; t.XID, err = ParseXID(f.XID); return }},
		{FlagTargetName, f.Name != "", func(t *Target) (err error) { t.Kind = KindName; t.Name, err = ParseRestorePointName(f.Name); return }},
		{FlagImmediate, f.Immediate, func(t *Target) error { t.Kind = KindImmediate; return nil }},
		{FlagLatest, f.Latest, func(t *Target) error { t.Kind = KindLatest; return nil }},
	} {
		if !k.given {
			continue
		}
		given = append(given, k.flag)
		if err := k.parse(&t); err != nil {
			errs = append(errs, err)
		}
	}
	all := FlagTargetTime + ", " + FlagTargetLSN + ", " + FlagTargetXID + ", " + FlagTargetName + ", " + FlagImmediate + " or " + FlagLatest
	switch len(given) {
	case 0:
		errs = append(errs, &FlagError{Flag: "target", Err: ErrNoTarget, Fix: "give exactly one of " + all})
	case 1:
		// recovery_target_inclusive only changes where time, xid and LSN targets stop; a restore
		// point, the end of a backup or the end of the archive has no "just before".
		if f.Exclusive && t.Kind != KindTime && t.Kind != KindXID && t.Kind != KindLSN {
			errs = append(errs, &FlagError{Flag: FlagExclusive, Err: ErrExclusiveNoUse,
				Fix: "it applies to " + FlagTargetTime + ", " + FlagTargetLSN + " and " + FlagTargetXID + " only; drop it"})
		}
	default:
		errs = append(errs, &FlagError{Flag: strings.Join(given, ", "), Err: ErrManyTargets, Fix: "give exactly one of " + all})
	}
	t.Exclusive = f.Exclusive
	var err error
	if t.Timeline, err = ParseTimeline(f.Timeline); err != nil {
		errs = append(errs, err)
	}
	switch len(errs) {
	case 0:
		return t, nil
	case 1:
		return Target{}, errs[0]
	}
	return Target{}, errors.Join(errs...)
}

func parseLSNFlag(s string) (LSN, error) {
	l, err := ParseLSN(s)
	if err != nil {
		return 0, &FlagError{Flag: FlagTargetLSN, Value: s, Err: ErrBadLSN,
			Fix: "give PostgreSQL's X/X hex form as pg_current_wal_lsn() prints it, e.g. 0/3000050"}
	}
	return l, nil
}

// ParseXID reads a transaction id, in decimal, in the 32-bit form only. PostgreSQL reads
// recovery_target_xid as a 64-bit number (strtou64, base 0: hex and octal too) and keeps the low
// 32 bits, so an epoch-qualified xid8 from pg_current_xact_id() would work there, silently
// dropping its epoch; pigwf takes one spelling per transaction instead, the one the proof of the
// target shows ("recovery stopping before commit of transaction 725"), so the plan, the
// settings and the log name the same number. 0, 1 and 2 are PostgreSQL's invalid, bootstrap and
// frozen ids, never a commit.
func ParseXID(s string) (uint32, error) {
	fix := "give a 32-bit transaction id from 3 to 4294967295 as xmin or the server log show it (for an xid8 from pg_current_xact_id(), give it modulo 4294967296)"
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, &FlagError{Flag: FlagTargetXID, Value: s, Err: ErrBadXID, Fix: fix}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > math.MaxUint32 || v < 3 {
		return 0, &FlagError{Flag: FlagTargetXID, Value: s, Err: ErrBadXID, Fix: fix}
	}
	return uint32(v), nil
}

// restorePointName is the only shape of restore point name accepted. The name reaches SQL
// (pg_create_restore_point), a shell (pgbackrest --target) and the recovery settings file, so it
// is limited to characters none of them treat specially, and to PostgreSQL's limit of 63 bytes
// (MAXFNAMELEN - 1): a longer name is silently truncated by the server.
var restorePointName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$`)

// ParseRestorePointName checks a restore point name against restorePointName.
func ParseRestorePointName(s string) (string, error) {
	if !restorePointName.MatchString(s) {
		return "", &FlagError{Flag: FlagTargetName, Value: s, Err: ErrBadName,
			Fix: "use 1 to 63 letters, digits, '_', '.', ':' or '-', starting with a letter or digit, e.g. before-migration-42"}
	}
	return s, nil
}

// TimelineKind says how the timeline to recover along is chosen.
type TimelineKind int

const (
	// TimelineDefault: not given. The timeline on which the target lies is chosen later, from the
	// cluster's timeline history; never pgBackRest's silent "latest" (which follows the newest
	// timeline even when the target is on an older branch). Rendering refuses it until Resolve.
	TimelineDefault TimelineKind = iota
	TimelineCurrent              // the timeline of the backup restored
	TimelineLatest               // the newest timeline found in the archive
	TimelineID                   // a given timeline id
)

// Timeline is the recovery target timeline.
type Timeline struct {
	Kind TimelineKind
	ID   uint32 // TimelineID only
}

// ParseTimeline reads "current", "latest", a positive decimal integer, or "" (TimelineDefault).
func ParseTimeline(s string) (Timeline, error) {
	switch s {
	case "":
		return Timeline{}, nil
	case "current":
		return Timeline{Kind: TimelineCurrent}, nil
	case "latest":
		return Timeline{Kind: TimelineLatest}, nil
	}
	fix := `give "current", "latest" or a timeline id from 1 to 4294967295, e.g. 2; leave it out to use the timeline on which the target lies`
	if strings.TrimLeft(s, "0123456789") != "" || s[0] == '0' {
		return Timeline{}, &FlagError{Flag: FlagTargetTimeline, Value: s, Err: ErrBadTimeline, Fix: fix}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return Timeline{}, &FlagError{Flag: FlagTargetTimeline, Value: s, Err: ErrBadTimeline, Fix: fix}
	}
	return Timeline{Kind: TimelineID, ID: uint32(v)}, nil
}

// String prints the value for recovery_target_timeline and --target-timeline ("" when not chosen).
func (tl Timeline) String() string {
	switch tl.Kind {
	case TimelineCurrent:
		return "current"
	case TimelineLatest:
		return "latest"
	case TimelineID:
		return strconv.FormatUint(uint64(tl.ID), 10)
	}
	return ""
}

// WithTimeline returns the target with its timeline set to id; the caller found from the
// timeline history that the target lies on timeline id.
func (t Target) WithTimeline(id uint32) Target {
	t.Timeline = Timeline{Kind: TimelineID, ID: id}
	return t
}

// String describes the target for plans and messages, with the flag that names it.
func (t Target) String() string {
	var s string
	switch t.Kind {
	case KindTime:
		s = FlagTargetTime + " " + FormatTime(t.Time)
	case KindLSN:
		s = FlagTargetLSN + " " + t.LSN.String()
	case KindXID:
		s = FlagTargetXID + " " + strconv.FormatUint(uint64(t.XID), 10)
	case KindName:
		s = FlagTargetName + " " + t.Name
	case KindImmediate:
		s = FlagImmediate
	case KindLatest:
		s = FlagLatest
	default:
		return "no target"
	}
	if t.Exclusive {
		s += " " + FlagExclusive
	}
	if t.Timeline.Kind != TimelineDefault {
		s += " " + FlagTargetTimeline + " " + t.Timeline.String()
	}
	return s
}
