package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/pigwf/pigwf/pitr"
)

// ArchiveWait bounds the wait for the archiver to push a switched segment.
const ArchiveWait = 60 * time.Second

// switchAndArchive switches the primary on node to a new WAL segment and waits until the
// archiver reports the segment it left archived, so the archive holds every commit made before
// the switch. It returns that segment's name. Only on a primary.
func (a *Activities) switchAndArchive(ctx context.Context, node Node, port int) (string, error) {
	seg, err := a.psql(ctx, node, port, "postgres", "SELECT pg_walfile_name(pg_switch_wal());")
	if err != nil {
		return "", fmt.Errorf("switching WAL on %s: %w", node, err)
	}
	if last, err := WaitArchived(ctx, a.Remote, node, port, seg); err != nil {
		return seg, fmt.Errorf("WAL %s on %s was not archived within %s (last archived: %q, %v): see pg_stat_archiver and the PostgreSQL log there",
			seg, node, ArchiveWait, last, err)
	}
	return seg, nil
}

// ErrNotArchived: the archiver did not report the segment archived within ArchiveWait.
var ErrNotArchived = fmt.Errorf("not archived within %s", ArchiveWait)

// WaitArchived waits, at most ArchiveWait, until the archiver of the primary on node reports
// walFile archived (pitr.ArchivedPast), heartbeating when run in an activity; it returns the last
// archived file it saw. The one wait for the archiver: PITR's steps and `pigwf restore-point`.
func WaitArchived(ctx context.Context, r Remote, node Node, port int, walFile string) (string, error) {
	deadline := time.Now().Add(ArchiveWait)
	last := ""
	for {
		out, err := psqlOn(ctx, r, node, port, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")
		if err == nil {
			last = out
			if pitr.ArchivedPast(last, walFile) {
				return last, nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return last, fmt.Errorf("%w: %v", ErrNotArchived, err)
			}
			return last, ErrNotArchived
		}
		heartbeatMsg(ctx, "waiting for the archiver to push "+walFile)
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
