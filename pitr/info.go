package pitr

import (
	"encoding/json"
	"fmt"
	"time"
)

// Info is the document `pgbackrest info --output=json` prints: one entry per stanza. The field
// set is the one pgBackRest 2.45 prints (see testdata/info-*.json); fields pigwf does not use are
// left out.
type Info []Stanza

// Stanza is one stanza's backups and archive.
type Stanza struct {
	Name    string          `json:"name"`
	Status  Status          `json:"status"`
	Cipher  string          `json:"cipher"`
	DB      []StanzaDB      `json:"db"`
	Archive []ArchiveRange  `json:"archive"`
	Backup  []Backup        `json:"backup"`
	Repo    []RepoStatusRow `json:"repo"`
}

// Status is a stanza's or repository's health: code 0 is "ok".
type Status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Lock    *struct {
		Backup struct {
			Held bool `json:"held"`
		} `json:"backup"`
	} `json:"lock,omitempty"`
}

// StatusOK is pgBackRest's code for a healthy stanza or repository.
const StatusOK = 0

// RepoStatusRow is one repository's status inside a stanza.
type RepoStatusRow struct {
	Key    int    `json:"key"`
	Cipher string `json:"cipher"`
	Status Status `json:"status"`
}

// StanzaDB is one database history entry: a new one appears after stanza-upgrade (a new
// PostgreSQL major version or system identifier).
type StanzaDB struct {
	ID       int    `json:"id"`
	RepoKey  int    `json:"repo-key"`
	SystemID uint64 `json:"system-id"`
	Version  string `json:"version"`
}

// DBRef points a backup or archive range at a StanzaDB.
type DBRef struct {
	ID      int `json:"id"`
	RepoKey int `json:"repo-key"`
}

// ArchiveRange is the archived WAL of one database id ("15-1": version 15, db id 1): the
// lowest and highest segment names. It is not split by timeline, and says nothing about gaps or
// about time.
type ArchiveRange struct {
	ID       string `json:"id"`
	Database DBRef  `json:"database"`
	Min      string `json:"min"`
	Max      string `json:"max"`
}

// BackupType is full, diff or incr.
type BackupType string

const (
	BackupFull BackupType = "full"
	BackupDiff BackupType = "diff"
	BackupIncr BackupType = "incr"
)

// Backup is one backup set.
type Backup struct {
	Label     string     `json:"label"`
	Type      BackupType `json:"type"`
	Prior     *string    `json:"prior"`
	Reference []string   `json:"reference"`
	Error     bool       `json:"error"`
	Database  DBRef      `json:"database"`
	// Annotation is the backup's key/value annotations (backup --annotation): pigwf's runs name
	// themselves in one (activities.BackupAnnotation).
	Annotation map[string]string `json:"annotation,omitempty"`
	Timestamp  struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	// Archive is the first and last WAL segment the backup needs to be consistent.
	Archive struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	// LSN is the backup's start and stop position (present in 2.45's output; absent in old
	// backups made by versions before it was recorded, hence the pointer).
	LSN *struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"lsn,omitempty"`
	Backrest struct {
		Format  int    `json:"format"`
		Version string `json:"version"`
	} `json:"backrest"`
	Info struct {
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size  int64 `json:"size"`
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
}

// StartTime and StopTime are the backup's timestamps. pgBackRest records whole seconds,
// truncated: the real stop lies in [StopTime, StopTime+1s).
func (b Backup) StartTime() time.Time { return time.Unix(b.Timestamp.Start, 0).UTC() }
func (b Backup) StopTime() time.Time  { return time.Unix(b.Timestamp.Stop, 0).UTC() }

// ParseInfo decodes `pgbackrest info --output=json`.
func ParseInfo(doc []byte) (Info, error) {
	var in Info
	if err := json.Unmarshal(doc, &in); err != nil {
		return nil, fmt.Errorf("decode pgbackrest info JSON: %w", err)
	}
	return in, nil
}

// Stanza returns the stanza with the given name.
func (in Info) Stanza(name string) (Stanza, error) {
	for _, s := range in {
		if s.Name == name {
			return s, nil
		}
	}
	return Stanza{}, fmt.Errorf("pgbackrest info: stanza %q not listed", name)
}

// CurrentDB is the newest database history entry (the one new backups and WAL go to); ok is
// false when the stanza lists none.
func (s Stanza) CurrentDB() (db StanzaDB, ok bool) {
	for _, d := range s.DB {
		if !ok || d.ID > db.ID {
			db, ok = d, true
		}
	}
	return db, ok
}
