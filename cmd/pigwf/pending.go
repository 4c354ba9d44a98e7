package main

import (
	"context"
	"fmt"
	"os"
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
					starter.PrintPending(os.Stdout, p, time.Now())
				}
				if u := cl.ListURL(starter.WaitingForApprovalQuery); u != "" {
					fmt.Printf("every run waiting for approval, in the Web UI: %s\n", u)
				}
				return nil
			})
		},
	}
}
