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
				Action: startAction(func(c *cli.Context, _ *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
					in, err := starter.NodeInitInput(cl, splitList(c.StringSlice("nodes")))
					if err != nil {
						return runbookStart{}, err
					}
					return runbookStart{runbook: workflows.NodeInitRunbook, workflow: workflows.NodeInitName, cluster: in.Cluster, input: in,
						meta: starter.NodeInitMeta(in, req), result: &workflows.NodeInitResult{}}, nil
				}),
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
				Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
					var at time.Time
					if t := c.Timestamp("at"); t != nil {
						at = *t
					}
					in, err := starter.SwitchoverInput(inv, cl, c.String("candidate"), c.String("reason"), req.By, at, c.Duration("approval-timeout"))
					if err != nil {
						return runbookStart{}, err
					}
					return runbookStart{runbook: workflows.SwitchoverRunbook, workflow: workflows.SwitchoverName, cluster: in.Cluster, input: in,
						meta: starter.SwitchoverMeta(in, starter.CurrentLeader(c.Context, inv, cl, caDir(c)), req), result: &workflows.SwitchoverResult{}, gated: true}, nil
				}),
			},
			{
				Name:  "pg-cluster-create",
				Usage: "build an HA PostgreSQL cluster from the inventory (like Pigsty's pgsql.yml)",
				Flags: runbookFlags(
					&cli.BoolFlag{Name: "dry-run", Usage: "run the prechecks and print the plan; change nothing"},
					&cli.BoolFlag{Name: "force", Usage: "move aside (never delete) data directories of another system, after an approver agrees"},
					&cli.DurationFlag{Name: "approval-timeout", Usage: "with --force: end unchanged without a decision by then"},
				),
				Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
					in, err := starter.PgClusterCreateInput(inv, cl, req.Inventory)
					if err != nil {
						return runbookStart{}, err
					}
					in.DryRun, in.Force = c.Bool("dry-run"), c.Bool("force")
					if d := c.Duration("approval-timeout"); d > 0 {
						in.Approval.Timeout = d
					}
					res := &workflows.PgClusterCreateResult{}
					rs := runbookStart{runbook: workflows.PgClusterCreateRunbook, workflow: workflows.PgClusterCreateName, cluster: in.Cluster, input: in,
						meta: starter.PgClusterCreateMeta(in, req), result: res, gated: in.Force, follow: in.DryRun}
					if in.DryRun {
						rs.after = func() {
							fmt.Println("dry run: prechecks passed; nothing was changed. The plan:")
							for _, p := range res.Plan {
								fmt.Println("  " + p)
							}
						}
					}
					return rs, nil
				}),
			},
			pitrRestoreCmd(),
			pgServiceCmd(),
			pgRestartCmd(),
			pgReloadCmd(),
			pgBackupCmd(),
			pgUsersCmd(),
			pgDatabasesCmd(),
			pgHBACmd(),
			pgMemberAddCmd(),
			pgReinitCmd(),
			pgMemberRemoveCmd(),
			pgClusterRemoveCmd(),
			runbookStartCmd(),
		},
	}
}

// runbookStart is the run a `pigwf start` subcommand starts, and how to follow it.
type runbookStart struct {
	runbook, workflow, cluster string
	input                      any
	meta                       starter.RunMeta
	result                     any    // the run's result, decoded when it is followed to its end
	gated                      bool   // the run may wait for an approval, where an unsigned request matters
	follow                     bool   // follow it to its end even without --wait (a dry run prints its result)
	after                      func() // prints what the result says, once the run was followed to a good end
}

// startAction is the Action of every `pigwf start` subcommand: the prologue they share (the
// inventory's cluster, the requester and their key), then build's run from the subcommand's own
// flags (a bad flag is refused there, before anything starts), started and followed by
// startAndFollow.
func startAction(build func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		inv, cl, path, err := loadInventoryCluster(c)
		if err != nil {
			return err
		}
		who, err := requesterOf(c, path)
		if err != nil {
			return err
		}
		rs, err := build(c, inv, cl, who.req)
		if err != nil {
			return err
		}
		if rs.follow {
			_ = c.Set("wait", "true")
		}
		return startAndFollow(c, rs, who)
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
// approvers need while it waits for approval: starter.Follow), then rs.after says what the
// result holds.
func startAndFollow(c *cli.Context, rs runbookStart, who requester) error {
	ctx, cancel := signalContext(c)
	defer cancel()
	cl, err := temporalClient(ctx, c, devtls.RoleCLI)
	if err != nil {
		return err
	}
	defer cl.Close()
	run, err := cl.Start(ctx, rs.runbook, rs.workflow, rs.cluster, rs.input, rs.meta)
	if err != nil {
		return err
	}
	fmt.Printf("started %s (run %s)\n  %s\n", run.GetID(), run.GetRunID(), rs.meta.Summary)
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
	case rs.gated:
		fmt.Fprintf(os.Stderr, "pigwf: note: %s\n", who.note)
	}
	if !c.Bool("wait") {
		fmt.Printf("follow it with `pigwf status %s`\n", run.GetID())
		return nil
	}
	last, err := cl.Follow(ctx, run.GetID(), run.GetRunID(), rs.result, os.Stdout)
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
	if rs.after != nil {
		rs.after()
	}
	return nil
}
