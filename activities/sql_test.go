package activities

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
)

var sqlNode = Node{Addr: "10.0.0.2", Name: "pg-test-2", SSHHost: "10.0.0.2", SSHPort: 22, SSHUser: "root"}

func sqlIn(stmt string) RunSQLInput {
	return RunSQLInput{Node: sqlNode, Port: 5432, Database: "meta", Statement: stmt, Step: "vacuum (vacuum-analyze.yml:5)"}
}

// The statement reaches psql on stdin only, as the one value of a dollar-quoted literal that
// \gexec runs: psql acts on no backslash command of the author's, and the command line holds
// nothing of the statement.
func TestRunSQLScript(t *testing.T) {
	remote := &fakeRemote{reply: func(int, sshrun.Command) sshrun.Result {
		return sshrun.Result{Stdout: "t\x00second column\nnext row\n"}
	}}
	a := &Activities{Remote: remote}
	const stmt = "SELECT true -- \\! touch /tmp/owned\n\\o /tmp/out"
	res, err := a.RunSQL(context.Background(), sqlIn(stmt))
	if err != nil {
		t.Fatal(err)
	}
	cmds := remote.commands()
	if len(cmds) != 1 {
		t.Fatalf("%d commands", len(cmds))
	}
	c := cmds[0]
	if c.AsUser != "postgres" || strings.Contains(c.Script, "SELECT") || strings.Contains(c.Script, "touch") ||
		!strings.Contains(c.Script, "-h /var/run/postgresql") || !strings.Contains(c.Script, "-d meta ") || !strings.HasSuffix(c.Script, "-f -") {
		t.Errorf("command %q as %s: want psql over the socket as postgres, reading stdin, the database quoted", c.Script, c.AsUser)
	}
	stdin := string(c.Stdin)
	want := "\\pset fieldsep_zero on\nSELECT $pigwf$" + stmt + "$pigwf$ \\gexec\n"
	if !strings.HasSuffix(stdin, want) {
		t.Fatalf("stdin:\n%s\nwant it to end with:\n%s", stdin, want)
	}
	// Outside the literal, the only backslash commands are pigwf's own.
	outside := strings.Replace(stdin, "$pigwf$"+stmt+"$pigwf$", "", 1)
	if cmds := regexp.MustCompile(`\\[a-z!]+`).FindAllString(outside, -1); strings.Join(cmds, " ") != `\pset \gexec` {
		t.Errorf("backslash commands outside the literal: %v", cmds)
	}
	if !res.Changed || res.Facts["result"] != "t" || !strings.Contains(res.Summary(), "ran SELECT true") {
		t.Errorf("result %+v", res)
	}
}

// A statement holding the delimiter gets another one, so it cannot close the literal early.
func TestDollarTag(t *testing.T) {
	for stmt, want := range map[string]string{
		"SELECT 1":                       "$pigwf$",
		"SELECT $pigwf$x$pigwf$":         "$pigwf_1$",
		"SELECT '$pigwf$', '$pigwf_1$'":  "$pigwf_2$",
		"SELECT $$x$$ -- $pigwf_1$ only": "$pigwf$",
	} {
		if got := dollarTag(stmt); got != want {
			t.Errorf("dollarTag(%q) = %q, want %q", stmt, got, want)
		}
		if strings.Contains(stmt, dollarTag(stmt)) {
			t.Errorf("%q holds its own delimiter", stmt)
		}
	}
}

// A statement's answer is its first cell, verifiers masked, cut short.
func TestFirstCell(t *testing.T) {
	for out, want := range map[string]string{
		"":                          "",
		"f":                         "f",
		"42\x00x\n43\x00y":          "42",
		"SCRAM-SHA-256$4096:abc=$x": "[secret]",
		strings.Repeat("é", 300):    strings.Repeat("é", maxSQLResult) + "…",
	} {
		if got := firstCell(out); got != want {
			t.Errorf("firstCell(%.20q) = %.40q, want %.40q", out, got, want)
		}
	}
}

// A statement the server refuses is final, with its digest; a lost connection is retried.
func TestRunSQLFailures(t *testing.T) {
	for _, c := range []struct {
		status    int
		retryable bool
	}{{psqlScriptError, false}, {2, true}} {
		remote := &fakeRemote{reply: func(int, sshrun.Command) sshrun.Result {
			return sshrun.Result{ExitStatus: c.status, Stderr: "psql:<stdin>:3: ERROR:  relation \"nope\" does not exist\nLINE 1: SELECT * FROM nope WHERE secret = 'x'"}
		}}
		_, err := (&Activities{Remote: remote}).RunSQL(context.Background(), sqlIn("SELECT * FROM nope WHERE secret = 'x'"))
		var app *temporal.ApplicationError
		final := errors.As(err, &app) && app.NonRetryable()
		if err == nil || final == c.retryable {
			t.Errorf("exit %d: %v (final %v)", c.status, err, final)
		}
		if !c.retryable && (app.Type() != ErrSQLFailed || !strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "secret = 'x'")) {
			t.Errorf("exit %d: %v; want the error's digest without the statement", c.status, err)
		}
	}
}

// The predicate is asked until it answers true; an answer that is not a boolean, or no true
// answer by the deadline, fails for good.
func TestWaitSQL(t *testing.T) {
	answers := func(list ...string) *fakeRemote {
		return &fakeRemote{reply: func(n int, _ sshrun.Command) sshrun.Result { return sshrun.Result{Stdout: list[min(n, len(list)-1)]} }}
	}
	in := WaitSQLInput{RunSQLInput: sqlIn("SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'Lock'"), Timeout: 10 * time.Second}
	defer func(d time.Duration) { sqlPollEvery = d }(sqlPollEvery)
	sqlPollEvery = time.Millisecond
	remote := answers("f", "t")
	res, err := (&Activities{Remote: remote}).WaitSQL(context.Background(), in)
	if err != nil || res.Changed || len(remote.commands()) != 2 {
		t.Fatalf("f then t: %+v, %v, %d calls", res, err, len(remote.commands()))
	}
	for _, c := range []struct {
		answer  string
		timeout time.Duration
		want    string
	}{{"42", 10 * time.Second, "not one boolean"}, {"f", 0, "did not answer true within 0s (last answer: f)"}} {
		in.Timeout = c.timeout
		_, err := (&Activities{Remote: answers(c.answer)}).WaitSQL(context.Background(), in)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), c.want) {
			t.Errorf("answer %q: %v; want a final error with %q", c.answer, err, c.want)
		}
	}
}

// The worker refuses a statement or a database the runbook format would have refused.
func TestRunSQLInputValidate(t *testing.T) {
	if err := sqlIn("VACUUM (ANALYZE)").Validate(); err != nil {
		t.Fatalf("a good input: %v", err)
	}
	for field, in := range map[string]RunSQLInput{
		"statement": sqlIn("SELECT 1\x1b[2J"),
		"database":  func() RunSQLInput { i := sqlIn("SELECT 1"); i.Database = "meta; drop"; return i }(),
		"node":      func() RunSQLInput { i := sqlIn("SELECT 1"); i.Node.SSHHost = "a b"; return i }(),
	} {
		if err := in.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := (WaitSQLInput{RunSQLInput: sqlIn("  ")}).Validate(); err == nil || !strings.Contains(err.Error(), "statement") {
		t.Errorf("an empty statement: %v", err)
	}
}
