package pgctl

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
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
