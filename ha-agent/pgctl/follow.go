package pgctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/internal/libpq"
)

// PrimaryConninfo is the primary_conninfo for streaming from up.
func (c *Controller) PrimaryConninfo(up Upstream) string {
	return c.memberConninfo(up,
		libpq.P("application_name", c.cfg.MemberName),
		libpq.P("connect_timeout", "2"),
		libpq.P("keepalives", "1"), libpq.P("keepalives_idle", "2"), libpq.P("keepalives_interval", "1"), libpq.P("keepalives_count", "3"))
}

// memberConninfo is the one libpq connection string to another member, up,
// as the replication user: host, port and user, then params, then TLS
// (verify-full against the deployment CA unless the lab is plain text),
// then the password file if configured (never a password).
func (c *Controller) memberConninfo(up Upstream, params ...libpq.Param) string {
	ps := append([]libpq.Param{
		libpq.P("host", up.Host),
		libpq.P("port", strconv.Itoa(up.Port)),
		libpq.P("user", c.cfg.ReplicationUser),
	}, params...)
	ps = append(ps, libpq.VerifyFull(c.cfg.TLS)...)
	if c.cfg.Passfile != "" {
		ps = append(ps, libpq.P("passfile", c.cfg.Passfile))
	}
	return libpq.Conninfo(ps...)
}

// Follow points a running standby at up (or at nothing) and reloads; the
// startup process restarts its WAL receiver.
func (c *Controller) Follow(ctx context.Context, up *Upstream) error {
	return c.withConn(ctx, func(conn *pgwire.Conn) error {
		if err := alterSystem(ctx, conn, c.recoverySettings(up)); err != nil {
			return fmt.Errorf("follow %v: %w", up, err)
		}
		return nil
	})
}

// recoverySettings are the recovery settings for streaming from up (nil:
// no upstream; empty values are removed from postgresql.auto.conf).
func (c *Controller) recoverySettings(up *Upstream) map[string]string {
	if up == nil {
		return map[string]string{"primary_conninfo": "", "primary_slot_name": ""}
	}
	return map[string]string{"primary_conninfo": c.PrimaryConninfo(*up), "primary_slot_name": SlotName(c.cfg.MemberName)}
}

// FollowWhileStarting points a standby that is still starting (it accepts
// no connection, so ALTER SYSTEM is impossible) at up: it rewrites the
// recovery settings in postgresql.auto.conf and reloads. The startup
// process applies a changed primary_conninfo on reload (PostgreSQL 13+).
func (c *Controller) FollowWhileStarting(up *Upstream) error {
	pm := c.pm.Load()
	if !pm.running() {
		return errors.New("follow while starting: PostgreSQL is not running")
	}
	if err := setAutoConf(c.cfg.DataDir, c.recoverySettings(up)); err != nil {
		return fmt.Errorf("follow %v while starting: %w", up, err)
	}
	if err := syscall.Kill(pm.pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("follow %v while starting: reload postmaster %d: %w", up, pm.pid, err)
	}
	return nil
}
