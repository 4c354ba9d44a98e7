package pitr

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// WindowOptions are what Windows needs besides pgbackrest info.
type WindowOptions struct {
	// SegmentSize is the cluster's WAL segment size; 0 means DefaultSegmentSize.
	SegmentSize uint64
	// History is the timeline history file of the newest archived timeline (the timeline of the
	// archive's max segment), nil when unknown. With it, backups taken on an ancestor timeline
	// before the branch point also serve the newest timeline, and an ancestor's archive is known
	// to reach its branch point.
	History []Switch
}

// EndSource says how a window's end is known.
type EndSource int

const (
	// EndArchiveMax: the archive's highest segment is on this timeline; WAL is archived to the
	// end of that segment (pgBackRest does not report gaps; `pgbackrest check` does).
	EndArchiveMax EndSource = iota + 1
	// EndSwitchPoint: an ancestor timeline, known from the history to reach its branch point.
	EndSwitchPoint
	// EndBackupWAL: only the WAL a backup of this timeline needed is known to be archived.
	EndBackupWAL
)

func (s EndSource) String() string {
	switch s {
	case EndArchiveMax:
		return "end of archived WAL"
	case EndSwitchPoint:
		return "branch point in the timeline history; later WAL of this timeline is not shown by pgbackrest info"
	case EndBackupWAL:
		return "last WAL a backup needed; later WAL of this timeline is not shown by pgbackrest info"
	}
	return fmt.Sprintf("EndSource(%d)", int(s))
}

// Window is what can be recovered along one timeline (recovery_target_timeline = Timeline):
// from the stop of its earliest usable backup to the end of the archived WAL known on it. A
// window with no Backups (only ever the newest timeline's) can recover nothing.
// Times are known only at the start: pgbackrest info gives no time for the end of the archive.
type Window struct {
	Timeline uint32
	// Backups usable on this timeline, oldest stop first: taken on it, or (with history) on an
	// ancestor before the branch point.
	Backups []UsableBackup
	// StartTime and StartLSN are the stop of Backups[0]. StartTime is in whole seconds,
	// truncated, as pgBackRest records it.
	StartTime time.Time
	StartLSN  LSN
	// End is the first position after the WAL known to be archived on this timeline.
	End       LSN
	EndSource EndSource
}

// UsableBackup is a backup with where it becomes consistent.
type UsableBackup struct {
	Backup
	// Timeline is the timeline the backup stopped on (from its stop segment).
	Timeline uint32
	// StopLSN is the backup's stop LSN, or the end of its stop segment when none is recorded.
	StopLSN LSN
}

// String states the window for a user choosing a target.
func (w Window) String() string {
	if len(w.Backups) == 0 {
		return fmt.Sprintf("timeline %d: archived WAL to LSN %s but no backup usable on it"+
			" (backups of earlier timelines count only with its timeline history)", w.Timeline, w.End)
	}
	return fmt.Sprintf("timeline %d: from %s (LSN %s, stop of backup %s) to LSN %s (%s)",
		w.Timeline, FormatTime(w.StartTime), w.StartLSN, w.Backups[0].Label, w.End, w.EndSource)
}

// backupStop is where a backup becomes consistent: its stop LSN, or when an old backup has no
// LSN recorded, the end of its stop segment (later than the real stop, so never too early).
func backupStop(b Backup, segSize uint64) (Segment, LSN, error) {
	seg, err := ParseSegment(b.Archive.Stop)
	if err != nil {
		return Segment{}, 0, fmt.Errorf("backup %s archive stop: %w", b.Label, err)
	}
	if b.LSN != nil && b.LSN.Stop != "" {
		l, err := ParseLSN(b.LSN.Stop)
		if err != nil {
			return Segment{}, 0, fmt.Errorf("backup %s lsn stop: %w", b.Label, err)
		}
		return seg, l, nil
	}
	return seg, seg.End(segSize), nil
}

// Windows computes the recoverable window of every timeline that has a usable backup, oldest
// timeline first, and of the newest archived timeline even without one (Backups empty). Only backups of the stanza's current database (after any stanza-upgrade) and
// without error count.
func Windows(s Stanza, opt WindowOptions) ([]Window, error) {
	db, ok := s.CurrentDB()
	if !ok {
		return nil, fmt.Errorf("stanza %s lists no database", s.Name)
	}
	segSize := opt.SegmentSize
	if segSize == 0 {
		segSize = DefaultSegmentSize
	}
	type stop struct {
		UsableBackup
		end LSN // end of the stop segment: WAL archived at least this far on the backup's timeline
	}
	var stops []stop
	for _, b := range s.Backup {
		if b.Error || b.Database.ID != db.ID {
			continue
		}
		seg, l, err := backupStop(b, segSize)
		if err != nil {
			return nil, err
		}
		stops = append(stops, stop{UsableBackup{b, seg.Timeline, l}, seg.End(segSize)})
	}
	var newest uint32
	var newestEnd LSN
	if na, ok, err := NewestArchived(s); err != nil {
		return nil, err
	} else if ok {
		newest, newestEnd = na.Segment.Timeline, na.Segment.End(segSize)
	}

	timelines := map[uint32]bool{}
	for _, st := range stops {
		timelines[st.Timeline] = true
	}
	if newest != 0 {
		timelines[newest] = true
	}
	var out []Window
	for tl := range timelines {
		w := Window{Timeline: tl}
		switch {
		case tl == newest:
			w.End, w.EndSource = newestEnd, EndArchiveMax
		case isAncestor(opt.History, tl):
			w.End, _ = branchPoint(opt.History, tl)
			w.EndSource = EndSwitchPoint
		}
		for _, st := range stops {
			usable := st.Timeline == tl
			// A backup on an ancestor of the newest timeline, consistent before the branch
			// point, replays into the newest timeline by following the history.
			if !usable && tl == newest && isAncestor(opt.History, st.Timeline) {
				at, _ := branchPoint(opt.History, st.Timeline)
				usable = st.StopLSN <= at
			}
			if !usable {
				continue
			}
			w.Backups = append(w.Backups, st.UsableBackup)
			if st.Timeline == tl && tl != newest && st.end > w.End {
				w.End, w.EndSource = st.end, EndBackupWAL
			}
		}
		if len(w.Backups) == 0 {
			// The newest timeline is listed even with no usable backup, so that "latest" means
			// it and a refusal says why, rather than quietly meaning an older timeline.
			if tl == newest {
				out = append(out, w)
			}
			continue
		}
		sort.SliceStable(w.Backups, func(i, j int) bool { return w.Backups[i].StopLSN < w.Backups[j].StopLSN })
		w.StartLSN, w.StartTime = w.Backups[0].StopLSN, w.Backups[0].StopTime()
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timeline < out[j].Timeline })
	return out, nil
}

// TimelineForLSN returns the timeline on which position l lies in the history of the newest
// timeline: the first ancestor whose branch point is after l, else newest. This is the default
// target timeline for an LSN target (never a silent "latest").
func TimelineForLSN(history []Switch, newest uint32, l LSN) uint32 {
	for _, s := range history {
		if l < s.At {
			return s.Parent
		}
	}
	return newest
}

// ErrOutsideWindow: the target lies outside every recoverable window (errors.Is with an
// *OutsideWindowError).
var ErrOutsideWindow = errors.New("target outside the recoverable window")

// OutsideWindowError is a target no backup and archived WAL can reach, with the windows the user
// can choose from.
type OutsideWindowError struct {
	Target  Target
	Windows []Window
}

func (e *OutsideWindowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Target, ErrOutsideWindow)
	if tl := e.Target.Timeline; tl.Kind == TimelineID && len(candidates(e.Target, e.Windows)) == 0 {
		fmt.Fprintf(&b, "; there is no usable backup on timeline %d", tl.ID)
	}
	if len(e.Windows) == 0 {
		b.WriteString("; there is no usable backup")
	}
	for _, w := range e.Windows {
		b.WriteString("; ")
		b.WriteString(w.String())
	}
	if e.Target.Kind == KindTime && len(e.Windows) > 0 {
		b.WriteString("; a target time must be at least one second after a backup's stop (pgBackRest records whole seconds)," +
			" and a time after the last archived commit cannot be proven reachable from pgbackrest info alone")
	}
	return b.String()
}

func (e *OutsideWindowError) Is(target error) bool { return target == ErrOutsideWindow }

// candidates are the windows the target's timeline allows: one for a given id or "latest",
// all of them while the timeline is still to be chosen (or "current", which depends on the
// backup restored).
func candidates(t Target, windows []Window) []Window {
	switch t.Timeline.Kind {
	case TimelineID:
		for _, w := range windows {
			if w.Timeline == t.Timeline.ID {
				return []Window{w}
			}
		}
		return nil
	case TimelineLatest:
		if len(windows) == 0 {
			return nil
		}
		return windows[len(windows)-1:]
	}
	return windows
}

// stoppedBefore says whether backup b is consistent before target t can be reached. Time: the
// recorded stop is truncated to the second, so the real stop may be up to a second later.
// xid, name, immediate and latest cannot be placed from pgbackrest info: any backup may do.
func stoppedBefore(b UsableBackup, t Target) bool {
	switch t.Kind {
	case KindTime:
		return !b.StopTime().Add(time.Second).After(t.Time)
	case KindLSN:
		return b.StopLSN <= t.LSN
	}
	return true
}

// inside says whether target t can be reached in window w.
func inside(t Target, w Window) bool {
	if len(w.Backups) == 0 || !stoppedBefore(w.Backups[0], t) {
		return false
	}
	if t.Kind == KindLSN {
		// A record at the target may run into the next segment, so the target must lie before
		// the end of the archived WAL, not at it.
		return t.LSN < w.End
	}
	return true
}

// Check returns nil when the target lies inside a recoverable window its timeline allows, else an
// *OutsideWindowError listing those windows (all windows when the timeline allows none).
// An xid or a restore point name cannot be placed from pgbackrest info; for them Check only
// requires a usable backup, and SelectBackup requires --backup-set.
func Check(t Target, windows []Window) error {
	cands := candidates(t, windows)
	for _, w := range cands {
		if inside(t, w) {
			return nil
		}
	}
	return &OutsideWindowError{Target: t, Windows: windows}
}

// Archived is the newest archived WAL segment of a stanza's current database, and the archive
// (repository directory) that holds it.
type Archived struct {
	ArchiveID string
	Segment   Segment
}

// NewestArchived finds the newest archived WAL of the stanza's current database: with several
// repositories each lists its own range, and the highest max (timeline first, then position, as
// segment names sort) is the newest. ok is false when nothing is archived.
func NewestArchived(s Stanza) (a Archived, ok bool, err error) {
	db, found := s.CurrentDB()
	if !found {
		return a, false, nil
	}
	var maxName string
	for _, r := range s.Archive {
		if r.Database.ID != db.ID || r.Max == "" {
			continue
		}
		seg, err := ParseSegment(r.Max)
		if err != nil {
			return Archived{}, false, fmt.Errorf("archive %s max: %w", r.ID, err)
		}
		if r.Max > maxName {
			maxName, a, ok = r.Max, Archived{ArchiveID: r.ID, Segment: seg}, true
		}
	}
	return a, ok, nil
}
