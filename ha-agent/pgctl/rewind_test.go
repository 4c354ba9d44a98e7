package pgctl

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRewindSourceUnreachable checks which pg_rewind failures Rewind
// classifies as ErrRewindSourceUnreachable, with a stand-in pg_rewind that
// prints a canned message and fails (no PostgreSQL needed).
func TestRewindSourceUnreachable(t *testing.T) {
	cases := []struct {
		name        string
		output      string
		unreachable bool
	}{
		{"refused", `pg_rewind: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused
	Is the server running on that host and accepting TCP/IP connections?`, true},
		{"timeout", `pg_rewind: error: connection to server at "10.0.0.9", port 5432 failed: timeout expired`, true},
		{"diverged too early", `pg_rewind: servers diverged at WAL location 0/3000000 on timeline 1
pg_rewind: error: could not find previous WAL record at 0/2FFFF28`, false},
		{"no wal_log_hints", `pg_rewind: error: target server needs to use either data checksums or "wal_log_hints = on"`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "output"), []byte(tc.output+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			script := "#!/bin/sh\ncat \"$(dirname \"$0\")/output\" >&2\nexit 1\n"
			if err := os.WriteFile(filepath.Join(bin, "pg_rewind"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			c := &Controller{cfg: Config{MemberName: "h1", BinDir: bin, DataDir: t.TempDir(), ReplicationUser: "postgres"},
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := c.Rewind(context.Background(), Upstream{Name: "h2", Host: "127.0.0.1", Port: 5432})
			if err == nil {
				t.Fatal("Rewind succeeded with a failing pg_rewind")
			}
			if got := errors.Is(err, ErrRewindSourceUnreachable); got != tc.unreachable {
				t.Fatalf("errors.Is(err, ErrRewindSourceUnreachable) = %v, want %v; err: %v", got, tc.unreachable, err)
			}
			var exitErr interface{ ExitCode() int }
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
				t.Fatalf("the error does not wrap pg_rewind's exit status: %v", err)
			}
		})
	}
}

// helperRewind builds a diverged old primary and rewinds it while Observe
// runs every few milliseconds, as the agent's loop does. The old primary
// is killed (not shut down), so pg_rewind first runs crash recovery with
// `postgres --single` in the data directory: Observe's sweep for
// backends of a dead postmaster must not kill it.
func helperRewind(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("old primary", err)
	}
	exec1 := func(c *Controller, sql string) error {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Exec(ctx, sql)
	}
	// As pigwf's clusters do: keep WAL for pg_rewind, whose crash
	// recovery ends with a checkpoint that would recycle the segment of
	// the last common checkpoint.
	for _, sql := range []string{"ALTER SYSTEM SET wal_keep_size = '256MB'", "SELECT pg_reload_conf()",
		"CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)"} {
		if err := exec1(old, sql); err != nil {
			return fail("prepare old primary: "+sql, err)
		}
	}
	// The new primary: a base backup of the old one, promoted (timeline 2).
	src, err := cloneHelper(ctx, old, "src", "stream")
	if err != nil {
		return fail("source", err)
	}
	port := src.cfg.Port
	if err := src.Start(ctx, StartOptions{}); err != nil {
		return fail("start source as a standby", err)
	}
	if _, err := waitRunning(src); err != nil {
		return fail("source", err)
	}
	if err := src.Promote(ctx); err != nil {
		return fail("promote source", err)
	}
	if err := exec1(src, "INSERT INTO t VALUES (-2); CHECKPOINT"); err != nil {
		return fail("write on the new primary", err)
	}
	// The old primary diverges, then dies without a shutdown checkpoint.
	if err := exec1(old, "INSERT INTO t SELECT generate_series(1001, 5000)"); err != nil {
		return fail("diverge old primary", err)
	}
	if _, err := old.Fence(); err != nil {
		return fail("kill old primary", err)
	}
	stop := make(chan struct{})
	states := map[string]int{}
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			octx, ocancel := context.WithTimeout(ctx, time.Second)
			o, _ := old.Observe(octx)
			ocancel()
			states[string(o.State)]++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	rerr := old.Rewind(ctx, Upstream{Name: "h2", Host: "127.0.0.1", Port: port})
	close(stop)
	<-observed
	r := map[string]any{"observations": states}
	if rerr != nil {
		r["rewind_error"] = rerr.Error()
	}
	// The rewound old primary follows the new one and has its row.
	if rerr == nil {
		if err := old.Start(ctx, StartOptions{Upstream: &Upstream{Name: "h2", Host: "127.0.0.1", Port: port}}); err != nil {
			return fail("start rewound old primary", err)
		}
		if _, err := waitRunning(old); err != nil {
			return fail("rewound old primary", err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := old.Connect(ctx)
			if err == nil {
				res, qerr := conn.Query(ctx, "SELECT count(*) FILTER (WHERE i = -2), count(*) FILTER (WHERE i > 1000) FROM t")
				conn.Close()
				if qerr == nil && len(res) == 1 && len(res[0].Rows) == 1 {
					r["new_row"], r["diverged_rows"] = str(res[0].Rows[0][0]), str(res[0].Rows[0][1])
					if r["new_row"] == "1" || time.Now().After(deadline) {
						break
					}
				}
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = old.Stop(ctx, StopFast)
	}
	_ = src.Stop(ctx, StopFast)
	report(r)
	return 0
}

// pg_rewind of a crashed old primary works while the agent's loop keeps
// observing: the sweep for orphaned backends must not kill pg_rewind's
// single-user crash recovery (it did, and every rewind became a re-clone).
func TestRewindWhileObserving(t *testing.T) {
	e := newPGEnv(t)
	r, stderr := e.runHelper("rewind", "src")
	t.Logf("observations during pg_rewind: %v", r["observations"])
	if msg, ok := r["rewind_error"]; ok {
		t.Fatalf("pg_rewind failed while the loop observed: %v\n%s", msg, lastLines(stderr, 20))
	}
	if !strings.Contains(stderr, "pg_rewind from h2 finished") {
		t.Errorf("no pg_rewind completion in the log:\n%s", lastLines(stderr, 20))
	}
	if r["new_row"] != "1" || r["diverged_rows"] != "0" {
		t.Errorf("after the rewind the old primary has the new primary's row %v time(s) (want 1) and %v diverged rows (want 0)", r["new_row"], r["diverged_rows"])
	}
}
