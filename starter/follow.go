package starter

import (
	"context"
	"io"
	"time"

	"github.com/pigwf/pigwf/workflows"
)

// Follow waits for a run to end (Wait), printing to w each step as it changes and, whenever the
// run starts to wait for approval, what an approver needs to know and do (PrintPending). It
// returns the last progress seen, and the run's error as Wait does.
func (c *Client) Follow(ctx context.Context, id, runID string, result any, w io.Writer) (workflows.Progress, error) {
	pp := &ProgressPrinter{W: w}
	var last workflows.Progress
	shown := false // the approval block is printed once per wait
	err := c.Wait(ctx, id, runID, result, func(p workflows.Progress) {
		last = p
		pp.Print(p)
		if p.Phase != workflows.PhaseWaitingForApproval {
			shown = false
			return
		}
		if !shown {
			if pend, ok := c.pending(ctx, id, runID, p.Runbook); ok {
				PrintPending(w, pend, time.Now())
				shown = true
			}
		}
	})
	return last, err
}
