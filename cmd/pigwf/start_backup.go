package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// backupTypeFlag is --type of pg-backup and of its schedules.
var backupTypeFlag = &cli.StringFlag{Name: "type", Value: starter.DefaultBackupType, Usage: "full, diff or incr (a diff or incr with no full backup to refer to becomes a full one)"}

// pgBackupCmd: `pigwf start pg-backup --cluster C [--type full|diff|incr]`.
func pgBackupCmd() *cli.Command {
	return &cli.Command{
		Name:  "pg-backup",
		Usage: "take a pgBackRest backup (on the leader, or a streaming replica with pg_backup_source: replica), then expire past retention",
		Description: "The run refuses a cluster with another pigwf run open, finds the leader through the HA agents, and\n" +
			"takes the backup where pg_backup_source says: on the leader, or on an asynchronous streaming replica with\n" +
			"pgBackRest's backup-standby (the leader's pgBackRest TLS server, which the run starts, starts and stops the\n" +
			"backup). It then expires backups past pgbackrest_retention_full. `pigwf schedule create` runs it on a\n" +
			"Temporal Schedule; `pigwf backup list` shows the backups.",
		Flags: runbookFlags(backupTypeFlag),
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			in, err := starter.PgBackupInput(inv, cl, c.String("type"), req.By)
			if err != nil {
				return runbookStart{}, err
			}
			res := &workflows.PgBackupResult{}
			return runbookStart{runbook: workflows.PgBackupRunbook, workflow: workflows.PgBackupName, cluster: in.Cluster, input: in,
				meta: starter.PgBackupMeta(in, req), result: res,
				after: func() {
					fmt.Printf("%s backup %s on %s\n", res.Type, res.Backup, res.Source)
					for _, n := range res.Notes {
						fmt.Println("  note: " + n)
					}
					if len(res.Expired) > 0 {
						fmt.Printf("expired: %s\n", strings.Join(res.Expired, ", "))
					}
				}}, nil
		}),
	}
}
