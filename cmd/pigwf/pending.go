package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

func pendingCmd() *cli.Command {
	return &cli.Command{
		Name:  "pending",
		Usage: "runs waiting for approval, with what they will do",
		Action: func(c *cli.Context) error {
			return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
				runs, err := cl.PendingApprovals(ctx)
				if err != nil {
					return err
				}
				if len(runs) == 0 {
					fmt.Println("no run is waiting for approval")
					return nil
				}
				for _, p := range runs {
					fmt.Printf("%s (%s)\n  plan:      %s\n  approvers: %s\n  deadline:  %s (%s left)\n", p.WorkflowID, p.Runbook, p.State.Plan,
						strings.Join(p.State.Approvers, ", "), p.State.Deadline.Local().Format(time.RFC3339), time.Until(p.State.Deadline).Round(time.Second))
					if len(p.State.Ignored) > 0 {
						fmt.Printf("  ignored:   %d decision(s) from non-approvers\n", len(p.State.Ignored))
					}
					fmt.Printf("  approve:   pigwf approve --by NAME %s\n", p.WorkflowID)
				}
				return nil
			})
		},
	}
}
