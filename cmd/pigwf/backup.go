package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

// backupListTimeout bounds the whole listing: pgbackrest info on each member in turn.
const backupListTimeout = 2 * time.Minute

func backupCmd() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "the cluster's pgBackRest backups",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "backups and the recoverable window per timeline (from pgbackrest info on a member, over SSH)",
			Description: "Runs `pgbackrest --output=json info` for the stanza (the cluster's name) on the first member that\n" +
				"answers, as postgres over SSH (host keys checked against the inventory's known_hosts), and\n" +
				"prints each backup set and, below, what can be recovered on each timeline: from the stop of\n" +
				"its earliest usable backup to the end of the WAL known to be archived on it, and how that end\n" +
				"is known. pgbackrest info gives no time for the end of the archive, only a WAL position.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true, Usage: "cluster name (the pgBackRest stanza)"},
				inventoryFlag,
				&cli.BoolFlag{Name: "json", Usage: "print the list as JSON"},
			},
			Action: func(c *cli.Context) error {
				_, cl, _, err := loadInventoryCluster(c)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(c.Context, backupListTimeout)
				defer cancel()
				l, err := starter.ListBackups(ctx, cl)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(l)
				}
				starter.PrintBackupList(os.Stdout, l)
				return nil
			},
		}},
	}
}
