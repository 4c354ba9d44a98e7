package pgctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// DynamicParamsPath is the file the cluster's dynamic parameters go to (postgresql.conf
// includes it last).
func (c *Controller) DynamicParamsPath() string {
	return filepath.Join(c.cfg.DataDir, pgparams.DynamicFile)
}

// WriteDynamicParams makes the dynamic parameters file hold content: unchanged when it does,
// else written beside it and renamed over it (a reader never sees half a file), synced.
// No data directory yet (before a clone or bootstrap): nothing to write, unchanged.
func (c *Controller) WriteDynamicParams(content string) (changed bool, err error) {
	if _, err := os.Stat(filepath.Join(c.cfg.DataDir, "PG_VERSION")); err != nil {
		return false, nil
	}
	path := c.DynamicParamsPath()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(content)) {
		return false, nil
	}
	tmp := path + ".pigwf-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.WriteString(content)
	serr := f.Sync()
	cerr := f.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Reload asks PostgreSQL to re-read its configuration files (pg_reload_conf), on a connection
// of its own: the REST API and the parameter writer must not queue behind the loop's actions.
func (c *Controller) Reload(ctx context.Context) error {
	return c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		if err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return fmt.Errorf("reload configuration: %w", err)
		}
		return nil
	})
}

// Settings is the server's pg_settings (pgparams.Query): what values its settings take.
func (c *Controller) Settings(ctx context.Context) ([]pgparams.Setting, error) {
	var out []pgparams.Setting
	err := c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, pgparams.Query)
		if err != nil {
			return fmt.Errorf("read pg_settings: %w", err)
		}
		for _, r := range res[0].Rows {
			s := pgparams.Setting{Name: str(r[0]), Setting: str(r[1]), Unit: str(r[2]), Context: str(r[3]),
				Vartype: str(r[4]), MinVal: str(r[5]), MaxVal: str(r[6]), PendingRestart: str(r[8]) == "t"}
			if e := str(r[7]); e != "" {
				s.EnumVals = strings.Split(e, ",")
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// pendingSQL lists the settings whose configured value waits for a restart, with the value in
// force (as SHOW shows it) and the last one the configuration files give (pg_file_settings
// re-reads them; its row for a pending setting carries the error "setting could not be
// applied", which is what pending means, so errors are not filtered out).
const pendingSQL = `SELECT extract(epoch FROM pg_postmaster_start_time());
SELECT s.name, current_setting(s.name), coalesce(f.setting, '')
 FROM pg_settings s LEFT JOIN LATERAL (
   SELECT fs.setting FROM pg_file_settings fs WHERE fs.name = s.name ORDER BY fs.seqno DESC LIMIT 1) f ON true
 WHERE s.pending_restart ORDER BY s.name`

// PendingRestart names the settings waiting for a restart (none: an empty map) of the postmaster
// that started at postmaster: a restart applies them all, so the answer holds for that
// postmaster only.
func (c *Controller) PendingRestart(ctx context.Context) (pending map[string]pgparams.PendingChange, postmaster time.Time, err error) {
	out := map[string]pgparams.PendingChange{}
	err = c.withFreshConn(ctx, func(conn *pgwire.Conn) error {
		res, err := conn.Query(ctx, pendingSQL)
		if err != nil {
			return fmt.Errorf("read pending restarts: %w", err)
		}
		postmaster = epoch(res[0].Rows[0][0])
		for _, r := range res[1].Rows {
			out[str(r[0])] = pgparams.PendingChange{OldValue: str(r[1]), NewValue: str(r[2])}
		}
		return nil
	})
	return out, postmaster, err
}
