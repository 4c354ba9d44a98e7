package pgctl

import (
	"context"
	"errors"
	"fmt"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgwire"
)

// SetSyncStandbyNames sets synchronous_standby_names (ALTER SYSTEM + reload).
func (c *Controller) SetSyncStandbyNames(ctx context.Context, value string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		if err := alterSystem(ctx, conn, map[string]string{"synchronous_standby_names": value}); err != nil {
			return fmt.Errorf("set synchronous_standby_names to %q: %w", value, err)
		}
		return nil
	})
}

// NudgeStandbys commits a transaction of its own, without waiting for any standby
// (synchronous_commit local), and returns the flush position after it. A standby just named in
// synchronous_standby_names releases the commits waiting for it only when it next reports a
// flush, and a standby that already holds all the WAL reports again only after
// wal_receiver_status_interval: this commit is new WAL it flushes and reports at once, so the
// waiting commits are released now rather than up to that interval later.
func (c *Controller) NudgeStandbys(ctx context.Context) (haagent.LSN, error) {
	var out haagent.LSN
	err := c.withConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, "BEGIN; SET LOCAL synchronous_commit TO local; SELECT pg_current_xact_id(); COMMIT; SELECT pg_current_wal_flush_lsn()")
		if err != nil {
			return fmt.Errorf("nudge the standbys: %w", err)
		}
		if len(res) != 5 || len(res[4].Rows) != 1 {
			return errors.New("nudge the standbys: no flush position")
		}
		out = lsn(res[4].Rows[0][0])
		return nil
	})
	return out, err
}

// EnsureSlots creates missing physical slots; DropSlots drops inactive ones.
func (c *Controller) EnsureSlots(ctx context.Context, names []string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		for _, n := range names {
			err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot("+pgwire.QuoteLiteral(n)+", true)")
			if err != nil && pgwire.SQLState(err) != "42710" { // duplicate_object
				return fmt.Errorf("create replication slot %s: %w", n, err)
			}
		}
		return nil
	})
}

// DropSlots drops the named slots if they are not in use.
func (c *Controller) DropSlots(ctx context.Context, names []string) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		for _, n := range names {
			err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "+
				pgwire.QuoteLiteral(n)+" AND NOT active")
			if err != nil {
				return fmt.Errorf("drop replication slot %s: %w", n, err)
			}
		}
		return nil
	})
}

// LiveReplication is pg_stat_replication, synchronous_standby_names and
// the flush LSN read right now on a fresh connection (for the REST API).
func (c *Controller) LiveReplication(ctx context.Context) ([]ReplicationRow, string, haagent.LSN, error) {
	var rows []ReplicationRow
	var ssn string
	var flush haagent.LSN
	err := c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, `SELECT `+replicationColumns+` FROM pg_stat_replication;
SELECT current_setting('synchronous_standby_names'), CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END`)
		if err != nil {
			return err
		}
		if len(res) != 2 || len(res[1].Rows) != 1 {
			return errors.New("unexpected result shape")
		}
		for _, row := range res[0].Rows {
			rows = append(rows, replicationRow(row))
		}
		ssn, flush = str(res[1].Rows[0][0]), lsn(res[1].Rows[0][1])
		return nil
	})
	if err != nil {
		return nil, "", 0, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return rows, ssn, flush, nil
}
