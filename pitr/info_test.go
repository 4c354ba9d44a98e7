package pitr

import (
	"os"
	"path/filepath"
	"testing"
)

func loadStanza(t *testing.T, file string) Stanza {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInfo(doc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := in.Stanza("pitr")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadHistory(t *testing.T) []Switch {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", "two-timelines-00000002.history"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHistory(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestParseInfoReal reads what pgBackRest 2.45 printed for the fixture stanza.
func TestParseInfoReal(t *testing.T) {
	s := loadStanza(t, "info-one-timeline.json")
	if s.Status.Code != StatusOK || s.Status.Message != "ok" || s.Status.Lock == nil || s.Status.Lock.Backup.Held {
		t.Errorf("status %+v", s.Status)
	}
	db, ok := s.CurrentDB()
	if !ok || db.ID != 1 || db.Version != "15" || db.SystemID != 7713824018660379032 {
		t.Errorf("db %+v", db)
	}
	if len(s.Archive) != 1 || s.Archive[0].ID != "15-1" || s.Archive[0].Min != "000000010000000000000001" ||
		s.Archive[0].Max != "00000001000000000000000A" || s.Archive[0].Database.ID != 1 {
		t.Errorf("archive %+v", s.Archive)
	}
	if len(s.Backup) != 3 {
		t.Fatalf("%d backups", len(s.Backup))
	}
	f, i, d := s.Backup[0], s.Backup[1], s.Backup[2]
	if f.Label != "20261130-045654F" || f.Type != BackupFull || f.Prior != nil || f.Error {
		t.Errorf("full %+v", f)
	}
	if f.StartTime().Format("15:04:05") != "04:56:54" || f.StopTime().Format("2006-01-02 15:04:05") != "2026-11-30 04:56:58" {
		t.Errorf("full times %s %s", f.StartTime(), f.StopTime())
	}
	if f.Archive.Start != "000000010000000000000002" || f.Archive.Stop != "000000010000000000000003" ||
		f.LSN == nil || f.LSN.Start != "0/2000028" || f.LSN.Stop != "0/3000050" {
		t.Errorf("full wal %+v %+v", f.Archive, f.LSN)
	}
	if i.Type != BackupIncr || i.Prior == nil || *i.Prior != f.Label || len(i.Reference) != 1 || i.Reference[0] != f.Label {
		t.Errorf("incr %+v", i)
	}
	if d.Type != BackupDiff || d.Label != "20261130-045654F_20261130-045703D" || d.Backrest.Version != "2.45" || d.Info.Size == 0 {
		t.Errorf("diff %+v", d)
	}
	if _, err := (Info{s}).Stanza("other"); err == nil {
		t.Error("unknown stanza found")
	}
	if _, err := ParseInfo([]byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}

	two := loadStanza(t, "info-two-timelines.json")
	if two.Archive[0].Max != "00000002000000000000000A" || len(two.Backup) != 4 || two.Backup[3].Archive.Stop != "000000020000000000000009" {
		t.Errorf("two timelines: %+v", two.Archive)
	}
}
