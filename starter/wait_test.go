package starter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/starter"
)

// A failed run: Wait says the workflow's own message, and the failure's type still reaches the
// caller (control flow on types, never on the message).
func TestWaitKeepsTheFailuresType(t *testing.T) {
	c := temporalServer(t)
	c.TaskQueue = "starter-wait-test"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := worker.New(c.C, c.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context) error {
		return temporal.NewNonRetryableApplicationError("the backup on pg-wait-1 failed", "WaitTestFailed", nil)
	}, workflow.RegisterOptions{Name: "WaitTest"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run, err := c.Start(ctx, "pg-backup", "WaitTest", "pg-wait", nil, starter.RunMeta{Summary: "wait test"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Wait(ctx, run.GetID(), run.GetRunID(), nil, nil)
	if err == nil || err.Error() != "the backup on pg-wait-1 failed" {
		t.Fatalf("Wait = %v, want the workflow's message alone", err)
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "WaitTestFailed" {
		t.Errorf("Wait's error does not reach the failure's type: %#v", err)
	}
	var rf *starter.RunFailedError
	if !errors.As(err, &rf) {
		t.Errorf("Wait's error is not a *RunFailedError: %T", err)
	}
}
