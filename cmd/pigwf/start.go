package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// runbookFlags are the flags every runbook takes, then its own.
func runbookFlags(own ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true},
		inventoryFlag,
		&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "follow progress until the run ends"},
		&cli.StringFlag{Name: "as", Usage: "who asks, as the worker's approvals file names you (default: your login); the request is signed with your key, which four eyes needs"},
		keyFlag,
	}, own...)
}

// startRequest is what every `pigwf start` subcommand resolves first: the inventory, its file,
// the cluster, and who asks.
type startRequest struct {
	inv  *inventory.Inventory
	cl   *inventory.Cluster
	path string
	who  requester
}

func newStartRequest(c *cli.Context) (startRequest, error) {
	inv, cl, path, err := loadInventoryCluster(c)
	if err != nil {
		return startRequest{}, err
	}
	who, err := requesterOf(c, path)
	return startRequest{inv: inv, cl: cl, path: path, who: who}, err
}

func startCmd() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "start a runbook",
		Subcommands: []*cli.Command{
			{
				Name:  "node-init",
				Usage: "prepare the nodes of a cluster for PostgreSQL (like Pigsty's node.yml)",
				Flags: runbookFlags(
					&cli.StringSliceFlag{Name: "nodes", Aliases: []string{"l"}, Usage: "only these nodes (address or nodename), comma separated"},
				),
				Action: func(c *cli.Context) error {
					r, err := newStartRequest(c)
					if err != nil {
						return err
					}
					in, err := starter.NodeInitInput(r.cl, splitList(c.StringSlice("nodes")))
					if err != nil {
						return err
					}
					meta := starter.NodeInitMeta(in, r.who.req)
					var res workflows.NodeInitResult
					return startAndFollow(c, workflows.NodeInitRunbook, workflows.NodeInitName, in.Cluster, in, meta, &res, r.who, false)
				},
			},
			{
				Name:  "switchover",
				Usage: "move the primary role to a replica, after an approver says yes",
				Flags: runbookFlags(
					&cli.StringFlag{Name: "candidate", Usage: "member (nodename or address) to promote; default: a synchronous/least-lagging standby"},
					&cli.TimestampFlag{Name: "at", Layout: time.RFC3339, Usage: "switch no earlier than this time (RFC 3339)"},
					&cli.StringFlag{Name: "reason", Usage: "why, for the record"},
					&cli.DurationFlag{Name: "approval-timeout", Usage: "end the run unchanged without a decision by then (default: pigwf_approval_timeout or 1h)"},
				),
				Action: func(c *cli.Context) error {
					r, err := newStartRequest(c)
					if err != nil {
						return err
					}
					var at time.Time
					if t := c.Timestamp("at"); t != nil {
						at = *t
					}
					in, err := starter.SwitchoverInput(r.inv, r.cl, c.String("candidate"), c.String("reason"), r.who.req.By, at, c.Duration("approval-timeout"))
					if err != nil {
						return err
					}
					meta := starter.SwitchoverMeta(in, starter.CurrentLeader(c.Context, r.inv, r.cl, caDir(c)), r.who.req)
					var res workflows.SwitchoverResult
					return startAndFollow(c, workflows.SwitchoverRunbook, workflows.SwitchoverName, in.Cluster, in, meta, &res, r.who, true)
				},
			},
			{
				Name:  "pg-cluster-create",
				Usage: "build an HA PostgreSQL cluster from the inventory (like Pigsty's pgsql.yml)",
				Flags: runbookFlags(
					&cli.BoolFlag{Name: "dry-run", Usage: "run the prechecks and print the plan; change nothing"},
					&cli.BoolFlag{Name: "force", Usage: "move aside (never delete) data directories of another system, after an approver agrees"},
					&cli.DurationFlag{Name: "approval-timeout", Usage: "with --force: end unchanged without a decision by then"},
				),
				Action: func(c *cli.Context) error {
					r, err := newStartRequest(c)
					if err != nil {
						return err
					}
					in, err := starter.PgClusterCreateInput(r.inv, r.cl, r.path)
					if err != nil {
						return err
					}
					in.DryRun, in.Force = c.Bool("dry-run"), c.Bool("force")
					if d := c.Duration("approval-timeout"); d > 0 {
						in.Approval.Timeout = d
					}
					if in.DryRun {
						_ = c.Set("wait", "true")
					}
					meta := starter.PgClusterCreateMeta(in, r.who.req)
					var res workflows.PgClusterCreateResult
					err = startAndFollow(c, workflows.PgClusterCreateRunbook, workflows.PgClusterCreateName, in.Cluster, in, meta, &res, r.who, in.Force)
					if in.DryRun && err == nil {
						fmt.Println("dry run: prechecks passed; nothing was changed. The plan:")
						for _, p := range res.Plan {
							fmt.Println("  " + p)
						}
					}
					return err
				},
			},
			pitrRestoreCmd(),
			pgServiceCmd(),
			runbookStartCmd(),
		},
	}
}

func splitList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// startAndFollow starts the run, sends the requester's signed request (when their key was found)
// and prints its page; with --wait it follows the run to its end (steps as they change, and what
// approvers need while it waits for approval: starter.Follow). gated says the run may wait for an
// approval, where an unsigned request matters.
func startAndFollow(c *cli.Context, runbook, wfName, cluster string, input any, meta starter.RunMeta, result any, who requester, gated bool) error {
	ctx, cancel := signalContext(c)
	defer cancel()
	cl, err := temporalClient(ctx, c, devtls.RoleCLI)
	if err != nil {
		return err
	}
	defer cl.Close()
	run, err := cl.Start(ctx, runbook, wfName, cluster, input, meta)
	if err != nil {
		return err
	}
	fmt.Printf("started %s (run %s)\n  %s\n", run.GetID(), run.GetRunID(), meta.Summary)
	if u := cl.RunURL(run.GetID(), run.GetRunID()); u != "" {
		fmt.Printf("  %s\n", u)
	}
	switch {
	case who.key != nil:
		if err := cl.SignRequest(ctx, run.GetID(), run.GetRunID(), *who.key); err != nil {
			fmt.Fprintf(os.Stderr, "pigwf: warning: the run started, but its signed request was not sent (%v): under a four-eyes policy nobody can approve it\n", err)
		} else {
			fmt.Printf("  request signed by %s\n", who.key.Name)
		}
	case gated:
		fmt.Fprintf(os.Stderr, "pigwf: note: %s\n", who.note)
	}
	if !c.Bool("wait") {
		fmt.Printf("follow it with `pigwf status %s`\n", run.GetID())
		return nil
	}
	last, err := cl.Follow(ctx, run.GetID(), run.GetRunID(), result, os.Stdout)
	if errors.Is(err, context.Canceled) {
		fmt.Printf("\nstopped following; the run goes on: `pigwf status %s`\n", run.GetID())
		return nil
	}
	if len(last.Steps) > 0 {
		starter.Recap(os.Stdout, last)
	}
	if err != nil {
		return fmt.Errorf("%s failed: %v", run.GetID(), err)
	}
	return nil
}
