package pgctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pigwf/pigwf/internal/libpq"
)

// sourceServer is the libpq connection string for pg_rewind's source. It
// sets statement_timeout=0 (and the other timeouts) in the session: a
// cluster-wide statement_timeout would otherwise kill pg_rewind's long
// reads of the source's files (a known trap).
func (c *Controller) sourceServer(up Upstream) string {
	return c.memberConninfo(up, libpq.P("dbname", "postgres"),
		libpq.P("application_name", c.cfg.MemberName+"-pg_rewind"),
		libpq.P("connect_timeout", "5"),
		libpq.P("options", "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"))
}

// Rewind runs pg_rewind against up. PostgreSQL must be stopped; pg_rewind
// itself runs crash recovery first when the target was not shut down
// cleanly. pg_rewind needs wal_log_hints or data checksums from before the
// divergence; the agent always starts PostgreSQL with wal_log_hints=on.
func (c *Controller) Rewind(ctx context.Context, up Upstream) error {
	if err := c.requireStopped("pg_rewind"); err != nil {
		return err
	}
	out, err := c.run(ctx, "pg_rewind from "+up.Name, nil, "pg_rewind",
		"--target-pgdata="+c.cfg.DataDir, "--source-server="+c.sourceServer(up))
	if err != nil && rewindSourceUnreachable(out) {
		return fmt.Errorf("%w: %w", ErrRewindSourceUnreachable, err)
	}
	return err
}

// ErrRewindSourceUnreachable: pg_rewind failed because it could not connect
// to its source server. That says nothing about whether this data directory
// can be rewound, so it is a reason to retry the rewind, not to re-clone.
var ErrRewindSourceUnreachable = errors.New("pg_rewind could not connect to the source server")

// rewindSourceUnreachable classifies a failed pg_rewind's combined output.
// pg_rewind reports a failed connection only as text: libpq's
// "connection to server at ... failed: ..." (PostgreSQL 14 and later). This
// is the one place that matches that text; callers test
// errors.Is(err, ErrRewindSourceUnreachable). It looks at the same last
// lines that run puts into the error message.
func rewindSourceUnreachable(output string) bool {
	return strings.Contains(lastLines(output, 5), "connection to server")
}
