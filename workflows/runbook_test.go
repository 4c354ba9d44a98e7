package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/dsl"
)

// The shipped rolling restart, approved: the replicas one at a time, each restarted then waited
// for; the child switchover; then the old primary, found as a replica after it; then the lag.
func TestRunbookRollingRestart(t *testing.T) {
	rb, err := dsl.ParseFile("../runbooks/rolling-restart.yml")
	if err != nil {
		t.Fatal(err)
	}
	in := runbookInput(t, "runbook: x\nsteps: [{name: x, reload: {}}]\n")
	in.Runbook = *rb
	f := &runbookFake{unchanged: map[string]bool{"restart pg-test-3": true}}
	env := newRunbookEnv(t, f, testApprovals)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"state",
		"restart pg-test-2", "wait streaming pg-test-2",
		"restart pg-test-3", "wait streaming pg-test-3",
		"switchover",
		"state", "restart pg-test-1", "restart pg-test-3",
		"state", "wait lag pg-test-1,pg-test-3",
	}, "\n")
	if got := f.log(); got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
	if len(f.children) != 1 || f.children[0].Candidate != "" || f.children[0].RequestedBy != "carol" || !strings.Contains(f.children[0].Reason, "step move-primary (rolling-restart.yml:19)") {
		t.Errorf("child switchover input: %+v", f.children)
	}
	if w := f.waits[len(f.waits)-1]; w.Until != dsl.UntilLag || w.Lag != 16<<20 || w.Timeout != 5*time.Minute {
		t.Errorf("the last wait: %+v", w)
	}
	if res.Outcome != "done" || len(res.Approvals) != 1 || !res.Approvals[0].Approved() || !strings.Contains(res.Approvals[0].Plan, "restart every member of the cluster") ||
		!strings.Contains(res.Approvals[0].Plan, "move-primary: switch the primary over") {
		t.Errorf("result %+v", res)
	}
	rows := progressOf(t, env)
	for _, want := range []string{"-/replicas=changed pg-test-2/restart-replica=changed pg-test-2/replica-streaming=unchanged pg-test-3/restart-replica=unchanged",
		"-/move-primary=changed", "-/old-primary=changed pg-test-1/old-primary=changed pg-test-3/old-primary=unchanged"} {
		if !strings.Contains(rows, want) {
			t.Errorf("progress %s\nlacks %s", rows, want)
		}
	}
}

// A parallel loop runs every member's steps at once: each member's reload waits until the other
// member's has started, which one at a time would never see.
func TestRunbookEachParallel(t *testing.T) {
	in := runbookInput(t, `runbook: p
steps:
  - name: all
    each:
      of: replicas
      parallel: true
      steps:
        - name: reload-member
          reload: {}
        - name: check
          sql: {statement: "SELECT 1"}
`)
	f := &runbookFake{}
	started := map[string]chan struct{}{"reload pg-test-2": make(chan struct{}), "reload pg-test-3": make(chan struct{})}
	other := map[string]string{"reload pg-test-2": "reload pg-test-3", "reload pg-test-3": "reload pg-test-2"}
	f.onCall = func(call string) {
		if ch, ok := started[call]; ok {
			close(ch)
			select {
			case <-started[other[call]]:
			case <-time.After(5 * time.Second):
				t.Errorf("%s ran alone: the loop is not parallel", call)
			}
		}
	}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err != nil {
		t.Fatal(err)
	}
	if got := f.log(); strings.Count(got, "reload ") != 2 || strings.Count(got, "sql ") != 2 {
		t.Errorf("calls:\n%s", got)
	}
	for _, s := range f.sqls {
		if s.Statement != "SELECT 1" || s.Database != "postgres" || s.Node.Name != "pg-test-1" {
			t.Errorf("a loop's sql defaults to the leader, in postgres: %+v", s)
		}
	}
}

// In a parallel loop a member that fails does not stop the others; the run fails naming it, the
// step and its line, and skips what follows.
func TestRunbookEachParallelFailure(t *testing.T) {
	in := runbookInput(t, `runbook: p
steps:
  - name: all
    each:
      of: replicas
      parallel: true
      steps:
        - name: reload-member
          reload: {}
        - name: after
          reload: {}
  - name: later
    reload: {}
`)
	f := &runbookFake{fail: func(call string, _ int32) error {
		if call == "reload pg-test-2" {
			return temporal.NewNonRetryableApplicationError("the agent refused: pg-test-2 is paused", "Conflict", nil)
		}
		return nil
	}}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	_, err := runbookResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "step reload-member (test.yml:8) on pg-test-2: the agent refused") {
		t.Fatalf("err = %v", err)
	}
	if got := f.log(); strings.Count(got, "reload pg-test-3") != 2 {
		t.Errorf("pg-test-3 did not finish its steps:\n%s", got)
	}
	rows := progressOf(t, env)
	for _, want := range []string{"-/all=failed", "pg-test-2/reload-member=failed", "pg-test-2/after=skipped", "pg-test-3/after=changed", "-/later=skipped"} {
		if !strings.Contains(rows, want) {
			t.Errorf("progress %s\nlacks %s", rows, want)
		}
	}
}

// when: a step runs only when the named step's result matches; a skipped step changed nothing.
func TestRunbookWhen(t *testing.T) {
	in := runbookInput(t, `runbook: w
steps:
  - name: reload-all
    reload: {}
  - name: only-if-changed
    sql: {statement: "SELECT 'changed'"}
    when: {step: reload-all, changed: true}
  - name: only-if-not
    sql: {statement: "SELECT 'not'"}
    when: {step: reload-all, changed: false}
  - name: after-skipped
    sql: {statement: "SELECT 'after'"}
    when: {step: only-if-changed, changed: false}
`)
	f := &runbookFake{unchanged: map[string]bool{"reload pg-test-1": true, "reload pg-test-2": true, "reload pg-test-3": true}}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, s := range f.sqls {
		ran = append(ran, s.Statement)
	}
	if strings.Join(ran, ",") != "SELECT 'not',SELECT 'after'" {
		t.Errorf("statements run: %v", ran)
	}
	if rows := progressOf(t, env); !strings.Contains(rows, "-/reload-all=unchanged") || !strings.Contains(rows, "-/only-if-changed=skipped") {
		t.Errorf("progress %s", rows)
	}
	found := false
	for _, s := range res.Steps {
		found = found || (s.Step == "only-if-changed" && s.State == StateSkipped && s.Detail == "skipped: reload-all changed nothing")
	}
	if !found {
		t.Errorf("no skipped record: %+v", res.Steps)
	}
}

// retry: is the activity's attempts and the wait between them; without it a statement is run
// once.
func TestRunbookRetries(t *testing.T) {
	const text = "runbook: r\nsteps:\n  - name: q\n    sql: {statement: \"SELECT 1\"}\n"
	flaky := func(call string, attempt int32) error {
		if attempt < 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	f := &runbookFake{fail: flaky}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, runbookInput(t, text+"    retry: {attempts: 3, wait: 2s}\n"))
	if _, err := runbookResult(t, env); err != nil {
		t.Fatalf("with retry: %v", err)
	}
	if n := strings.Count(f.log(), "sql pg-test-1"); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}

	f = &runbookFake{fail: flaky}
	env = newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, runbookInput(t, text))
	if _, err := runbookResult(t, env); err == nil || !strings.Contains(err.Error(), "step q (test.yml:3) on pg-test-1: connection refused") {
		t.Errorf("without retry: %v", err)
	}
	if n := strings.Count(f.log(), "sql pg-test-1"); n != 1 {
		t.Errorf("%d attempts without retry, want 1", n)
	}
}

// A restart's StartedBefore is fixed when the step is first scheduled: every attempt of the
// activity gets the same, so a restart done before a failed attempt is not done again.
func TestRunbookRestartStartedBeforeStable(t *testing.T) {
	in := runbookInput(t, "runbook: r\nsteps:\n  - name: ok\n    approval: {}\n  - name: r\n    restart: {on: replicas}\n")
	f := &runbookFake{fail: func(call string, attempt int32) error {
		if call == "restart pg-test-2" && attempt == 1 {
			return errors.New("the agent's connection dropped")
		}
		return nil
	}}
	env := newRunbookEnv(t, f, testApprovals)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err != nil {
		t.Fatal(err)
	}
	got := f.restarts["pg-test-2"]
	if len(got) != 2 || got[0].IsZero() || !got[0].Equal(got[1]) {
		t.Fatalf("pg-test-2's attempts had StartedBefore %v; want two, equal", got)
	}
	if third := f.restarts["pg-test-3"]; len(third) != 1 || third[0].Before(got[0]) {
		t.Errorf("pg-test-3: %v", third)
	}
}

// A rejected approval ends the run: nothing after it runs, and the run says so.
func TestRunbookApprovalRejected(t *testing.T) {
	in := runbookInput(t, "runbook: r\nsteps:\n  - name: ok\n    approval: {reason: \"restart the replicas\"}\n  - name: r\n    restart: {}\n")
	f := &runbookFake{}
	env := newRunbookEnv(t, f, testApprovals)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob", Comment: "not now"})
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != RunbookNotApprovedType || !strings.Contains(err.Error(), "step ok (test.yml:3) rejected by bob") {
		t.Fatalf("err = %v", err)
	}
	if f.log() != "" || res.Outcome != "rejected" {
		t.Errorf("calls %q, outcome %q", f.log(), res.Outcome)
	}
	if !strings.Contains(res.Approvals[0].Plan, "restart the replicas") || !strings.Contains(res.Approvals[0].Plan, "Once approved: r: restart PostgreSQL on the replicas") {
		t.Errorf("plan %q", res.Approvals[0].Plan)
	}
	if rows := progressOf(t, env); !strings.Contains(rows, "-/r=skipped") {
		t.Errorf("progress %s", rows)
	}
}

// A wait that does not hold within its timeout fails the run with the step, its line and what
// the agents said; the wait's timeout is the condition's, the activity's a minute longer.
func TestRunbookWaitTimeout(t *testing.T) {
	in := runbookInput(t, "runbook: w\nsteps:\n  - name: caught-up\n    wait: {until: lag, lag: 1MB}\n    timeout: 2m\n  - name: after\n    reload: {}\n")
	f := &runbookFake{fail: func(call string, _ int32) error {
		if strings.HasPrefix(call, "wait ") {
			return temporal.NewNonRetryableApplicationError("not within 2m0s: pg-test-3 lags 40 MB", "WaitTimedOut", nil)
		}
		return nil
	}}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	_, err := runbookResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "step caught-up (test.yml:3): not within 2m0s: pg-test-3 lags 40 MB") {
		t.Fatalf("err = %v", err)
	}
	if w := f.waits[0]; w.Timeout != 2*time.Minute || w.Lag != 1<<20 || strings.Join(w.Targets, ",") != "pg-test-2,pg-test-3" || len(w.Members) != 3 {
		t.Errorf("wait input %+v", w)
	}
	if strings.Contains(f.log(), "reload") {
		t.Error("the step after a failed wait ran")
	}
}

// A dry run reads the cluster's state once and returns the plan with the members each step
// would act on now; nothing else runs.
func TestRunbookDryRun(t *testing.T) {
	in := runbookInput(t, "runbook: d\nsteps:\n  - name: v\n    sql: {on: leader, database: meta, statement: \"VACUUM\"}\n  - name: w\n    wait: {until: streaming}\n")
	in.DryRun = true
	f := &runbookFake{}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	res, err := runbookResult(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if f.log() != "state" || res.Outcome != "dry run" || len(res.Plan) != 2 ||
		!strings.HasSuffix(res.Plan[0], "→ pg-test-1 now") || !strings.HasSuffix(res.Plan[1], "→ pg-test-2, pg-test-3 now") {
		t.Errorf("calls %q, result %+v", f.log(), res)
	}
}

// An input pigwf start would not send (a restart with no approval before it) is refused before
// anything runs, and so is a format this worker does not know.
func TestRunbookRefusesCraftedInput(t *testing.T) {
	in := runbookInput(t, "runbook: c\nsteps:\n  - name: r\n    reload: {}\n")
	in.Runbook.Steps[0] = dsl.Step{Name: "r", Kind: dsl.KindRestart, Line: 3, Restart: &dsl.RestartArgs{On: dsl.TargetReplicas}}
	f := &runbookFake{}
	env := newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err == nil || !strings.Contains(err.Error(), "crafted input") || !strings.Contains(err.Error(), "without an approval") {
		t.Errorf("err = %v", err)
	}
	in.Runbook.Steps[0] = dsl.Step{Name: "r", Kind: dsl.KindSQL, Line: 3} // no arguments: refused, not dereferenced
	env = newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err == nil || !strings.Contains(err.Error(), "has no arguments for its kind") {
		t.Errorf("err = %v", err)
	}
	in = runbookInput(t, "runbook: c\nsteps:\n  - name: r\n    reload: {}\n")
	in.Runbook.Format = dsl.FormatVersion + 1
	env = newRunbookEnv(t, f, testApprovals)
	env.ExecuteWorkflow(RunbookName, in)
	if _, err := runbookResult(t, env); err == nil || !strings.Contains(err.Error(), "upgrade the worker") {
		t.Errorf("err = %v", err)
	}
	if f.log() != "" {
		t.Errorf("activities ran: %s", f.log())
	}
}

// The other shipped runbooks run as written.
func TestRunbookShippedFiles(t *testing.T) {
	for file, want := range map[string]string{
		"vacuum-analyze.yml":  "state\nsql pg-test-1\nstate\nwait lag pg-test-2,pg-test-3",
		"rotate-password.yml": "state\npassword pg-test-1 dbuser_dba admin\nstate\nwait lag pg-test-2,pg-test-3",
	} {
		rb, err := dsl.ParseFile("../runbooks/" + file)
		if err != nil {
			t.Fatal(err)
		}
		in := runbookInput(t, "runbook: x\nsteps: [{name: x, reload: {}}]\n")
		in.Runbook = *rb
		f := &runbookFake{}
		env := newRunbookEnv(t, f, testApprovals)
		signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
		env.ExecuteWorkflow(RunbookName, in)
		if _, err := runbookResult(t, env); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if got := f.log(); got != want {
			t.Errorf("%s: calls\n%s\nwant\n%s", file, got, want)
		}
	}
	if rb, _ := dsl.ParseFile("../runbooks/vacuum-analyze.yml"); rb.Steps[0].SQL.Database != "meta" || rb.Steps[0].SQL.Statement != "VACUUM (ANALYZE)" {
		t.Errorf("vacuum-analyze's statement: %+v", rb.Steps[0].SQL)
	}
}
