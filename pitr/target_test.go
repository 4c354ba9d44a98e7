package pitr

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// TestParseAccepts: every accepted form, with the target it yields.
func TestParseAccepts(t *testing.T) {
	cases := []struct {
		n    int
		in   Flags
		want Target
	}{
		{1, Flags{Time: "2026-11-30T10:00:00Z"}, Target{Kind: KindTime, Time: utc("2026-11-30T10:00:00Z")}},
		{2, Flags{Time: "2026-11-30T10:00:00.123456+08:00"}, Target{Kind: KindTime, Time: utc("2026-11-30T02:00:00.123456Z")}},
		{3, Flags{Time: "2026-11-30 10:00:00+08"}, Target{Kind: KindTime, Time: utc("2026-11-30T02:00:00Z")}},
		{4, Flags{Time: "2026-11-30 10:00:00-0530"}, Target{Kind: KindTime, Time: utc("2026-11-30T15:30:00Z")}},
		{5, Flags{Time: "2026-11-30 10:00:00 UTC"}, Target{Kind: KindTime, Time: utc("2026-11-30T10:00:00Z")}},
		{6, Flags{Time: "2026-11-30 04:57:02.654375+00"}, Target{Kind: KindTime, Time: utc("2026-11-30T04:57:02.654375Z")}},
		{7, Flags{Time: "2026-11-30t10:00:00.5z"}, Target{Kind: KindTime, Time: utc("2026-11-30T10:00:00.5Z")}},
		{8, Flags{Time: "2026-11-30 10:00:00 +05:45"}, Target{Kind: KindTime, Time: utc("2026-11-30T04:15:00Z")}},
		{9, Flags{Time: "2024-02-29 23:59:59.999999-12"}, Target{Kind: KindTime, Time: utc("2024-03-01T11:59:59.999999Z")}},
		{10, Flags{Time: "2026-11-30T10:00:00Z", Exclusive: true}, Target{Kind: KindTime, Time: utc("2026-11-30T10:00:00Z"), Exclusive: true}},
		{11, Flags{LSN: "0/3000050"}, Target{Kind: KindLSN, LSN: 0x3000050}},
		{12, Flags{LSN: "ffffffff/FFFFFFFF"}, Target{Kind: KindLSN, LSN: 0xFFFFFFFFFFFFFFFF}},
		{13, Flags{LSN: "1/0", Exclusive: true}, Target{Kind: KindLSN, LSN: 1 << 32, Exclusive: true}},
		{14, Flags{XID: "725"}, Target{Kind: KindXID, XID: 725}},
		{15, Flags{XID: "3"}, Target{Kind: KindXID, XID: 3}},
		{16, Flags{XID: "4294967295"}, Target{Kind: KindXID, XID: 4294967295}},
		{17, Flags{Name: "before-migration-42"}, Target{Kind: KindName, Name: "before-migration-42"}},
		{18, Flags{Name: "a"}, Target{Kind: KindName, Name: "a"}},
		{19, Flags{Name: "v1.2:pre_load"}, Target{Kind: KindName, Name: "v1.2:pre_load"}},
		{20, Flags{Name: "x" + strings.Repeat("y", 62)}, Target{Kind: KindName, Name: "x" + strings.Repeat("y", 62)}},
		{21, Flags{Immediate: true}, Target{Kind: KindImmediate}},
		{22, Flags{Latest: true}, Target{Kind: KindLatest}},
		{23, Flags{Latest: true, Timeline: "latest"}, Target{Kind: KindLatest, Timeline: Timeline{Kind: TimelineLatest}}},
		{24, Flags{Immediate: true, Timeline: "current"}, Target{Kind: KindImmediate, Timeline: Timeline{Kind: TimelineCurrent}}},
		{25, Flags{LSN: "0/1", Timeline: "2"}, Target{Kind: KindLSN, LSN: 1, Timeline: Timeline{Kind: TimelineID, ID: 2}}},
		{26, Flags{XID: "9", Timeline: "4294967295"}, Target{Kind: KindXID, XID: 9, Timeline: Timeline{Kind: TimelineID, ID: 4294967295}}},
		{27, Flags{Time: "  2026-11-30T10:00:00Z  "}, Target{Kind: KindTime, Time: utc("2026-11-30T10:00:00Z")}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("case %d %+v: %v", c.n, c.in, err)
			continue
		}
		if !got.Time.Equal(c.want.Time) || got.Time.Location() != time.UTC && !got.Time.IsZero() {
			t.Errorf("case %d: time %v, want %v in UTC", c.n, got.Time, c.want.Time)
		}
		got.Time, c.want.Time = time.Time{}, time.Time{}
		if got != c.want {
			t.Errorf("case %d: got %+v, want %+v", c.n, got, c.want)
		}
	}
}

// TestParseRefuses: every refusal names the flag, wraps the right sentinel and says what to do.
func TestParseRefuses(t *testing.T) {
	cases := []struct {
		n    int
		in   Flags
		err  error
		flag string
		msg  string // a part of the message
	}{
		{1, Flags{}, ErrNoTarget, "target", "give exactly one of --target-time"},
		{2, Flags{Time: "2026-11-30T10:00:00Z", LSN: "0/1"}, ErrManyTargets, "--target-time, --target-lsn", "exactly one"},
		{3, Flags{Immediate: true, Latest: true}, ErrManyTargets, "--immediate, --latest", ""},
		{4, Flags{Time: "2026-11-30 10:00:00"}, ErrNoTimeZone, FlagTargetTime,
			`--target-time "2026-11-30 10:00:00": no time zone; give one, e.g. 2026-11-30T10:00:00Z or "2026-11-30 10:00:00+08"`},
		{5, Flags{Time: "2026-11-30T10:00:00"}, ErrNoTimeZone, FlagTargetTime, "no time zone"},
		{6, Flags{Time: "2026-11-30 10:00:00 Asia/Shanghai"}, ErrNamedTimeZone, FlagTargetTime, `instead of "Asia/Shanghai"`},
		{7, Flags{Time: "2026-11-30 10:00:00 PST"}, ErrNamedTimeZone, FlagTargetTime, "offset as a number"},
		{8, Flags{Time: "2026-11-30"}, ErrBadTime, FlagTargetTime, "a date, a time and a zone"},
		{9, Flags{Time: "yesterday"}, ErrBadTime, FlagTargetTime, ""},
		{10, Flags{Time: "2026-13-01T00:00:00Z"}, ErrBadTime, FlagTargetTime, "out of range"},
		{11, Flags{Time: "2026-02-30T00:00:00Z"}, ErrBadTime, FlagTargetTime, "no day 30"},
		{12, Flags{Time: "2026-11-30T24:00:00Z"}, ErrBadTime, FlagTargetTime, "out of range"},
		{13, Flags{Time: "2026-11-30T10:00:60Z"}, ErrBadTime, FlagTargetTime, "out of range"},
		{14, Flags{Time: "2026-11-30T10:00:00+16"}, ErrBadTime, FlagTargetTime, "15:59"},
		{15, Flags{Time: "2026-11-30T10:00:00+08:60"}, ErrBadTime, FlagTargetTime, "15:59"},
		{16, Flags{Time: "2026-11-30T10:00:00.1234567Z"}, ErrTooPrecise, FlagTargetTime, "microseconds"},
		{17, Flags{Time: "2026-11-30T10:00Z"}, ErrBadTime, FlagTargetTime, ""},
		{18, Flags{Time: "0000-01-01T00:00:00Z"}, ErrBadTime, FlagTargetTime, ""},
		{19, Flags{Time: "2026-11-30T10:00:00+8"}, ErrBadTime, FlagTargetTime, ""},
		{20, Flags{LSN: "3000050"}, ErrBadLSN, FlagTargetLSN, "X/X"},
		{21, Flags{LSN: "0/0"}, ErrBadLSN, FlagTargetLSN, ""},
		{22, Flags{LSN: "0/123456789"}, ErrBadLSN, FlagTargetLSN, ""},
		{23, Flags{LSN: "0/3000050'; drop"}, ErrBadLSN, FlagTargetLSN, ""},
		{24, Flags{LSN: "g/1"}, ErrBadLSN, FlagTargetLSN, ""},
		{25, Flags{XID: "0"}, ErrBadXID, FlagTargetXID, "from 3 to 4294967295"},
		{26, Flags{XID: "2"}, ErrBadXID, FlagTargetXID, ""},
		{27, Flags{XID: "4294967296"}, ErrBadXID, FlagTargetXID, "modulo 4294967296"},
		{28, Flags{XID: "-5"}, ErrBadXID, FlagTargetXID, ""},
		{29, Flags{XID: "0725"}, ErrBadXID, FlagTargetXID, ""},
		{30, Flags{XID: "1e3"}, ErrBadXID, FlagTargetXID, ""},
		{31, Flags{XID: "99999999999999999999999"}, ErrBadXID, FlagTargetXID, ""},
		{32, Flags{Name: "-leading-dash"}, ErrBadName, FlagTargetName, "1 to 63 letters"},
		{33, Flags{Name: "x" + strings.Repeat("y", 63)}, ErrBadName, FlagTargetName, ""},
		{34, Flags{Name: "it's"}, ErrBadName, FlagTargetName, ""},
		{35, Flags{Name: "a b"}, ErrBadName, FlagTargetName, ""},
		{36, Flags{Name: "a;rm -rf"}, ErrBadName, FlagTargetName, ""},
		{37, Flags{Name: "naïve"}, ErrBadName, FlagTargetName, ""},
		{38, Flags{Name: "a$(x)"}, ErrBadName, FlagTargetName, ""},
		{39, Flags{Name: "p1", Exclusive: true}, ErrExclusiveNoUse, FlagExclusive, "drop it"},
		{40, Flags{Immediate: true, Exclusive: true}, ErrExclusiveNoUse, FlagExclusive, ""},
		{41, Flags{Latest: true, Exclusive: true}, ErrExclusiveNoUse, FlagExclusive, ""},
		{42, Flags{Latest: true, Timeline: "0"}, ErrBadTimeline, FlagTargetTimeline, `"current", "latest"`},
		{43, Flags{Latest: true, Timeline: "-1"}, ErrBadTimeline, FlagTargetTimeline, ""},
		{44, Flags{Latest: true, Timeline: "02"}, ErrBadTimeline, FlagTargetTimeline, ""},
		{45, Flags{Latest: true, Timeline: "4294967296"}, ErrBadTimeline, FlagTargetTimeline, ""},
		{46, Flags{Latest: true, Timeline: "0x2"}, ErrBadTimeline, FlagTargetTimeline, ""},
		{47, Flags{Latest: true, Timeline: "Latest"}, ErrBadTimeline, FlagTargetTimeline, ""},
		{48, Flags{LSN: "0/1\n"}, ErrBadLSN, FlagTargetLSN, ""},
		{49, Flags{Name: "p1\n"}, ErrBadName, FlagTargetName, ""},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("case %d %+v: accepted", c.n, c.in)
			continue
		}
		if !errors.Is(err, c.err) {
			t.Errorf("case %d: %v is not %v", c.n, err, c.err)
		}
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != c.flag {
			t.Errorf("case %d: %v: flag %q, want %q", c.n, err, fe.Flag, c.flag)
		}
		if fe != nil && fe.Fix == "" {
			t.Errorf("case %d: %v: no fix", c.n, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("case %d: %q does not contain %q", c.n, err, c.msg)
		}
	}
}

// TestRender: each kind as pgBackRest options and recovery settings; an unchosen timeline is
// refused rather than left to pgBackRest's "latest".
func TestRender(t *testing.T) {
	cases := []struct {
		n        int
		in       Flags
		timeline uint32 // WithTimeline when not 0
		args     string
		conf     string
	}{
		{1, Flags{Time: "2026-11-30 10:00:00.25+08"}, 1,
			"--type=time --target=2026-11-30 02:00:00.25+00 --target-timeline=1",
			"recovery_target_time = '2026-11-30 02:00:00.25+00'\nrecovery_target_timeline = '1'\n"},
		{2, Flags{Time: "2026-11-30T10:00:00Z", Exclusive: true}, 3,
			"--type=time --target=2026-11-30 10:00:00+00 --target-exclusive --target-timeline=3",
			"recovery_target_time = '2026-11-30 10:00:00+00'\nrecovery_target_inclusive = 'false'\nrecovery_target_timeline = '3'\n"},
		{3, Flags{LSN: "0/3000050"}, 2,
			"--type=lsn --target=0/3000050 --target-timeline=2",
			"recovery_target_lsn = '0/3000050'\nrecovery_target_timeline = '2'\n"},
		{4, Flags{XID: "725", Timeline: "current"}, 0,
			"--type=xid --target=725 --target-timeline=current",
			"recovery_target_xid = '725'\nrecovery_target_timeline = 'current'\n"},
		{5, Flags{Name: "before-load"}, 1,
			"--type=name --target=before-load --target-timeline=1",
			"recovery_target_name = 'before-load'\nrecovery_target_timeline = '1'\n"},
		{6, Flags{Immediate: true, Timeline: "current"}, 0,
			"--type=immediate --target-timeline=current",
			"recovery_target = 'immediate'\nrecovery_target_timeline = 'current'\n"},
		{7, Flags{Latest: true, Timeline: "latest"}, 0,
			"--type=default --target-timeline=latest",
			"recovery_target_timeline = 'latest'\n"},
		{8, Flags{Time: "2026-11-30 04:57:02.000001+00"}, 1,
			"--type=time --target=2026-11-30 04:57:02.000001+00 --target-timeline=1",
			"recovery_target_time = '2026-11-30 04:57:02.000001+00'\nrecovery_target_timeline = '1'\n"},
	}
	for _, c := range cases {
		tg, err := Parse(c.in)
		if err != nil {
			t.Fatalf("case %d: %v", c.n, err)
		}
		if _, err := tg.PgBackRest(); c.in.Timeline == "" && !errors.Is(err, ErrTimelineNotSet) {
			t.Errorf("case %d: rendered with no timeline chosen: %v", c.n, err)
		}
		if _, err := tg.RecoverySettings(); c.in.Timeline == "" && !errors.Is(err, ErrTimelineNotSet) {
			t.Errorf("case %d: settings with no timeline chosen: %v", c.n, err)
		}
		if c.timeline != 0 {
			tg = tg.WithTimeline(c.timeline)
		}
		o, err := tg.PgBackRest()
		if err != nil {
			t.Fatalf("case %d: %v", c.n, err)
		}
		if got := strings.Join(o.Args(), " "); got != c.args {
			t.Errorf("case %d: args %q, want %q", c.n, got, c.args)
		}
		s, err := tg.RecoverySettings()
		if err != nil {
			t.Fatalf("case %d: %v", c.n, err)
		}
		if got := RecoveryConf(s); got != c.conf {
			t.Errorf("case %d: conf %q, want %q", c.n, got, c.conf)
		}
	}
}

// TestFormatTimeRoundTrips: the printed time parses back to the same instant.
func TestFormatTimeRoundTrips(t *testing.T) {
	for i, in := range []string{"2026-11-30T10:00:00Z", "2026-11-30T10:00:00.000001-03:30", "1999-12-31 23:59:59.5+14"} {
		a, err := ParseTime(in)
		if err != nil {
			t.Fatalf("case %d: %v", i+1, err)
		}
		b, err := ParseTime(FormatTime(a))
		if err != nil || !a.Equal(b) {
			t.Errorf("case %d: %q -> %q -> %v, %v", i+1, in, FormatTime(a), b, err)
		}
	}
}

var (
	renderedTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00$`)
	renderedLSN  = regexp.MustCompile(`^[0-9A-F]{1,8}/[0-9A-F]{1,8}$`)
	renderedXID  = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	renderedTL   = regexp.MustCompile(`^(current|latest|[1-9][0-9]{0,9})$`)
	settingName  = regexp.MustCompile(`^recovery_target(_time|_lsn|_xid|_name|_inclusive|_timeline)?$`)
)

// FuzzParse: Parse never panics, and what it accepts renders to values that pass the strict rules
// (nothing a shell or a configuration file would read specially).
func FuzzParse(f *testing.F) {
	f.Add("2026-11-30 10:00:00+08", "", "", "", false, false, false, "")
	f.Add("", "0/3000050", "", "", false, false, true, "2")
	f.Add("", "", "725", "", false, false, false, "current")
	f.Add("", "", "", "before-load", false, false, false, "latest")
	f.Add("", "", "", "", true, false, false, "")
	f.Add("", "", "", "", false, true, false, "1")
	f.Add("2026-11-30T10:00:00.123456-05:30", "", "", "", false, false, true, "")
	f.Fuzz(func(t *testing.T, tm, lsn, xid, name string, immediate, latest, exclusive bool, timeline string) {
		tg, err := Parse(Flags{Time: tm, LSN: lsn, XID: xid, Name: name, Immediate: immediate, Latest: latest, Exclusive: exclusive, Timeline: timeline})
		if err != nil {
			var fe *FlagError
			if !errors.As(err, &fe) || fe.Fix == "" {
				t.Fatalf("error without flag and fix: %v", err)
			}
			return
		}
		if tg.Timeline.Kind == TimelineDefault {
			tg = tg.WithTimeline(1)
		}
		o, err := tg.PgBackRest()
		if err != nil {
			t.Fatal(err)
		}
		switch o.Type {
		case "time":
			if !renderedTime.MatchString(o.Target) {
				t.Fatalf("time target %q", o.Target)
			}
			if back, err := ParseTime(o.Target); err != nil || !back.Equal(tg.Time) {
				t.Fatalf("time %q does not round-trip: %v", o.Target, err)
			}
		case "lsn":
			if !renderedLSN.MatchString(o.Target) {
				t.Fatalf("lsn target %q", o.Target)
			}
		case "xid":
			if !renderedXID.MatchString(o.Target) {
				t.Fatalf("xid target %q", o.Target)
			}
		case "name":
			if !restorePointName.MatchString(o.Target) {
				t.Fatalf("name target %q", o.Target)
			}
		case "immediate", "default":
			if o.Target != "" {
				t.Fatalf("%s with target %q", o.Type, o.Target)
			}
		default:
			t.Fatalf("type %q", o.Type)
		}
		if !renderedTL.MatchString(o.Timeline) {
			t.Fatalf("timeline %q", o.Timeline)
		}
		settings, err := tg.RecoverySettings()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settings {
			if !settingName.MatchString(s.Name) || strings.ContainsAny(s.Value, "'\\\n\r\x00") {
				t.Fatalf("setting %+v", s)
			}
		}
	})
}

// TestParseReportsEveryProblem: all refusals come back together, each still found by errors.Is.
func TestParseReportsEveryProblem(t *testing.T) {
	cases := []struct {
		n    int
		in   Flags
		errs []error
	}{
		{1, Flags{Time: "2026-11-30 10:00:00", Timeline: "0"}, []error{ErrNoTimeZone, ErrBadTimeline}},
		{2, Flags{Time: "soon", LSN: "0/0", Timeline: "x"}, []error{ErrBadTime, ErrBadLSN, ErrManyTargets, ErrBadTimeline}},
		{3, Flags{Name: "a b", Exclusive: true}, []error{ErrBadName, ErrExclusiveNoUse}},
		{4, Flags{Exclusive: true, Timeline: "0"}, []error{ErrNoTarget, ErrBadTimeline}},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		for _, want := range c.errs {
			if !errors.Is(err, want) {
				t.Errorf("case %d: %v lacks %v", c.n, err, want)
			}
		}
		if err != nil && strings.Count(err.Error(), "\n") != len(c.errs)-1 {
			t.Errorf("case %d: %d problems in %q", c.n, len(c.errs), err)
		}
	}
}
