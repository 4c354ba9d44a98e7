package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

// restorePointTimeout bounds the whole command: the leader lookup, the SQL and the wait for the
// archiver.
const restorePointTimeout = 2 * time.Minute

func restorePointCmd() *cli.Command {
	return &cli.Command{
		Name:      "restore-point",
		Usage:     "create a named restore point on the cluster's leader, for a later point-in-time recovery",
		ArgsUsage: "NAME",
		Description: "Checks NAME by the rule recovery's --target-name follows (a refusal says it) before\n" +
			"anything else, finds the current leader (its agents' view, or the DCS when none answers;\n" +
			"a paused cluster still has one), and runs pg_create_restore_point(NAME) there as postgres over\n" +
			"the local socket, through SSH (host keys checked against the inventory's known_hosts). It then\n" +
			"switches to a new WAL segment (pg_switch_wal) so the segment holding the point is archived now,\n" +
			"and waits for the archiver to report it: only archived WAL can be replayed to the point.\n" +
			"Prints the point's LSN, the server's time, its WAL file and the leader.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true, Usage: "cluster name"},
			inventoryFlag,
			&cli.BoolFlag{Name: "json", Usage: "print the restore point as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("want exactly one argument, the restore point NAME; got %d", c.NArg())
			}
			name, err := starter.CheckRestorePointName(c.Args().First())
			if err != nil {
				return err
			}
			inv, cl, _, err := loadInventoryCluster(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, restorePointTimeout)
			defer cancel()
			rp, err := starter.CreateRestorePoint(ctx, inv, cl, name, caDir(c))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(rp)
			}
			starter.PrintRestorePoint(os.Stdout, rp)
			return nil
		},
	}
}
