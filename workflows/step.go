package workflows

import (
	"cmp"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// step is one tracked activity of a runbook: the progress query shows it under (node, name) and
// its activity runs with ID id. The ID, the activity type and the order of steps are part of the
// workflow's history: changing them for a released runbook needs workflow.GetVersion (the replay
// tests also pin the options).
type step struct {
	node  string // progress key: a member or node; "" for a step on the control side
	name  string
	id    string
	retry retry
	what  string // what the step does, for people (the activity's summary in the Web UI); default: name
}

// summary is the step's activity summary in the Web UI: "pg-test-2: clone from pg-test-1".
func (s step) summary() string {
	what := orDefault(s.what, s.name)
	if s.node == "" {
		return what
	}
	return s.node + ": " + what
}

// retry is how long one attempt of a step may take and how often it is tried; between attempts
// the wait doubles from wait (a second when unset) up to maxWait.
type retry struct {
	timeout  time.Duration
	attempts int32
	maxWait  time.Duration
	wait     time.Duration
}

// controlStep is a step of the control side (the worker itself, the DCS): tracked under no
// node, with activity ID control/<name>.
func controlStep(name string, r retry) step {
	return step{name: name, id: "control/" + name, retry: r}
}

// memberStep is a step on a cluster member, tracked under the member's name, with activity ID
// <member>/<name>.
func memberStep(member, name string, r retry) step {
	return step{node: member, name: name, id: member + "/" + name, retry: r}
}

// stepHeartbeat: a step whose activity heartbeats (the remote steps do, every two seconds) is
// retried on another worker this long after its worker died; steps are idempotent, so a retry
// after a half-done attempt is safe. An activity that never heartbeats must finish within it.
const stepHeartbeat = 10 * time.Second

// activityOptions are the options of the step's activity: every option of a runbook step's
// activity is set here and nowhere else.
func (s step) activityOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		Summary:             s.summary(),
		ActivityID:          s.id,
		StartToCloseTimeout: s.retry.timeout,
		HeartbeatTimeout:    stepHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    cmp.Or(s.retry.wait, time.Second),
			BackoffCoefficient: 2,
			MaximumInterval:    s.retry.maxWait,
			MaximumAttempts:    s.retry.attempts,
		},
	}
}

// outcome turns an activity's result into the step's final state and detail.
type outcome[R any] func(R) (state, detail string)

// stepOutcome is the outcome of a step whose activity reports a StepResult.
func stepOutcome(sr activities.StepResult) (string, string) {
	if sr.Changed {
		return StateChanged, sr.Summary()
	}
	return StateUnchanged, sr.Summary()
}

// checkOutcome is the outcome of a step that only looks: unchanged, whatever the activity says.
func checkOutcome(sr activities.StepResult) (string, string) { return StateUnchanged, sr.Summary() }

// runStep is the one step runner of every runbook. It marks the step running, executes its
// activity with the step's options, and records the outcome: on failure the step is failed with
// the activity's own message and the error is a *stepFailure; otherwise out decides the state.
// The step's end and duration go to the step metrics (metrics.go).
func runStep[R any](ctx workflow.Context, t *tracker, s step, out outcome[R], activity any, args ...any) (R, error) {
	var res R
	t.set(s, StateRunning, "")
	start := workflow.Now(ctx)
	actx := workflow.WithActivityOptions(ctx, s.activityOptions())
	if err := workflow.ExecuteActivity(actx, activity, args...).Get(ctx, &res); err != nil {
		f := &stepFailure{msg: failureMessage(err), err: err}
		t.set(s, StateFailed, f.msg)
		t.stepEnded(ctx, s, StateFailed, workflow.Now(ctx).Sub(start))
		return res, f
	}
	state, detail := out(res)
	t.set(s, state, detail)
	t.stepEnded(ctx, s, state, workflow.Now(ctx).Sub(start))
	return res, nil
}

// stepFailure is a step whose activity failed. Its text is what the activity said, without
// Temporal's wrapping; the Temporal error stays reachable through errors.As.
type stepFailure struct {
	msg string
	err error
}

func (f *stepFailure) Error() string { return f.msg }
func (f *stepFailure) Unwrap() error { return f.err }

// failureMessage is the innermost application message of an activity failure: what the
// activity said, without Temporal's wrapping.
func failureMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timed out (" + to.TimeoutType().String() + ")"
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "canceled"
	}
	return err.Error()
}

// parallel runs fn(ctx, i) for i in [0, n) on workflow coroutines, started in index order, and
// waits for all of them. Its error is Await's: the run was canceled.
func parallel(ctx workflow.Context, n int, fn func(ctx workflow.Context, i int)) error {
	done := 0
	for i := range n {
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer func() { done++ }()
			fn(gctx, i)
		})
	}
	return workflow.Await(ctx, func() bool { return done == n })
}

// within is the retry of a step on a cluster or the DCS: attempts of at most timeout, waiting at
// most 20 seconds between them.
func within(timeout time.Duration, attempts int32) retry {
	return retry{timeout: timeout, attempts: attempts, maxWait: 20 * time.Second}
}

// sleepUntil waits until at (a runbook's --at), when it is set and still ahead, showing step s
// as scheduled meanwhile and naming the timer by what it waits for.
func sleepUntil(ctx workflow.Context, track *tracker, s step, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
		when := at.UTC().Format(time.RFC3339)
		track.set(s, StateRunning, "scheduled for "+when)
		return workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "waiting for the scheduled time " + when}).Get(ctx, nil)
	}
	return nil
}
