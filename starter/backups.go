package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
)

// BackupList is what `pigwf backup list` shows: the stanza's backups as pgbackrest info lists
// them and the recoverable window of each timeline (pitr.Windows).
type BackupList struct {
	Cluster string `json:"cluster"`
	Stanza  string `json:"stanza"`
	// Member is the member whose pgbackrest answered.
	Member  string         `json:"member"`
	Status  string         `json:"status"` // the stanza's status message ("ok" when healthy)
	Backups []BackupRow    `json:"backups"`
	Windows []BackupWindow `json:"windows"`
	// Note says what the windows could not take into account (no timeline history read).
	Note string `json:"note,omitempty"`
}

// BackupRow is one backup set.
type BackupRow struct {
	Label    string    `json:"label"`
	Type     string    `json:"type"` // full, diff or incr
	Prior    string    `json:"prior,omitempty"`
	Start    time.Time `json:"start"`
	Stop     time.Time `json:"stop"`
	Size     int64     `json:"size,omitempty"`      // database size, bytes
	RepoSize int64     `json:"repo_size,omitempty"` // size in the repository, bytes
	Timeline uint32    `json:"timeline"`            // the timeline the backup stopped on
	WALStart string    `json:"wal_start"`
	WALStop  string    `json:"wal_stop"`
	LSNStart string    `json:"lsn_start,omitempty"`
	LSNStop  string    `json:"lsn_stop,omitempty"`
	Error    bool      `json:"error,omitempty"` // pgBackRest found errors: never used for a restore
}

// BackupWindow is what can be recovered along one timeline: from the stop of its earliest usable
// backup to the end of the WAL known to be archived on it. From is nil when no backup serves the
// timeline (then nothing on it can be recovered).
type BackupWindow struct {
	Timeline   uint32     `json:"timeline"`
	From       *time.Time `json:"from,omitempty"` // whole seconds, truncated, as pgBackRest records it
	FromLSN    string     `json:"from_lsn,omitempty"`
	FromBackup string     `json:"from_backup,omitempty"`
	Backups    []string   `json:"backups"` // labels of the backups usable on this timeline
	EndLSN     string     `json:"end_lsn"`
	// EndKnownBy says how the end is known (archive-max, branch-point or backup-wal); EndNote
	// says it in words. pgbackrest info gives no time for the end, only a WAL position.
	EndKnownBy string `json:"end_known_by"`
	EndNote    string `json:"end_note"`
}

// endKinds are the stable names of pitr.EndSource in --json output.
var endKinds = map[pitr.EndSource]string{
	pitr.EndArchiveMax:  "archive-max",
	pitr.EndSwitchPoint: "branch-point",
	pitr.EndBackupWAL:   "backup-wal",
}

// BuildBackupList turns pgbackrest info for the stanza into a BackupList. history is the timeline
// history file of the newest archived timeline, nil when it is timeline 1 or could not be read
// (then backups of an ancestor timeline do not count for the newest one, and an ancestor's
// window ends at its last backup's WAL, not at its branch point).
func BuildBackupList(cluster, member string, bi activities.BackupInfo) (BackupList, error) {
	s := bi.Stanza
	l := BackupList{Note: bi.Note, Cluster: cluster, Stanza: s.Name, Member: member, Status: s.Status.Message,
		Backups: []BackupRow{}, Windows: []BackupWindow{}}
	for _, b := range s.Backup {
		r := BackupRow{Label: b.Label, Type: string(b.Type), Start: b.StartTime(), Stop: b.StopTime(),
			Size: b.Info.Size, RepoSize: b.Info.Repository.Size, WALStart: b.Archive.Start, WALStop: b.Archive.Stop, Error: b.Error}
		if b.Prior != nil {
			r.Prior = *b.Prior
		}
		if seg, err := pitr.ParseSegment(b.Archive.Stop); err == nil {
			r.Timeline = seg.Timeline
		}
		if b.LSN != nil {
			r.LSNStart, r.LSNStop = b.LSN.Start, b.LSN.Stop
		}
		l.Backups = append(l.Backups, r)
	}
	if len(s.DB) == 0 {
		return l, nil // a stanza with no database yet has no backups and no archive
	}
	ws, err := pitr.Windows(s, pitr.WindowOptions{History: bi.History})
	if err != nil {
		return BackupList{}, fmt.Errorf("while computing the recoverable windows of stanza %s: %w", s.Name, err)
	}
	for _, w := range ws {
		bw := BackupWindow{Timeline: w.Timeline, Backups: []string{}, EndLSN: w.End.String(),
			EndKnownBy: endKinds[w.EndSource], EndNote: w.EndSource.String()}
		for _, b := range w.Backups {
			bw.Backups = append(bw.Backups, b.Label)
		}
		if len(w.Backups) > 0 {
			from := w.StartTime
			bw.From, bw.FromLSN, bw.FromBackup = &from, w.StartLSN.String(), w.Backups[0].Label
		} else {
			bw.EndNote = "no backup usable on this timeline: nothing on it can be recovered"
		}
		l.Windows = append(l.Windows, bw)
	}
	return l, nil
}

// ListBackups asks the cluster's members in inventory order, over SSH, for the repository's view
// of the stanza (activities.ReadBackupInfo: pgbackrest info and the newest timeline's history, so
// windows on a branched timeline count the backups of its ancestors) and builds the list from the
// first that answers: the repository is shared or reachable from every member.
func ListBackups(ctx context.Context, cl *inventory.Cluster) (BackupList, error) {
	if len(cl.Hosts) == 0 {
		return BackupList{}, fmt.Errorf("cluster %s has no hosts in the inventory", cl.Name)
	}
	runner := sshrun.New(sshrun.Options{Logger: slog.New(slog.DiscardHandler)})
	defer runner.Close()
	var failures []string
	for _, h := range cl.Hosts {
		node := NodeOf(h)
		bi, err := activities.ReadBackupInfo(ctx, runner, node, cl.Name, cl.PG.BackupRepoPath, 0)
		if err == nil {
			l, err := BuildBackupList(cl.Name, node.String(), bi)
			if err != nil {
				return BackupList{}, fmt.Errorf("%s: %w", node, err)
			}
			return l, nil
		}
		if errors.Is(err, activities.ErrNoStanza) {
			return BackupList{}, err // the repository is shared: another member would say the same
		}
		failures = append(failures, err.Error())
	}
	return BackupList{}, fmt.Errorf("no member of %s answered pgbackrest info:\n  %s", cl.Name, strings.Join(failures, "\n  "))
}

// PrintBackupList writes the backups as a table like patronictl's and the windows per timeline
// below it.
func PrintBackupList(w io.Writer, l BackupList) {
	header := []string{"Backup", "Type", "Start (UTC)", "Stop (UTC)", "Size", "TL", "WAL start", "WAL stop"}
	rows := [][]string{}
	for _, b := range l.Backups {
		typ := b.Type
		if b.Error {
			typ += " (error)"
		}
		size := ""
		if b.Size > 0 {
			size = fmt.Sprintf("%.1f MB", float64(b.Size)/(1<<20))
		}
		rows = append(rows, []string{b.Label, typ, b.Start.Format(time.DateTime), b.Stop.Format(time.DateTime), size,
			fmt.Sprint(b.Timeline), b.WALStart, b.WALStop})
	}
	title := fmt.Sprintf(" Cluster: %s (stanza %s, from %s) ", l.Cluster, l.Stanza, l.Member)
	printBoxTable(w, title, header, rows, map[int]bool{4: true, 5: true})
	if l.Status != "" && l.Status != "ok" {
		fmt.Fprintln(w, " Stanza status: "+l.Status)
	}
	if len(l.Backups) == 0 {
		fmt.Fprintln(w, " No backups.")
	}
	fmt.Fprintln(w, " Recoverable windows:")
	if len(l.Windows) == 0 {
		fmt.Fprintln(w, "   none (no archived WAL)")
	}
	for _, win := range l.Windows {
		if win.From == nil {
			fmt.Fprintf(w, "   timeline %d: archived WAL to LSN %s, but %s\n", win.Timeline, win.EndLSN, win.EndNote)
			continue
		}
		fmt.Fprintf(w, "   timeline %d: from %s (LSN %s, stop of backup %s) to LSN %s (%s)\n",
			win.Timeline, pitr.FormatTime(*win.From), win.FromLSN, win.FromBackup, win.EndLSN, win.EndNote)
	}
	if l.Note != "" {
		fmt.Fprintln(w, " Note: "+l.Note)
	}
}
