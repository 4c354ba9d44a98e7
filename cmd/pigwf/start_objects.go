package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pgUsersCmd: `pigwf start pg-users --cluster C [--name U] [--dry-run]`.
func pgUsersCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-users",
		Usage: "apply the inventory's pg_users to a running cluster, on its leader: create, alter, drop (state: absent) (like Pigsty's pgsql-user)",
		Description: "Each user is planned against the leader's catalog and reported created, altered (which attributes), dropped\n" +
			"or unchanged. A user to drop that owns objects or holds privileges in any database refuses the run with\n" +
			"nothing changed. Passwords come from the inventory, read by the worker, and are set as SCRAM verifiers.",
		Flags: runbookFlags(
			&cli.StringFlag{Name: "name", Usage: "only this user of pg_users"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change; change nothing"},
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgUsersInput(inv, cl, req.Inventory, starter.ObjectsRequest{Name: c.String("name"), DryRun: c.Bool("dry-run")}, req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgObjectsResult{}
			return runbookStart{runbook: workflows.PgUsersRunbook, workflow: workflows.PgUsersName, cluster: in.Cluster, input: in,
				meta: starter.PgUsersMeta(in, req), result: res, follow: in.DryRun, after: func() { printObjects(res, in.DryRun) }}, nil
		}),
	}
}

// pgDatabasesCmd: `pigwf start pg-databases --cluster C [--name D] [--dry-run] [--approval-timeout T]`.
func pgDatabasesCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-databases",
		Usage: "apply the inventory's pg_databases to a running cluster, on its leader; a drop (state: absent) after an approval (like Pigsty's pgsql-db)",
		Description: "Each database is planned against the leader's catalog and reported created, altered (which attributes),\n" +
			"dropped or unchanged. Dropping one waits for an approval (`pigwf approve pg-databases/<cluster> --by NAME`);\n" +
			"a database in use (sessions, replication slots, subscriptions) refuses the run with nothing changed.",
		Flags: runbookFlags(
			&cli.StringFlag{Name: "name", Usage: "only this database of pg_databases"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change; change nothing"},
			&cli.DurationFlag{Name: "approval-timeout", Usage: "a drop's approval: end unchanged without a decision by then (default: pigwf_approval_timeout or 1h)"},
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgDatabasesInput(inv, cl, req.Inventory, starter.ObjectsRequest{Name: c.String("name"), DryRun: c.Bool("dry-run"),
				ApprovalTimeout: c.Duration("approval-timeout")}, req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgObjectsResult{}
			return runbookStart{runbook: workflows.PgDatabasesRunbook, workflow: workflows.PgDatabasesName, cluster: in.Cluster, input: in,
				meta: starter.PgDatabasesMeta(in, req), result: res, follow: in.DryRun, gated: !in.DryRun && len(starter.DatabasesToDrop(in)) > 0,
				after: func() { printObjects(res, in.DryRun) }}, nil
		}),
	}
}

// printObjects says what a pg-users or pg-databases run did, or would do.
func printObjects(res *workflows.PgObjectsResult, dryRun bool) {
	if dryRun {
		fmt.Printf("dry run on %s: nothing was changed. The plan (%s):\n", res.Leader, activities.ObjectsSummary(res.Plan))
		for _, c := range res.Plan {
			fmt.Println("  " + c.String())
		}
		return
	}
	fmt.Printf("%s on %s: %s\n", res.Outcome, res.Leader, activities.ObjectsSummary(res.Plan))
}

// pgHBACmd: `pigwf start pg-hba --cluster C [--dry-run]`.
func pgHBACmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-hba",
		Usage: "write pg_hba.conf from the inventory's pg_hba_rules on every member and reload it (like Pigsty's pgsql-hba)",
		Flags: runbookFlags(&cli.BoolFlag{Name: "dry-run", Usage: "print the lines each member would gain and lose; change nothing"}),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgHBAInput(inv, cl, req.Inventory, c.Bool("dry-run"))
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgHBAResult{}
			rs := runbookStart{runbook: workflows.PgHBARunbook, workflow: workflows.PgHBAName, cluster: in.Cluster, input: in,
				meta: starter.PgHBAMeta(in, req, len(cl.HBARules)), result: res, follow: in.DryRun}
			if in.DryRun {
				rs.after = func() {
					fmt.Printf("dry run: nothing was changed. pg_hba.conf as pg-hba writes it:\n\n%s\n", starter.HBALines(in))
					for i, sr := range res.Members {
						if sr.Facts[activities.FactDiffers] != "1" {
							fmt.Printf("%s: as rendered\n", in.Members[i].Name)
							continue
						}
						fmt.Printf("%s:\n", in.Members[i].Name)
						for _, n := range sr.Notes {
							fmt.Println("  " + n)
						}
					}
				}
			}
			return rs, nil
		}),
	}
}
