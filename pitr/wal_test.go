package pitr

import (
	"errors"
	"testing"
)

func TestParseLSN(t *testing.T) {
	cases := []struct {
		n    int
		in   string
		want LSN
		ok   bool
	}{
		{1, "0/3000050", 0x3000050, true},
		{2, "16/B374D848", 0x16B374D848, true},
		{3, "ffffffff/0", 0xFFFFFFFF00000000, true},
		{4, "0/0", 0, false},
		{5, "", 0, false},
		{6, "0/", 0, false},
		{7, "/1", 0, false},
		{8, "123456789/1", 0, false},
		{9, "0x1/1", 0, false},
		{10, " 0/1", 0, false},
	}
	for _, c := range cases {
		got, err := ParseLSN(c.in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("case %d %q: %v, %v", c.n, c.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadLSN) {
			t.Errorf("case %d: %v is not ErrBadLSN", c.n, err)
		}
		if err == nil {
			if back, _ := ParseLSN(got.String()); back != got {
				t.Errorf("case %d: %s does not round-trip", c.n, got)
			}
		}
	}
	if s := LSN(0x16B374D848).String(); s != "16/B374D848" {
		t.Errorf("String %q", s)
	}
}

func TestParseSegment(t *testing.T) {
	cases := []struct {
		n          int
		in         string
		want       Segment
		start, end LSN // with 16 MiB segments
		ok         bool
	}{
		{1, "000000010000000000000003", Segment{1, 0, 3}, 0x3000000, 0x4000000, true},
		{2, "00000002000000000000000A", Segment{2, 0, 10}, 0xA000000, 0xB000000, true},
		{3, "0000000300000001000000FF", Segment{3, 1, 255}, 0x1FF000000, 0x200000000, true},
		{4, "00000000000000000000000A", Segment{}, 0, 0, false},
		{5, "00000001000000000000000a", Segment{}, 0, 0, false},
		{6, "00000001000000000000000", Segment{}, 0, 0, false},
		{7, "00000002.history", Segment{}, 0, 0, false},
		{8, "000000010000000000000002.00000028.backup", Segment{}, 0, 0, false},
	}
	for _, c := range cases {
		got, err := ParseSegment(c.in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("case %d %q: %+v, %v", c.n, c.in, got, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadSegment) {
				t.Errorf("case %d: %v is not ErrBadSegment", c.n, err)
			}
			continue
		}
		if got.String() != c.in || got.Start(0) != c.start || got.End(DefaultSegmentSize) != c.end {
			t.Errorf("case %d: %s start %s end %s", c.n, got, got.Start(0), got.End(0))
		}
	}
	// 64 MiB segments: 64 per 4 GiB log.
	if s := (Segment{1, 0, 3}).Start(64 << 20); s != 0xC000000 {
		t.Errorf("64 MiB start %s", s)
	}
}

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory("1\t0/7025E88\tbefore 2026-11-30 04:57:02.655609+00\n\n# comment\n2\t0/9000000\tno recovery target specified\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Switch{{1, 0x7025E88, "before 2026-11-30 04:57:02.655609+00"}, {2, 0x9000000, "no recovery target specified"}}
	if len(h) != 2 || h[0] != want[0] || h[1] != want[1] {
		t.Fatalf("%+v", h)
	}
	for i, bad := range []string{"1", "x\t0/1", "0\t0/1", "1\t0/1\n1\t0/2", "2\t0/1\n1\t0/2", "1\tnot-an-lsn"} {
		if _, err := ParseHistory(bad); !errors.Is(err, ErrBadHistory) {
			t.Errorf("case %d %q: %v", i+1, bad, err)
		}
	}
	cases := []struct {
		n    int
		l    LSN
		want uint32
	}{{1, 0x100, 1}, {2, 0x7025E87, 1}, {3, 0x7025E88, 2}, {4, 0x8FFFFFF, 2}, {5, 0x9000000, 3}}
	for _, c := range cases {
		if got := TimelineForLSN(h, 3, c.l); got != c.want {
			t.Errorf("case %d: TimelineForLSN(%s) = %d, want %d", c.n, c.l, got, c.want)
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
		if got := ArchivedPast(last, wal); got != want {
			t.Errorf("ArchivedPast(%q) = %v, want %v", last, got, want)
		}
	}
}
