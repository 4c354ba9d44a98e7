package pgctl

import (
	"bufio"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// helperFence starts PostgreSQL as a primary, keeps backends busy
// committing, fences, and reports how long the fence took and what
// Observe says afterwards. Five rounds.
func helperFence(args []string) int {
	c, err := helperController(args)
	if err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	for round := 0; round < 5; round++ {
		if err := c.Start(context.Background(), StartOptions{AsPrimary: true}); err != nil {
			report(map[string]any{"error": err.Error()})
			return 1
		}
		startup, err := waitRunning(c)
		if err != nil {
			report(map[string]any{"error": err.Error()})
			return 1
		}
		// Busy backends: each commits in a loop until killed.
		stop := make(chan struct{})
		for i := 0; i < 6; i++ {
			go func() {
				ctx := context.Background()
				conn, err := c.Connect(ctx)
				if err != nil {
					return
				}
				defer conn.Close()
				_ = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS f (i int)")
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn.Exec(ctx, "INSERT INTO f VALUES (1)") != nil {
						return
					}
				}
			}()
		}
		time.Sleep(150 * time.Millisecond)
		rep, ferr := c.Fence()
		close(stop)
		left := processesIn(c.cfg.DataDir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o, oerr := c.Observe(ctx)
		cancel()
		r := map[string]any{"round": round, "startup_ms": startup.Milliseconds(), "fence_us": rep.Elapsed.Microseconds(), "signalled_us": rep.Signalled.Microseconds(), "children_us": rep.ChildrenSignalled.Microseconds(),
			"killed": rep.Killed, "left": len(left), "state": string(o.State)}
		if ferr != nil {
			r["fence_error"] = ferr.Error()
		}
		if oerr != nil {
			r["observe_error"] = oerr.Error()
		}
		report(r)
	}
	// A clean stop is "stopped", not "crashed".
	if err := c.Start(context.Background(), StartOptions{AsPrimary: true}); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	if _, err := waitRunning(c); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx, StopFast); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	o, err := c.Observe(ctx)
	r := map[string]any{"clean_stop_state": string(o.State)}
	if err != nil {
		r["observe_error"] = err.Error()
	}
	report(r)
	return 0
}

// Fence kills every PostgreSQL process of the data directory — backends
// included, though they are in sessions of their own — within a few
// milliseconds, and Observe then reports "crashed" with nothing left.
func TestFenceRealPostgres(t *testing.T) {
	e := newPGEnv(t)
	cmd := e.helper("fence")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s\n%s", err, out, stderr.String())
	}
	var sig, dead []time.Duration
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("helper output %q: %v", sc.Text(), err)
		}
		if e, ok := r["error"]; ok {
			t.Fatalf("helper: %v\n%s", e, stderr.String())
		}
		if st, ok := r["clean_stop_state"]; ok {
			if st != string(haagent.PGStopped) {
				t.Errorf("after a clean stop Observe says %v, want stopped (%v)", st, r["observe_error"])
			}
			continue
		}
		t.Logf("round %v: startup %vms, fence: postmaster+children SIGKILLed after %vµs, all %v processes after %vµs, all dead after %vµs; %v left, state %v",
			r["round"], r["startup_ms"], r["children_us"], r["killed"], r["signalled_us"], r["fence_us"], r["left"], r["state"])
		if r["fence_error"] != nil || r["left"].(float64) != 0 || r["state"] != string(haagent.PGCrashed) || r["killed"].(float64) < 6 {
			t.Errorf("round %v: %v", r["round"], r)
		}
		sig = append(sig, time.Duration(r["children_us"].(float64))*time.Microsecond)
		dead = append(dead, time.Duration(r["fence_us"].(float64))*time.Microsecond)
	}
	if len(sig) != 5 {
		t.Fatalf("%d fence rounds reported, want 5\n%s", len(sig), stderr.String())
	}
	slices.Sort(sig)
	slices.Sort(dead)
	t.Logf("FENCE over 5 rounds with 6 backends committing: postmaster and every child SIGKILLed after min %s / median %s / max %s; "+
		"all processes dead after min %s / median %s / max %s", sig[0], sig[2], sig[4], dead[0], dead[2], dead[4])
	// Once SIGKILL is pending a backend never returns to user code, so it
	// starts no new acknowledgement: that is the fence time the safety
	// argument's max_fence_ms (40) bounds. Death itself can wait for an
	// fsync in progress (D state), which sends nothing.
	if sig[4] > 40*time.Millisecond {
		t.Errorf("signalling the postmaster and its children took %s, above max_fence_ms 40", sig[4])
	}
	if dead[4] > 500*time.Millisecond {
		t.Errorf("processes took %s to die after SIGKILL", dead[4])
	}
}
