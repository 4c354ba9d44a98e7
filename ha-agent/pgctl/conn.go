package pgctl

import (
	"context"
	"fmt"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
)

// Connect opens a connection to the local PostgreSQL as the OS user
// (peer authentication over the unix socket).
func (c *Controller) Connect(ctx context.Context) (*pgwire.Conn, error) {
	return pgwire.Connect(ctx, pgwire.Config{
		Network: "unix", Address: pgwire.SocketPath(c.cfg.SocketDir, c.cfg.Port),
		User: c.osUser, Database: "postgres", ApplicationName: "pigwf-ha-agent",
	})
}

// withConn runs fn on the action connection: one persistent connection,
// separate from the probe's, reused across actions (a new backend costs a
// fork, which is slow on a loaded host right when a failover runs). A
// failed fn drops the connection; the next action reconnects.
func (c *Controller) withConn(ctx context.Context, fn func(*pgwire.Conn) error) error {
	c.actionMu.Lock()
	defer c.actionMu.Unlock()
	if c.action != nil && c.actionPM != c.pm.Load() {
		c.action.Close() // a connection to a postmaster that is gone
		c.action = nil
	}
	if c.action == nil {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		c.action, c.actionPM = conn, c.pm.Load()
	}
	err := fn(c.action)
	if err != nil && pgwire.SQLState(err) == "" {
		c.action.Close()
		c.action = nil
	}
	return err
}

// withFreshConn runs fn on a connection of its own (long waits, and the
// REST API, which must not queue behind the loop's actions).
func (c *Controller) withFreshConn(ctx context.Context, fn func(*pgwire.Conn) error) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// alterSystem sets (value non-nil) or resets settings with ALTER SYSTEM,
// then reloads. ALTER SYSTEM refuses multi-statement queries, so one
// statement per query.
func alterSystem(ctx context.Context, conn *pgwire.Conn, settings map[string]string) error {
	for _, k := range sortedKeys(settings) {
		q := fmt.Sprintf("ALTER SYSTEM SET %s = %s", k, pgwire.QuoteLiteral(settings[k]))
		if settings[k] == "" {
			q = "ALTER SYSTEM RESET " + k
		}
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("ALTER SYSTEM %s: %w", k, err)
		}
	}
	if err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload configuration: %w", err)
	}
	return nil
}
