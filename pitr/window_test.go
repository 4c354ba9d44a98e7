package pitr

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	labelF  = "20261130-045654F"
	labelI  = "20261130-045654F_20261130-045659I"
	labelD  = "20261130-045654F_20261130-045703D"
	labelF2 = "20261130-045713F"
)

func backupLabels(w Window) string {
	var l []string
	for _, b := range w.Backups {
		l = append(l, b.Label)
	}
	return strings.Join(l, ",")
}

// TestWindowsReal: the windows of the real fixtures, with and without the timeline history.
func TestWindowsReal(t *testing.T) {
	cases := []struct {
		n       int
		file    string
		history bool
		want    []string // per window: "tl backups start-lsn start-time end source"
	}{
		{1, "info-one-timeline.json", false, []string{
			"1 " + labelF + "," + labelI + "," + labelD + " 0/3000050 2026-11-30 04:56:58+00 0/B000000 end of archived WAL"}},
		{2, "info-two-timelines.json", false, []string{
			"1 " + labelF + "," + labelI + "," + labelD + " 0/3000050 2026-11-30 04:56:58+00 0/A000000 last WAL a backup needed",
			"2 " + labelF2 + " 0/9000050 2026-11-30 04:57:18+00 0/B000000 end of archived WAL"}},
		{3, "info-two-timelines.json", true, []string{
			"1 " + labelF + "," + labelI + "," + labelD + " 0/3000050 2026-11-30 04:56:58+00 0/A000000 last WAL a backup needed",
			"2 " + labelF + "," + labelI + "," + labelF2 + " 0/3000050 2026-11-30 04:56:58+00 0/B000000 end of archived WAL"}},
	}
	for _, c := range cases {
		opt := WindowOptions{}
		if c.history {
			opt.History = loadHistory(t)
		}
		ws, err := Windows(loadStanza(t, c.file), opt)
		if err != nil {
			t.Fatalf("case %d: %v", c.n, err)
		}
		if len(ws) != len(c.want) {
			t.Fatalf("case %d: %d windows: %+v", c.n, len(ws), ws)
		}
		for i, w := range ws {
			got := strings.Join([]string{
				itoa(w.Timeline), backupLabels(w), w.StartLSN.String(), FormatTime(w.StartTime), w.End.String(), w.EndSource.String(),
			}, " ")
			if !strings.HasPrefix(got, c.want[i]) {
				t.Errorf("case %d window %d:\n got %s\nwant %s", c.n, i, got, c.want[i])
			}
		}
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// TestWindowsSynthetic: what Windows leaves out or works around, on edits of the real document
// (marked as such: pgBackRest did not print these).
func TestWindowsSynthetic(t *testing.T) {
	s := loadStanza(t, "info-one-timeline.json")
	s.Backup[2].Error = true                              // a backup with an error is never used
	s.Backup[1].LSN = nil                                 // an old backup without LSNs: the end of its stop segment
	s.DB = append(s.DB, StanzaDB{ID: 2, Version: "16"})   // after a stanza-upgrade ...
	s.Backup = append(s.Backup, s.Backup[0])              // ... a backup of the new database
	s.Backup[3].Label, s.Backup[3].Database.ID = "new", 2 //
	s.Archive[0].Database.ID = 2                          // and the archive of the new database
	ws, err := Windows(s, WindowOptions{})
	if err != nil || len(ws) != 1 || backupLabels(ws[0]) != "new" {
		t.Fatalf("after upgrade: %+v %v", ws, err)
	}
	s.DB = s.DB[:1]
	s.Backup = s.Backup[:3]
	s.Archive[0].Database.ID = 1
	ws, err = Windows(s, WindowOptions{})
	if err != nil || len(ws) != 1 || backupLabels(ws[0]) != labelF+","+labelI || ws[0].Backups[1].StopLSN != 0x7000000 {
		t.Fatalf("error and no LSN: %+v %v", ws, err)
	}
	s.Backup[0].Archive.Stop = "bad"
	if _, err := Windows(s, WindowOptions{}); !errors.Is(err, ErrBadSegment) {
		t.Errorf("bad stop segment: %v", err)
	}
	if _, err := Windows(Stanza{Name: "x"}, WindowOptions{}); err == nil {
		t.Error("stanza without database accepted")
	}
}

func windowsOf(t *testing.T, file string, history bool) []Window {
	t.Helper()
	opt := WindowOptions{}
	if history {
		opt.History = loadHistory(t)
	}
	ws, err := Windows(loadStanza(t, file), opt)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func mustParse(t *testing.T, f Flags) Target {
	t.Helper()
	tg, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestCheckAndSelect: whether a target is inside a window, and the backup set it would use.
func TestCheckAndSelect(t *testing.T) {
	one := windowsOf(t, "info-one-timeline.json", false)
	two := windowsOf(t, "info-two-timelines.json", true)
	cases := []struct {
		n       int
		windows []Window
		in      Flags
		set     string
		checkOK bool
		want    string // the backup chosen, or an error it wraps (as text of the sentinel)
		err     error
	}{
		{1, one, Flags{Time: "2026-11-30T04:56:59Z"}, "", true, labelF, nil},
		{2, one, Flags{Time: "2026-11-30T04:56:58.5Z"}, "", false, "", ErrOutsideWindow},
		{3, one, Flags{Time: "2026-11-29T12:00:00+08:00"}, "", false, "", ErrOutsideWindow},
		{4, one, Flags{Time: "2030-01-01T00:00:00Z"}, "", true, labelD, nil},
		{5, one, Flags{Time: "2026-11-30 12:57:02+08"}, "", true, labelI, nil},
		{6, one, Flags{LSN: "0/3000050"}, "", true, labelF, nil},
		{7, one, Flags{LSN: "0/300004F"}, "", false, "", ErrOutsideWindow},
		{8, one, Flags{LSN: "0/AFFFFFF"}, "", true, labelD, nil},
		{9, one, Flags{LSN: "0/B000000"}, "", false, "", ErrOutsideWindow},
		{10, one, Flags{XID: "725"}, "", true, "", ErrBackupSetNeeded},
		{11, one, Flags{XID: "725"}, labelI, true, labelI, nil},
		{12, one, Flags{Name: "before_incr"}, labelF, true, labelF, nil},
		{13, one, Flags{Name: "before_incr"}, "", true, "", ErrBackupSetNeeded},
		{14, one, Flags{Immediate: true}, "", true, labelD, nil},
		{15, one, Flags{Immediate: true}, labelF, true, labelF, nil},
		{16, one, Flags{Latest: true}, "", true, labelD, nil},
		{17, one, Flags{Latest: true, Timeline: "2"}, "", false, "", ErrOutsideWindow},
		{18, one, Flags{LSN: "0/5000000"}, labelD, true, "", ErrBackupAfterTarget},
		{19, one, Flags{LSN: "0/5000000"}, "nope", true, "", ErrUnknownBackup},
		{20, one, Flags{Time: "2026-11-30T04:57:05Z"}, labelD, true, labelD, nil},
		{21, one, Flags{Time: "2026-11-30T04:57:04.9Z"}, labelD, true, "", ErrBackupAfterTarget},
		{22, nil, Flags{Latest: true}, "", false, "", ErrOutsideWindow},
		{23, two, Flags{LSN: "0/9800000"}, "", true, "", ErrTimelineNotSet},
		{24, two, Flags{LSN: "0/9800000", Timeline: "1"}, "", true, labelD, nil},
		{25, two, Flags{LSN: "0/9800000", Timeline: "2"}, "", true, labelF2, nil},
		{26, two, Flags{LSN: "0/7000000", Timeline: "2"}, "", true, labelI, nil},
		{27, two, Flags{LSN: "0/A800000", Timeline: "1"}, "", false, "", ErrOutsideWindow},
		{28, two, Flags{LSN: "0/A800000", Timeline: "2"}, "", true, labelF2, nil},
		{29, two, Flags{Time: "2026-11-30T04:57:20Z", Timeline: "latest"}, "", true, labelF2, nil},
		{30, two, Flags{Time: "2026-11-30T04:57:18.5Z", Timeline: "2"}, "", true, labelI, nil},
		{31, two, Flags{XID: "725", Timeline: "1"}, "", true, "", ErrBackupSetNeeded},
		{32, two, Flags{XID: "725", Timeline: "1"}, labelI, true, labelI, nil},
		{33, two, Flags{XID: "725", Timeline: "2"}, labelD, true, "", ErrUnknownBackup},
		{34, two, Flags{XID: "725"}, labelF, true, "", ErrTimelineNotSet},
		{35, two, Flags{XID: "725"}, labelD, true, labelD, nil},
		{36, two, Flags{Immediate: true, Timeline: "1"}, "", true, labelD, nil},
		{37, two, Flags{Latest: true, Timeline: "latest"}, "", true, labelF2, nil},
		{38, two, Flags{LSN: "0/9800000", Timeline: "3"}, "", false, "", ErrOutsideWindow},
		{39, two, Flags{LSN: "0/A800000"}, labelD, true, "", ErrOutsideWindow},
	}
	for _, c := range cases {
		tg := mustParse(t, c.in)
		if err := Check(tg, c.windows); (err == nil) != c.checkOK {
			t.Errorf("case %d: Check %v", c.n, err)
		} else if err != nil {
			var oe *OutsideWindowError
			if !errors.As(err, &oe) || !errors.Is(err, ErrOutsideWindow) {
				t.Errorf("case %d: Check error %T %v", c.n, err, err)
			}
		}
		ch, err := SelectBackup(tg, c.set, c.windows)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("case %d: SelectBackup %v, want %v", c.n, err, c.err)
		case c.err == nil && err != nil:
			t.Errorf("case %d: SelectBackup %v", c.n, err)
		case c.err == nil && ch.Backup.Label != c.want:
			t.Errorf("case %d: chose %s, want %s", c.n, ch.Backup.Label, c.want)
		}
	}
}

// TestOutsideWindowMessage: the refusal states every window, so the user can choose.
func TestOutsideWindowMessage(t *testing.T) {
	two := windowsOf(t, "info-two-timelines.json", true)
	err := Check(mustParse(t, Flags{Time: "2026-11-29 10:00:00-05:30"}), two)
	want := "--target-time 2026-11-29 15:30:00+00: target outside the recoverable window" +
		"; timeline 1: from 2026-11-30 04:56:58+00 (LSN 0/3000050, stop of backup " + labelF + ") to LSN 0/A000000 (last WAL a backup needed; later WAL of this timeline is not shown by pgbackrest info)" +
		"; timeline 2: from 2026-11-30 04:56:58+00 (LSN 0/3000050, stop of backup " + labelF + ") to LSN 0/B000000 (end of archived WAL)" +
		"; a target time must be at least one second after a backup's stop (pgBackRest records whole seconds)," +
		" and a time after the last archived commit cannot be proven reachable from pgbackrest info alone"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	err = Check(mustParse(t, Flags{LSN: "0/1", Timeline: "5"}), two)
	if err == nil || !strings.Contains(err.Error(), "there is no usable backup on timeline 5; timeline 1: from") {
		t.Errorf("%v", err)
	}
	err = Check(mustParse(t, Flags{Latest: true}), nil)
	if err == nil || err.Error() != "--latest: target outside the recoverable window; there is no usable backup" {
		t.Errorf("%v", err)
	}
}

// TestNewestTimelineWithoutBackup: right after a PITR the new timeline has archived WAL but no
// backup of its own (synthesized: the real timeline-2 backup removed). Without the history
// "latest" must still mean timeline 2, and be refused; with it, timeline-1 backups before the
// branch point serve timeline 2.
func TestNewestTimelineWithoutBackup(t *testing.T) {
	s := loadStanza(t, "info-two-timelines.json")
	s.Backup = s.Backup[:3]
	ws, err := Windows(s, WindowOptions{})
	if err != nil || len(ws) != 2 || ws[1].Timeline != 2 || len(ws[1].Backups) != 0 || ws[1].End != 0xB000000 {
		t.Fatalf("%+v %v", ws, err)
	}
	latest := mustParse(t, Flags{Latest: true, Timeline: "latest"})
	err = Check(latest, ws)
	if !errors.Is(err, ErrOutsideWindow) ||
		!strings.Contains(err.Error(), "timeline 2: archived WAL to LSN 0/B000000 but no backup usable on it") {
		t.Errorf("%v", err)
	}
	if _, err := SelectBackup(latest, "", ws); !errors.Is(err, ErrOutsideWindow) {
		t.Errorf("select: %v", err)
	}
	ws, err = Windows(s, WindowOptions{History: loadHistory(t)})
	if err != nil || len(ws) != 2 || backupLabels(ws[1]) != labelF+","+labelI {
		t.Fatalf("with history: %+v %v", ws, err)
	}
	ch, err := SelectBackup(latest, "", ws)
	if err != nil || ch.Backup.Label != labelI || ch.Window.Timeline != 2 {
		t.Errorf("with history: %+v %v", ch, err)
	}
}

// FuzzWindows: no document pgbackrest info could print makes Windows, Check or SelectBackup
// panic.
func FuzzWindows(f *testing.F) {
	for _, file := range []string{"info-one-timeline.json", "info-two-timelines.json"} {
		doc, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc, "0/5000000", "1\t0/7025E88\tx\n")
	}
	f.Fuzz(func(t *testing.T, doc []byte, lsn, history string) {
		in, err := ParseInfo(doc)
		if err != nil {
			return
		}
		h, _ := ParseHistory(history)
		for _, s := range in {
			ws, err := Windows(s, WindowOptions{History: h})
			if err != nil {
				continue
			}
			for _, fl := range []Flags{{LSN: lsn}, {Latest: true, Timeline: "latest"}, {Immediate: true, Timeline: "1"}, {Time: "2026-11-30T04:57:00Z"}} {
				tg, err := Parse(fl)
				if err != nil {
					continue
				}
				_ = Check(tg, ws)
				_, _ = SelectBackup(tg, "", ws)
				if len(ws) > 0 && len(ws[0].Backups) > 0 {
					_, _ = SelectBackup(tg, ws[0].Backups[0].Label, ws)
				}
				for _, w := range ws {
					_ = w.String()
				}
			}
		}
	})
}
