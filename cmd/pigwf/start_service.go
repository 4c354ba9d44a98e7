package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pgServiceCmd: `pigwf start pg-service --cluster C [--dry-run]`.
func pgServiceCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-service",
		Usage: "HAProxy on every member with the cluster's services, routing by the agents' health checks (like Pigsty's pgsql-svc)",
		Flags: runbookFlags(&cli.BoolFlag{Name: "dry-run", Usage: "print the HAProxy configuration; change nothing"}),
		Action: func(c *cli.Context) error {
			r, err := newStartRequest(c)
			if err != nil {
				return err
			}
			in, err := starter.PgServiceInput(r.inv, r.cl)
			if err != nil {
				return err
			}
			in.DryRun = c.Bool("dry-run")
			if in.DryRun {
				_ = c.Set("wait", "true")
			}
			var res workflows.PgServiceResult
			err = startAndFollow(c, workflows.PgServiceRunbook, workflows.PgServiceName, in.Cluster, in, starter.PgServiceMeta(in, r.who.req), &res, r.who, false)
			if in.DryRun && err == nil {
				fmt.Printf("dry run: nothing was changed. %s's HAProxy configuration (on %s; the others differ in the stats address):\n\n%s", in.Cluster, in.Nodes[0].Name, res.Config)
			}
			return err
		},
	}
}
