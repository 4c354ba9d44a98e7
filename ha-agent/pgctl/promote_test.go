package pgctl

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// helperResumePromotion: a standby holds WAL it received but has not replayed (replay paused)
// when it is killed, as a new leader's standby can be in the middle of its promotion. It is
// started again the way the agent resumes a promotion (a standby without upstream) and promoted:
// every row the primary committed must be there.
func helperResumePromotion(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	query := func(c *Controller, sql string) (string, error) {
		conn, err := c.Connect(ctx)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		res, err := conn.Query(ctx, sql)
		if err != nil || len(res) == 0 || len(res[len(res)-1].Rows) == 0 {
			return "", err
		}
		return str(res[len(res)-1].Rows[0][0]), nil
	}
	for _, sql := range []string{"SELECT pg_create_physical_replication_slot('" + SlotName("h2") + "')", "CREATE TABLE t (i int)"} {
		if _, err := query(prim, sql); err != nil {
			return fail(sql, err)
		}
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
	if _, err := query(sb, "SELECT pg_wal_replay_pause()"); err != nil {
		return fail("pause replay", err)
	}
	if _, err := query(prim, "INSERT INTO t SELECT generate_series(1, 5000)"); err != nil {
		return fail("insert", err)
	}
	flush, err := query(prim, "SELECT pg_current_wal_flush_lsn()::text")
	if err != nil {
		return fail("flush lsn", err)
	}
	r := map[string]any{}
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, err := query(sb, "SELECT pg_last_wal_receive_lsn() >= '"+flush+"'::pg_lsn AND pg_last_wal_replay_lsn() < '"+flush+"'::pg_lsn")
		if err == nil && got == "t" {
			break
		}
		if time.Now().After(deadline) {
			return fail("the standby did not receive the rows with replay paused", fmt.Errorf("%q %v", got, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r["rows_visible_before_kill"], _ = query(sb, "SELECT count(*) FROM t")
	if _, err := sb.Fence(); err != nil { // killed mid-promotion: standby.signal stays
		return fail("kill standby", err)
	}
	// How the agent resumes the promotion: a standby without upstream, then promote.
	if err := sb.Start(ctx, StartOptions{}); err != nil {
		return fail("restart standby", err)
	}
	if _, err := waitRunning(sb); err != nil {
		return fail("restarted standby", err)
	}
	if err := sb.Promote(ctx); err != nil {
		return fail("promote", err)
	}
	r["rows_after_promotion"], _ = query(sb, "SELECT count(*) FROM t")
	report(r)
	return 0
}

// The agent's resumed promotion (Decide's "unfinished promotion" cases: the holder restarts as a
// standby, never as a primary, then promotes) on real PostgreSQL: a standby killed with
// received but unreplayed WAL, restarted as a standby without upstream and promoted, has every row.
// (The loss the old restart-as-primary caused needs WAL on a newer timeline than the control
// file's; this test shows the path the agent takes now works, not that contrast.)
func TestResumedPromotionKeepsReceivedWAL(t *testing.T) {
	e := newPGEnv(t)
	r, _ := e.runHelper("resumepromotion", "standby")
	t.Logf("%v", r)
	if r["rows_visible_before_kill"] == "5000" {
		t.Fatalf("replay was not paused: the standby had replayed everything before the kill, so this proves nothing: %v", r)
	}
	if r["rows_after_promotion"] != "5000" {
		t.Errorf("after the resumed promotion the new primary has %v rows, want the 5000 its old primary committed", r["rows_after_promotion"])
	}
}
