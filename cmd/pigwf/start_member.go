package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pgMemberAddCmd: `pigwf start pg-member-add --cluster C --nodes ADDR[,ADDR] [--dry-run]`.
func pgMemberAddCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-member-add",
		Usage: "add hosts of the inventory to a running cluster as replicas: node-init where needed, cloned from the leader, streaming",
		Description: "Add the new hosts to the inventory under the cluster first (pg_role: replica), then name them here.\n" +
			"The run refuses, with nothing changed, a cluster with another pigwf run open, without a leader that\n" +
			"takes writes, or in maintenance mode. New hosts that lack node-init get it as a child run. Every\n" +
			"member's pg_hba.conf is written from the inventory (now listing the new addresses) and reloaded; each\n" +
			"new host is cloned from the leader read just before (never from a member in recovery), started by its\n" +
			"own HA agent, and streams. Nothing restarts: the cluster takes writes throughout. If the cluster runs\n" +
			"HAProxy, run pg-service afterwards so that it routes to the new members.",
		Flags: runbookFlags(
			&cli.StringSliceFlag{Name: "nodes", Aliases: []string{"l"}, Required: true, Usage: "the new hosts (address or nodename), comma separated, listed under the cluster in the inventory"},
			&cli.BoolFlag{Name: "dry-run", Usage: "run the prechecks and print the plan; change nothing"},
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgMemberAddInput(inv, cl, splitList(c.StringSlice("nodes")), req.Inventory)
			if err != nil {
				return runbookStart{}, err
			}
			in.DryRun = c.Bool("dry-run")
			res := &workflows.PgMemberAddResult{}
			return runbookStart{runbook: workflows.PgMemberAddRunbook, workflow: workflows.PgMemberAddName, cluster: in.Cluster, input: in,
				meta: starter.PgMemberAddMeta(in, req), result: res, follow: in.DryRun,
				after: func() { printMemberAdd(res, in.DryRun) }}, nil
		}),
	}
}

func printMemberAdd(res *workflows.PgMemberAddResult, dryRun bool) {
	if dryRun {
		fmt.Println("dry run: prechecks passed; nothing was changed. The plan:")
		for _, p := range res.Plan {
			fmt.Println("  " + p)
		}
	}
	if len(res.Streaming) > 0 {
		fmt.Printf("streaming already (left alone): %s\n", strings.Join(res.Streaming, ", "))
	}
	if len(res.Added) > 0 {
		fmt.Printf("added, streaming from %s: %s\n", res.Leader, strings.Join(res.Added, ", "))
	}
	for _, n := range res.Notes {
		fmt.Println("note: " + n)
	}
}
