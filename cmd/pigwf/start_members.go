package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The member runbooks: pg-reinit, pg-member-remove, pg-cluster-remove.

var (
	dryRunFlag          = &cli.BoolFlag{Name: "dry-run", Usage: "run the prechecks and print the plan; change nothing"}
	reasonFlag          = &cli.StringFlag{Name: "reason", Usage: "why, for the record"}
	approvalTimeoutFlag = &cli.DurationFlag{Name: "approval-timeout", Usage: "end unchanged without a decision by then (default: pigwf_approval_timeout or 1h)"}
)

func membersRequest(c *cli.Context) starter.PgMembersRequest {
	return starter.PgMembersRequest{Member: c.String("member"), Purge: c.Bool("purge"), DryRun: c.Bool("dry-run"), Reason: c.String("reason"),
		ApprovalTimeout: c.Duration("approval-timeout")}
}

// printMemberResult prints a dry run's plan, or what the run did.
func printMemberResult(res *workflows.PgMemberResult) {
	if res.Outcome == "dry run" {
		fmt.Println("dry run: prechecks passed; nothing was changed. The plan:")
		for _, p := range res.Plan {
			fmt.Println("  " + p)
		}
	} else {
		fmt.Printf("%s: %s\n", res.Member, res.Outcome)
		if res.Aside != "" {
			fmt.Printf("its old data directory is kept at %s\n", res.Aside)
		}
	}
	for _, n := range res.Notes {
		fmt.Println("note: " + n)
	}
}

// pgReinitCmd: `pigwf start pg-reinit --cluster C --member M [--dry-run]`.
func pgReinitCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-reinit",
		Usage: "re-create a broken or diverged replica from the leader (like patronictl reinit); the leader is refused",
		Description: "The member's HA agent stops (and its PostgreSQL with it), its data directory is moved aside (kept,\n" +
			"never deleted), and the agent, started again, clones the leader into the empty directory; the run\n" +
			"ends once the member streams. Refused, with nothing changed, for the leader (switch over first), a\n" +
			"cluster without a leader that takes writes, in maintenance mode, or with another pigwf run open.",
		Flags: runbookFlags(
			&cli.StringFlag{Name: "member", Required: true, Usage: "the replica to re-create (nodename or address)"},
			dryRunFlag, reasonFlag,
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgReinitInput(inv, cl, membersRequest(c), req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgMemberResult{}
			return runbookStart{runbook: workflows.PgReinitRunbook, workflow: workflows.PgReinitName, cluster: in.Cluster, input: in,
				meta: starter.PgReinitMeta(in, req), result: res, follow: in.DryRun, after: func() { printMemberResult(res) }}, nil
		}),
	}
}

// pgMemberRemoveCmd: `pigwf start pg-member-remove --cluster C --member M [--dry-run]`.
func pgMemberRemoveCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-member-remove",
		Usage: "take a replica out of its cluster for good, after an approval (data moved aside, not deleted); never the leader",
		Description: "After an approval, the member's HA agent stops (and its PostgreSQL with it) and stays stopped across\n" +
			"the host's restarts, no DCS key names it any more (the sync key moves on), its replication slot is\n" +
			"dropped on the leader, and its data directory is moved aside. Refused, with nothing changed, for the\n" +
			"leader (switch over first), a cluster without a leader that takes writes, or in maintenance mode.\n" +
			"Remove the member from the inventory afterwards.",
		Flags: runbookFlags(
			&cli.StringFlag{Name: "member", Required: true, Usage: "the replica to remove (nodename or address)"},
			dryRunFlag, reasonFlag, approvalTimeoutFlag,
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgMemberRemoveInput(inv, cl, membersRequest(c), req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgMemberResult{}
			return runbookStart{runbook: workflows.PgMemberRemoveRunbook, workflow: workflows.PgMemberRemoveName, cluster: in.Cluster, input: in,
				meta: starter.PgMemberRemoveMeta(in, req), result: res, gated: !in.DryRun, follow: in.DryRun, after: func() { printMemberResult(res) }}, nil
		}),
	}
}

// pgClusterRemoveCmd: `pigwf start pg-cluster-remove --cluster C [--purge] [--dry-run]`.
func pgClusterRemoveCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-cluster-remove",
		Usage: "take a whole cluster down for good, after an approval (data moved aside; --purge deletes it after a second approval)",
		Description: "After an approval, every member's HA agent stops (replicas first, the leader last) with its PostgreSQL\n" +
			"and stays stopped across the hosts' restarts, the cluster's DCS keys are deleted, and every data\n" +
			"directory is moved aside (kept). With --purge, a second, separate approval then deletes those\n" +
			"moved-aside directories; pgBackRest's repository and its backups are never deleted.",
		Flags: runbookFlags(
			&cli.BoolFlag{Name: "purge", Usage: "then delete the moved-aside data directories, after a second approval"},
			dryRunFlag, reasonFlag, approvalTimeoutFlag,
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgClusterRemoveInput(inv, cl, membersRequest(c), req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgClusterRemoveResult{}
			return runbookStart{runbook: workflows.PgClusterRemoveRunbook, workflow: workflows.PgClusterRemoveName, cluster: in.Cluster, input: in,
				meta: starter.PgClusterRemoveMeta(in, req), result: res, gated: !in.DryRun, follow: in.DryRun,
				after: func() {
					if res.Outcome == "dry run" {
						fmt.Println("dry run: nothing was changed. The plan:")
						for _, p := range res.Plan {
							fmt.Println("  " + p)
						}
						return
					}
					fmt.Printf("%s: %s\n", res.Cluster, res.Outcome)
					members := make([]string, 0, len(res.Aside))
					for m := range res.Aside {
						members = append(members, m)
					}
					sort.Strings(members)
					for _, m := range members {
						fmt.Printf("  %s: data kept at %s\n", m, res.Aside[m])
					}
					if len(res.Purged) > 0 {
						fmt.Printf("purged: %s\n", strings.Join(res.Purged, ", "))
					}
				}}, nil
		}),
	}
}
