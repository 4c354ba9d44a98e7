package pgctl

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// helperObserve: a primary and a standby streaming from it, as the loop observes them. Reports
// what the REST API shows as Patroni does (server version, postmaster start, replay time and
// pause, the primary's pg_stat_replication row for the standby).
func helperObserve(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	exec := func(c *Controller, sql string) error {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Query(ctx, sql)
		return err
	}
	// The standby streams through its slot (primary_slot_name), as the agent's holder creates it.
	if err := exec(prim, "SELECT pg_create_physical_replication_slot('"+SlotName("h2")+"')"); err != nil {
		return fail("slot", err)
	}
	sb, err := cloneHelper(ctx, prim, "standby", "stream")
	if err != nil {
		return fail("standby", err)
	}
	defer func() { _ = sb.Stop(context.Background(), StopFast) }()
	if err := sb.Start(ctx, StartOptions{Upstream: &Upstream{Name: "h1", Host: "127.0.0.1", Port: prim.cfg.Port}}); err != nil {
		return fail("start standby", err)
	}
	if _, err := waitRunning(sb); err != nil {
		return fail("standby", err)
	}
	committed := time.Now()
	if err := exec(prim, "CREATE TABLE t (i int); INSERT INTO t VALUES (1)"); err != nil {
		return fail("write on the primary", err)
	}
	observe := func(c *Controller) (Observation, error) {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		defer ocancel()
		return c.Observe(octx)
	}
	var so Observation
	for deadline := time.Now().Add(30 * time.Second); so.ReplayedAt.IsZero(); time.Sleep(20 * time.Millisecond) {
		if so, err = observe(sb); err != nil || time.Now().After(deadline) {
			return fail("the standby did not replay the commit", fmt.Errorf("%+v %v", so, err))
		}
	}
	po, err := observe(prim)
	if err != nil || len(po.Replication) != 1 {
		return fail("observe the primary", fmt.Errorf("%+v %v", po, err))
	}
	if err := exec(sb, "SELECT pg_wal_replay_pause()"); err != nil {
		return fail("pause replay", err)
	}
	paused, err := observe(sb)
	if err != nil {
		return fail("observe the paused standby", err)
	}
	row := po.Replication[0]
	report(map[string]any{
		"server_version":       po.ServerVersion,
		"postmaster_age_ok":    !po.PostmasterAt.Before(started.Add(-time.Second)) && po.PostmasterAt.Before(time.Now()),
		"primary_replayed_at":  po.ReplayedAt.IsZero(),
		"primary_paused":       po.ReplayPaused,
		"replayed_at_ok":       !so.ReplayedAt.Before(committed.Add(-time.Second)) && so.ReplayedAt.Before(time.Now().Add(time.Second)),
		"paused_before":        so.ReplayPaused,
		"paused_after":         paused.ReplayPaused,
		"restore_command":      so.RestoreCommand,
		"receiver_status":      so.WALReceiverStatus,
		"row_application_name": row.ApplicationName,
		"row_usename":          row.Usename,
		"row_client_addr":      row.ClientAddr,
		"row_sync_priority":    row.SyncPriority,
		"row_state":            row.State,
	})
	return 0
}

// The loop's probe on real PostgreSQL reports what the REST API shows as Patroni does: values
// that a wrong column order or type would get wrong.
func TestObserveReportsStatusFields(t *testing.T) {
	e := newPGEnv(t)
	r, _ := e.runHelper("observe", "standby")
	t.Logf("%v", r)
	want := map[string]any{
		"postmaster_age_ok": true, "primary_replayed_at": true, "primary_paused": false,
		"replayed_at_ok": true, "paused_before": false, "receiver_status": "streaming", "paused_after": true, "restore_command": false,
		"row_application_name": "h2", "row_usename": "postgres", "row_client_addr": "127.0.0.1",
		"row_sync_priority": float64(0), "row_state": "streaming",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	if v, _ := r["server_version"].(float64); v < 150000 || v >= 160000 {
		t.Errorf("server_version = %v, want PostgreSQL 15's server_version_num", r["server_version"])
	}
}
