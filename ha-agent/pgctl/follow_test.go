package pgctl

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// helperFollowStarting starts a standby that cannot become consistent
// without its primary's WAL (a base backup without WAL) pointed at a port
// where nothing listens, then re-points it with FollowWhileStarting.
func helperFollowStarting(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	conn, err := prim.Connect(ctx)
	if err != nil {
		return fail("connect", err)
	}
	// The leader keeps a slot for every member (ensureSlots); so does this primary.
	for _, sql := range []string{"ALTER SYSTEM SET wal_keep_size = '256MB'", "SELECT pg_reload_conf()",
		"SELECT pg_create_physical_replication_slot('" + SlotName("h2") + "')"} {
		if err := conn.Exec(ctx, sql); err != nil {
			return fail(sql, err)
		}
	}
	conn.Close()
	sb, err := cloneHelper(ctx, prim, "standby", "none")
	if err != nil {
		return fail("standby", err)
	}
	defer func() { _ = sb.Stop(context.Background(), StopFast) }()
	nowhere := Upstream{Name: "gone", Host: "127.0.0.1", Port: prim.cfg.Port + 2}
	if err := sb.Start(ctx, StartOptions{Upstream: &nowhere}); err != nil {
		return fail("start standby", err)
	}
	// It stays "starting": it needs WAL only the primary has.
	time.Sleep(1500 * time.Millisecond)
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	o, _ := sb.Observe(octx)
	ocancel()
	r := map[string]any{"state_before": string(o.State), "upstream_before": o.PrimaryHost + ":" + strconv.Itoa(o.PrimaryPort),
		"in_recovery_before": o.InRecovery}
	if err := sb.FollowWhileStarting(&Upstream{Name: "h1", Host: "127.0.0.1", Port: prim.cfg.Port}); err != nil {
		r["follow_error"] = err.Error()
	} else if took, err := waitRunning(sb); err != nil {
		r["follow_error"] = err.Error() + pgLogTail(sb.cfg.LogFile)
	} else {
		r["running_after_ms"] = took.Milliseconds()
	}
	report(r)
	return 0
}

// A standby that is still starting and needs WAL it can only get from a
// new upstream is re-pointed without a restart (and then becomes consistent).
func TestFollowWhileStarting(t *testing.T) {
	e := newPGEnv(t)
	r, _ := e.runHelper("followstarting", "standby")
	t.Logf("%v", r)
	if r["state_before"] != string(haagent.PGStarting) || r["in_recovery_before"] != true {
		t.Fatalf("the standby should be a starting standby before the switch: %v", r)
	}
	if up, _ := r["upstream_before"].(string); !strings.HasPrefix(up, "127.0.0.1:") {
		t.Errorf("Observe of a starting standby does not report its upstream from postgresql.auto.conf: %v", r["upstream_before"])
	}
	if msg, ok := r["follow_error"]; ok {
		if b, err := os.ReadFile(filepath.Join(e.dir, "standby.log")); err == nil {
			t.Logf("standby log:\n%s", lastLines(string(b), 30))
		}
		t.Fatalf("after FollowWhileStarting the standby did not become consistent and running: %v", msg)
	}
}
