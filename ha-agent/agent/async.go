package agent

import (
	"context"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// recordState is what the member record shows as its state while a long
// action runs, in place of PostgreSQL's.
type recordState string

const (
	showPostgresState recordState = "" // PostgreSQL's own state
	showBootstrapping recordState = "bootstrapping"
	showCloning       recordState = "cloning"
	showRecloning     recordState = "recloning"
	showRewinding     recordState = "rewinding"
)

// runAsync runs a long action off the loop; the loop keeps renewing.
// Meanwhile the member record shows state and note.
func (a *Agent) runAsync(busy haagent.Busy, state recordState, note string, fn func(ctx context.Context) error, after func(error)) {
	a.busy, a.busyState, a.busyNote = busy, state, note
	go func() {
		err := fn(context.Background())
		a.asyncDone <- asyncResult{busy: busy, err: err, after: after}
	}()
}

func (a *Agent) finishAsync(r asyncResult) {
	a.busy, a.busyState, a.busyNote = haagent.BusyNone, showPostgresState, ""
	if r.err != nil && r.after == nil {
		a.log.Error("long action failed", "action", string(r.busy), "err", r.err)
	}
	if r.after != nil {
		r.after(r.err)
	}
}

type asyncResult struct {
	busy haagent.Busy
	err  error
	// after runs on the loop goroutine once the action finished.
	after func(error)
}
