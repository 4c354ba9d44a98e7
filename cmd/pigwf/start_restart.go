package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pgRestartCmd: `pigwf start pg-restart --cluster C [--pending] [--member M] [--at T|+10m]`.
func pgRestartCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-restart",
		Usage: "restart PostgreSQL through the HA agents: replicas one at a time, then the leader after an approved switchover",
		Description: "Each replica is restarted by its agent and streams again before the next. When the leader is to be\n" +
			"restarted, a switchover (the switchover runbook as a child run, switchover/<cluster>, approved like any\n" +
			"switchover) moves the primary role first, onto a restarted synchronous standby when there is one; the\n" +
			"old leader is then restarted as a replica. Writes stop only at the switchover. A cluster without a\n" +
			"leader that takes writes, in maintenance mode, or an unknown --member is refused with nothing changed.",
		Flags: runbookFlags(
			&cli.BoolFlag{Name: "pending", Usage: "only members with a setting waiting for a restart (after pg-reload)"},
			&cli.StringFlag{Name: "member", Usage: "only this member (nodename or address); the leader is restarted after a switchover"},
			&cli.StringFlag{Name: "at", Usage: "start no earlier than this: an RFC 3339 time (2026-12-01T02:00:00Z) or a delay (+10m)"},
			&cli.StringFlag{Name: "reason", Usage: "why, for the record"},
			&cli.DurationFlag{Name: "approval-timeout", Usage: "the switchover's: end without a decision by then (default: pigwf_approval_timeout or 1h)"},
		),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			at, err := starter.ParseAt(c.String("at"), time.Now())
			if err != nil {
				return runbookStart{}, err
			}
			in, err := starter.PgRestartInput(inv, cl, starter.PgRestartRequest{Pending: c.Bool("pending"), Member: c.String("member"), At: at,
				Reason: c.String("reason"), ApprovalTimeout: c.Duration("approval-timeout")}, req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgRestartResult{}
			return runbookStart{runbook: workflows.PgRestartRunbook, workflow: workflows.PgRestartName, cluster: in.Cluster, input: in,
				meta: starter.PgRestartMeta(in, req), result: res, gated: true,
				after: func() {
					if res.Plan.Nothing() {
						fmt.Printf("nothing to restart: %s\n", strings.Join(res.Plan.Left, "; "))
						return
					}
					fmt.Printf("restarted: %s\n", strings.Join(res.Restarted, ", "))
				}}, nil
		}),
	}
}

// pgReloadCmd: `pigwf start pg-reload --cluster C`.
func pgReloadCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-reload",
		Usage: "have every member's HA agent write the cluster's dynamic parameters and reload PostgreSQL (restarts nothing)",
		Flags: runbookFlags(),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgReloadInput(inv, cl)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgReloadResult{}
			return runbookStart{runbook: workflows.PgReloadRunbook, workflow: workflows.PgReloadName, cluster: in.Cluster, input: in,
				meta: starter.PgReloadMeta(in, req), result: res,
				after: func() {
					if res.Next == "" {
						fmt.Println("no member waits for a restart")
						return
					}
					for _, m := range in.Members {
						if names, ok := res.PendingRestart[m.Name]; ok {
							fmt.Printf("%s waits for a restart: %s\n", m.Name, strings.Join(names, ", "))
						}
					}
					fmt.Printf("restart them with `%s`\n", res.Next)
				}}, nil
		}),
	}
}
