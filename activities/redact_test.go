package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/activities/sshrun"
)

func TestOutputDigest(t *testing.T) {
	cases := []struct {
		name, out string
		want      string   // the digest, exactly
		never     []string // what must not survive
	}{
		{"psql echoes the failing statement",
			"psql:<stdin>:3: ERROR:  syntax error at or near \"PASSWORD\"\nLINE 1: ALTER ROLE \"x\" PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b' VALID UNTIL 'tomorrow';\n                       ^\n",
			`psql:<stdin>:3: ERROR:  syntax error at or near "PASSWORD"`, []string{"SCRAM", "c2FsdA", "tomorrow", "LINE"}},
		{"a literal in the message itself",
			"ERROR:  invalid input syntax for type integer: 'hunter2'\nDETAIL:  Key (pw)=(hunter2) already exists.\nHINT:  check 'hunter2'\n",
			`ERROR:  invalid input syntax for type integer: '…' / HINT:  check '…'`, []string{"hunter2"}},
		{"a verifier outside quotes", "FATAL:  bad md5" + strings.Repeat("ab", 16) + " and SCRAM-SHA-256$4096:x$y:z here",
			"FATAL:  bad [secret] and [secret] here", []string{"abab", "4096"}},
		{"psql cannot connect",
			"psql: error: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally?\n",
			`psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory`, nil},
		{"rows, not diagnostics", `[{"rolname":"x","pw":"SCRAM-SHA-256$4096:c2FsdA==$a:b"}]` + "\n{}", "59 bytes in 2 lines, withheld", []string{"rolname", "SCRAM"}},
		{"nothing", " \n", "no output", nil},
		{"an unterminated literal", "ERROR:  unterminated quoted string at or near \"'secret\nLINE 1: x", `ERROR:  unterminated quoted string at or near "'…'`, []string{"secret"}},
	}
	for _, c := range cases {
		got := outputDigest(c.out)
		if got != c.want {
			t.Errorf("%s: got\n  %s\nwant\n  %s", c.name, got, c.want)
		}
		for _, s := range c.never {
			if strings.Contains(got, s) {
				t.Errorf("%s: %q survived in %q", c.name, s, got)
			}
		}
	}
	long := outputDigest("ERROR:  " + strings.Repeat("é", 400))
	if len(long) > maxDigest+len("…") || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "ERROR:  é") {
		t.Errorf("a long message is not cut to %d bytes: %d bytes", maxDigest, len(long))
	}
}

// A failing psql reports PostgreSQL's message, not the statement psql echoes with it, and stays
// an *sshrun.ExitError for callers that look at the status.
func TestPsqlErrorIsDigest(t *testing.T) {
	remote := &fakeRemote{reply: func(int, sshrun.Command) sshrun.Result {
		return sshrun.Result{ExitStatus: 3, Stderr: "psql:<stdin>:2: ERROR:  role \"x\" does not exist\nLINE 1: ALTER ROLE x PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b';\n"}
	}}
	_, err := psqlOn(context.Background(), remote, Node{Addr: "10.0.0.1"}, 5432, "postgres", "ALTER ROLE x PASSWORD 'whatever';")
	var exit *sshrun.ExitError
	if !errors.As(err, &exit) || exit.Status != 3 {
		t.Fatalf("got %v, want an *sshrun.ExitError with status 3", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `role "x" does not exist`) || strings.Contains(msg, "SCRAM") || strings.Contains(msg, "LINE") {
		t.Errorf("the error is %q", msg)
	}
}
