package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pgServiceCmd: `pigwf start pg-service --cluster C [--dry-run]`.
func pgServiceCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-service",
		Usage: "HAProxy on every member with the cluster's services, routing by the agents' health checks (like Pigsty's pgsql-svc)",
		Flags: runbookFlags(&cli.BoolFlag{Name: "dry-run", Usage: "print the HAProxy configuration; change nothing"}),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgServiceInput(inv, cl)
			if err != nil {
				return runbookStart{}, err
			}
			in.DryRun = c.Bool("dry-run")
			res := &workflows.PgServiceResult{}
			rs := runbookStart{runbook: workflows.PgServiceRunbook, workflow: workflows.PgServiceName, cluster: in.Cluster, input: in,
				meta: starter.PgServiceMeta(in, req), result: res, follow: in.DryRun}
			if in.DryRun {
				rs.after = func() {
					fmt.Printf("dry run: nothing was changed. %s's HAProxy configuration (on %s; the others differ in the stats address):\n\n%s", in.Cluster, in.Nodes[0].Name, res.Config)
				}
			}
			return rs, nil
		}),
	}
}
