package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/pigwf/pigwf/pitr"
)

// archiveWait bounds the wait for the archiver to push a switched segment.
const archiveWait = 60 * time.Second

// switchAndArchive switches the primary on node to a new WAL segment and waits until the
// archiver reports the segment it left archived (pitr.ArchivedPast), so the archive holds every
// commit made before the switch. It returns that segment's name. Only on a primary.
func (a *Activities) switchAndArchive(ctx context.Context, node Node, port int) (string, error) {
	seg, err := a.psql(ctx, node, port, "postgres", "SELECT pg_walfile_name(pg_switch_wal());")
	if err != nil {
		return "", fmt.Errorf("switching WAL on %s: %w", node, err)
	}
	deadline := time.Now().Add(archiveWait)
	last := ""
	for {
		last, err = a.psql(ctx, node, port, "postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")
		if err == nil && pitr.ArchivedPast(last, seg) {
			return seg, nil
		}
		if time.Now().After(deadline) {
			return seg, fmt.Errorf("WAL %s on %s was not archived within %s (last archived: %q, %v): see pg_stat_archiver and the PostgreSQL log there",
				seg, node, archiveWait, last, err)
		}
		heartbeatMsg(ctx, "waiting for the archiver to push "+seg)
		select {
		case <-ctx.Done():
			return seg, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
