package activities

// The sql steps of custom runbooks (dsl/): one statement a runbook's author wrote, run on one
// member as postgres over the local socket, and the predicate a `wait: {until: sql}` polls.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/inventory"
)

// ErrSQLFailed is the type of a statement PostgreSQL refused (a syntax error, a missing table,
// a read-only server): running it again cannot help.
const ErrSQLFailed = "SQLFailed"

// RunSQLInput runs one statement of a runbook's sql step on one member.
type RunSQLInput struct {
	Node      Node   `json:"node"`
	Port      int    `json:"port"`
	Database  string `json:"database"`
	Statement string `json:"statement"`
	Step      string `json:"step"` // the runbook's step, for messages: "vacuum (vacuum-analyze.yml:5)"
}

// WaitSQLInput polls a statement that answers true or false until it answers true, within
// Timeout.
type WaitSQLInput struct {
	RunSQLInput
	Timeout time.Duration `json:"timeout"`
}

// maxSQLResult bounds the part of a statement's answer a step reports (and so its history).
const maxSQLResult = 200

// RunSQL runs the statement once and reports it as a change (pigwf cannot tell what a
// statement changed), with its answer: the first column of the first row, cut short, anything
// like a password verifier masked. A failed statement is final (ErrSQLFailed); a member that
// does not answer is retried by the step's policy.
func (a *Activities) RunSQL(ctx context.Context, in RunSQLInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: in.Step}
	answer, err := a.runStatement(ctx, in)
	if err != nil {
		return res, err
	}
	res.Changed = true
	change := fmt.Sprintf("ran %s in %s", dsl.Headline(in.Statement), in.Database)
	if answer != "" {
		change += ": " + answer
		res.Facts = map[string]string{"result": answer}
	}
	res.Changes = []string{change}
	return res, nil
}

// sqlPollEvery is how often WaitSQL asks.
var sqlPollEvery = 2 * time.Second

// WaitSQL runs the statement every two seconds (heartbeating) until it answers true. An answer
// that is not one boolean, or a failed statement, is final; the timeout fails with the last
// answer. It changes nothing (a predicate should not).
func (a *Activities) WaitSQL(ctx context.Context, in WaitSQLInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: in.Step}
	start := time.Now()
	deadline := start.Add(in.Timeout)
	for {
		answer, err := a.runStatement(ctx, in.RunSQLInput)
		var app *temporal.ApplicationError
		switch {
		case errors.As(err, &app) && app.NonRetryable():
			return res, err
		case err != nil:
			answer = err.Error() // the member may be restarting: ask again
		case answer == "t":
			res.Notes = []string{fmt.Sprintf("%s answered true after %s", dsl.Headline(in.Statement), time.Since(start).Round(time.Second))}
			return res, nil
		case answer != "f":
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %s answered %q, not one boolean: write a query that returns true once the condition holds (e.g. SELECT count(*) = 0 FROM ...)",
				in.Step, in.Node, dsl.Headline(in.Statement), answer), ErrSQLFailed, nil)
		}
		if time.Now().After(deadline) {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %s did not answer true within %s (last answer: %s)",
				in.Step, in.Node, dsl.Headline(in.Statement), in.Timeout, orDash(answer)), ErrSQLFailed, nil)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "last answer: "+answer)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(sqlPollEvery):
		}
	}
}

// runStatement runs in.Statement through psql and returns its answer.
func (a *Activities) runStatement(ctx context.Context, in RunSQLInput) (string, error) {
	out, err := a.psqlStep(ctx, in.Node, in.Port, in.Database, statementScript(in.Statement), in.Step)
	if err != nil {
		return "", err
	}
	return firstCell(out), nil
}

// psqlStep is psql for a runbook step: heartbeating while it runs, and a statement the server
// refused is final (ErrSQLFailed, with the error's digest), while a member that does not
// answer is worth a retry.
func (a *Activities) psqlStep(ctx context.Context, node Node, port int, db, sql, step string) (string, error) {
	stop := heartbeat(ctx, node, step)
	out, err := a.psql(ctx, node, port, db, sql)
	stop()
	var exit *sshrun.ExitError
	if errors.As(err, &exit) && exit.Status == psqlScriptError {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: the statement failed: %s", step, node, exit.Stderr), ErrSQLFailed, nil)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", step, err)
	}
	return out, nil
}

// psqlScriptError is psql's exit status when a statement of its script failed under
// ON_ERROR_STOP (1 is psql's own fatal error, 2 a lost connection: both worth a retry).
const psqlScriptError = 3

// statementScript is what psql reads for one runbook statement. psql acts on backslash commands
// (\! runs a shell command, \o writes a file) wherever its input is outside a literal, so the
// statement is never its input as such: it is the one value of a dollar-quoted literal, which
// psql passes through unread, and \gexec sends that value to the server as one query (outside a
// transaction block, so VACUUM runs). The answer's columns are separated by a zero byte.
func statementScript(stmt string) string {
	tag := dollarTag(stmt)
	return "\\pset fieldsep_zero on\nSELECT " + tag + stmt + tag + " \\gexec\n"
}

// dollarTag is a dollar-quote delimiter that does not occur in s, so s cannot end the literal.
func dollarTag(s string) string {
	tag := "$pigwf$"
	for i := 1; strings.Contains(s, tag); i++ {
		tag = fmt.Sprintf("$pigwf_%d$", i)
	}
	return tag
}

// firstCell is the first column of the first row of psql's unaligned output, cut to
// maxSQLResult with anything like a password verifier masked: the answer a step may report.
func firstCell(out string) string {
	row, _, _ := strings.Cut(out, "\n")
	cell, _, _ := strings.Cut(row, "\x00")
	cell = maskSecrets(cell)
	if r := []rune(cell); len(r) > maxSQLResult {
		cell = string(r[:maxSQLResult]) + "…"
	}
	return cell
}

// Validate checks the member, PostgreSQL's port, the database and the statement (text without
// control characters, as the runbook format has it).
func (in RunSQLInput) Validate() error {
	var c inputCheck
	c.sqlStep(in)
	return c.err()
}

// Validate checks RunSQLInput's fields.
func (in WaitSQLInput) Validate() error { return in.RunSQLInput.Validate() }

func (c *inputCheck) sqlStep(in RunSQLInput) {
	c.node("node", in.Node)
	c.rule("port", "pg_port", in.Port)
	c.rule("database", inventory.RuleDatabaseName, in.Database)
	c.rule("step", inventory.RuleText, in.Step)
	if strings.TrimSpace(in.Statement) == "" {
		c.add("statement", "is empty", "write the SQL to run")
	} else if r, bad := dsl.TextControl(in.Statement); bad {
		c.add("statement", fmt.Sprintf("has the control character %U", r), "remove it")
	}
}
