package activities

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pitr"
)

// ErrNoStanza: the repository has no pgBackRest stanza for the cluster.
var ErrNoStanza = errors.New("no pgBackRest stanza")

// BackupInfo is what the repository says about a cluster's stanza: `pgbackrest info` and the
// timeline history that places its backups and archive on timelines.
type BackupInfo struct {
	Stanza pitr.Stanza
	// History is the history file of timeline HistoryOf, nil for timeline 1 or when it could
	// not be read (Note says why).
	History   []pitr.Switch
	HistoryOf uint32
	Note      string
}

// backupInfoTimeout bounds each command: pgbackrest info reads only the repository's manifests.
const backupInfoTimeout = 30 * time.Second

// ReadBackupInfo runs `pgbackrest info` for the stanza (the cluster's name) on node, over SSH,
// and reads the history file of timeline tl from the repository's archive
// (<repo>/archive/<stanza>/<archive id>/NNNNNNNN.history); tl 0 means the newest archived
// timeline. `pigwf backup list` and PITRRestore's precheck both read the repository here.
func ReadBackupInfo(ctx context.Context, r Remote, node Node, stanza, repoPath string, tl uint32) (BackupInfo, error) {
	res, err := r.Run(ctx, node.Target(), sshrun.Command{Script: "runuser -u postgres -- pgbackrest --stanza=" + sshrun.ShellQuote(stanza) + " --output=json info", Timeout: backupInfoTimeout})
	if err != nil {
		// sshrun's errors name the fix (known_hosts, credentials) themselves.
		return BackupInfo{}, fmt.Errorf("%s: while running pgbackrest info over SSH: %w", node, err)
	}
	if err := res.Err(); err != nil {
		return BackupInfo{}, fmt.Errorf("%s: pgbackrest info: %w; check that pgBackRest and /etc/pgbackrest.conf are there (pg-cluster-create installs both)", node, err)
	}
	info, err := pitr.ParseInfo([]byte(res.Stdout))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%s: %w", node, err)
	}
	s, err := info.Stanza(stanza)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%s: %w", node, err)
	}
	if len(s.DB) == 0 {
		return BackupInfo{}, fmt.Errorf("%s: %w %s in the repository (%s): %s; create it with `pigwf start pg-cluster-create --cluster %s`",
			node, ErrNoStanza, stanza, repoPath, s.Status.Message, stanza)
	}
	out := BackupInfo{Stanza: s}
	na, ok, _ := pitr.NewestArchived(s)
	if tl == 0 && ok {
		tl = na.Segment.Timeline
	}
	db, _ := s.CurrentDB()
	if tl <= 1 {
		return out, nil
	}
	archiveID := fmt.Sprintf("%s-%d", db.Version, db.ID)
	if ok {
		archiveID = na.ArchiveID
	}
	file := path.Join(repoPath, "archive", stanza, archiveID, fmt.Sprintf("%08X.history", tl))
	hres, err := r.Run(ctx, node.Target(), sshrun.Command{Script: "runuser -u postgres -- cat " + sshrun.ShellQuote(file), Timeout: backupInfoTimeout})
	if err == nil {
		err = hres.Err()
	}
	if err == nil {
		out.History, err = pitr.ParseHistory(hres.Stdout)
	}
	if err != nil {
		out.History = nil
		out.Note = fmt.Sprintf("could not read %s on %s (%v): windows leave out backups of earlier timelines and their branch points", file, node, err)
		return out, nil
	}
	out.HistoryOf = tl
	return out, nil
}
