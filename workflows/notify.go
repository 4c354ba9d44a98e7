package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// notify posts a chat notification; a failed notification is logged and never fails the run.
func notify(ctx workflow.Context, n activities.Notification) {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "notify: " + n.Event,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(actx, a.Notify, n).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification failed", "event", n.Event, "err", err)
	}
}
