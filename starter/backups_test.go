package starter

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/pitr"
)

// fixtureInfo is the repository's view of stanza "pitr" in a real pgbackrest info document,
// with history as the newest timeline's history (nil: none read).
func fixtureInfo(t *testing.T, name string, history []pitr.Switch) activities.BackupInfo {
	t.Helper()
	doc, err := os.ReadFile("../pitr/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := pitr.ParseInfo(doc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := info.Stanza("pitr")
	if err != nil {
		t.Fatal(err)
	}
	return activities.BackupInfo{Stanza: s, History: history}
}

// One timeline: every backup is listed with its WAL, LSNs and timeline, and the window on
// timeline 1 starts at the stop of the first full backup and ends at the archive's max segment.
func TestBuildBackupListOneTimeline(t *testing.T) {
	l, err := BuildBackupList("pitr", "pg-test-1 (10.0.0.1)", fixtureInfo(t, "info-one-timeline.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 3 {
		t.Fatalf("backups: %+v", l.Backups)
	}
	f := l.Backups[0]
	if f.Label != "20261130-045654F" || f.Type != "full" || f.Timeline != 1 || f.WALStart != "000000010000000000000002" ||
		f.WALStop != "000000010000000000000003" || f.LSNStop != "0/3000050" || f.Size != 22992622 ||
		!f.Stop.Equal(time.Unix(1796014618, 0)) || !f.Start.Equal(time.Unix(1796014614, 0)) {
		t.Errorf("full backup row: %+v", f)
	}
	if l.Backups[1].Prior != f.Label || l.Backups[1].Type != "incr" {
		t.Errorf("incremental backup row: %+v", l.Backups[1])
	}
	if len(l.Windows) != 1 {
		t.Fatalf("windows: %+v", l.Windows)
	}
	w := l.Windows[0]
	if w.Timeline != 1 || w.From == nil || !w.From.Equal(f.Stop) || w.FromLSN != "0/3000050" || w.FromBackup != f.Label ||
		w.EndLSN != "0/B000000" || w.EndKnownBy != "archive-max" || len(w.Backups) != 3 {
		t.Errorf("window: %+v", w)
	}

	var buf bytes.Buffer
	PrintBackupList(&buf, l)
	out := buf.String()
	for _, want := range []string{
		"+ Cluster: pitr (stanza pitr, from pg-test-1 (10.0.0.1)) ",
		"| Backup ", "| 20261130-045654F ", "| full ", "| 20261130-045654F_20261130-045659I | incr ",
		"2026-11-30 04:56:58", "21.9 MB", "000000010000000000000003",
		" Recoverable windows:\n   timeline 1: from 2026-11-30 04:56:58+00 (LSN 0/3000050, stop of backup 20261130-045654F) to LSN 0/B000000 (end of archived WAL)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Every table line is as wide as the rules.
	lines := strings.Split(out, "\n")
	for _, ln := range lines[:3+len(l.Backups)+1] {
		if len(ln) != len(lines[0]) {
			t.Errorf("ragged table line %q (want width %d):\n%s", ln, len(lines[0]), out)
		}
	}

	// --json keeps what the table shows, under stable names.
	body, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"label":"20261130-045654F"`, `"wal_stop":"000000010000000000000003"`, `"end_known_by":"archive-max"`, `"from_lsn":"0/3000050"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("JSON lacks %s: %s", want, body)
		}
	}
}

// Two timelines: with the newest timeline's history, its window starts at the first full backup
// of timeline 1 (stopped before the branch point); without it, timeline 2 starts only at its own
// backup. Timeline 1's diff backup stopped after the branch point, so its end is that backup's
// WAL either way.
func TestBuildBackupListTwoTimelines(t *testing.T) {
	text, err := os.ReadFile("../pitr/testdata/two-timelines-00000002.history")
	if err != nil {
		t.Fatal(err)
	}
	history, err := pitr.ParseHistory(string(text))
	if err != nil {
		t.Fatal(err)
	}
	info := fixtureInfo(t, "info-two-timelines.json", history)
	if na, ok, err := pitr.NewestArchived(info.Stanza); err != nil || !ok || na.ArchiveID != "15-1" || na.Segment.Timeline != 2 {
		t.Errorf("NewestArchived = %+v, %v, %v; want 15-1 on timeline 2", na, ok, err)
	}
	with, err := BuildBackupList("pitr", "m", info)
	if err != nil {
		t.Fatal(err)
	}
	without, err := BuildBackupList("pitr", "m", fixtureInfo(t, "info-two-timelines.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	last := func(l BackupList) BackupWindow { return l.Windows[len(l.Windows)-1] }
	if w := last(with); w.Timeline != 2 || w.FromBackup != "20261130-045654F" || w.EndKnownBy != "archive-max" {
		t.Errorf("timeline 2 with history: %+v", w)
	}
	if w := last(without); w.Timeline != 2 || w.FromBackup != "20261130-045713F" {
		t.Errorf("timeline 2 without history: %+v", w)
	}
	if w := with.Windows[0]; w.Timeline != 1 || w.EndKnownBy != "backup-wal" || w.EndLSN != "0/A000000" {
		t.Errorf("timeline 1 with history: %+v", w)
	}
	if w := without.Windows[0]; w.Timeline != 1 || w.EndKnownBy != "backup-wal" {
		t.Errorf("timeline 1 without history: %+v", w)
	}
	var buf bytes.Buffer
	PrintBackupList(&buf, with)
	if !strings.Contains(buf.String(), "   timeline 2: from ") || strings.Count(buf.String(), "|  2 | 00000002") != 1 {
		t.Errorf("table:\n%s", buf.String())
	}
}
