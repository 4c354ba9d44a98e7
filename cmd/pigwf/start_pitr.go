package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// pitrRestoreCmd is `pigwf start pitr-restore`.
func pitrRestoreCmd() *cli.Command {
	return &cli.Command{
		Name:  "pitr-restore",
		Usage: "bring the whole cluster back to a point in time, in place, after an approver says yes",
		Description: "Give exactly one target. The run checks it against the recoverable windows (`pigwf backup list`)\n" +
			"before anything changes, shows its plan (backup set, restoring node, new timeline id, what is\n" +
			"discarded, where each data directory is kept) for approval, then pauses HA, stops every member,\n" +
			"keeps every data directory aside (nothing is deleted), restores on the leader's node with\n" +
			"recovery action pause, proves the target from PostgreSQL's own log, promotes, archives the new\n" +
			"timeline's history, hands the leader key to the restored member, resumes HA (the agents\n" +
			"re-create the other members from it), takes a new full backup and runs `pgbackrest check`.\n" +
			"Until the promotion, any failure, rejection or timeout puts the original data back.\n" +
			"The kept directories stay until `pigwf start pitr-restore --cluster C --cleanup` deletes them,\n" +
			"after an approval of the exact list.\n\n" +
			"A time needs its zone: 2026-11-30T09:15:00.25+02:00, '2026-11-30 09:15:00.25+02' or ...Z.",
		Flags: runbookFlags(
			&cli.StringFlag{Name: "target-time", Usage: "the first commit after this moment is not replayed (RFC 3339 or PostgreSQL timestamptz, with a zone)"},
			&cli.StringFlag{Name: "target-lsn", Usage: "replay to this WAL position (X/X, as pg_current_wal_lsn() prints it)"},
			&cli.StringFlag{Name: "target-xid", Usage: "replay to this transaction's commit (32-bit xid)"},
			&cli.StringFlag{Name: "target-name", Usage: "replay to this restore point (made with pigwf restore-point)"},
			&cli.BoolFlag{Name: "immediate", Usage: "stop at the end of the backup (the earliest consistent state)"},
			&cli.BoolFlag{Name: "latest", Usage: "replay to the end of the archived WAL"},
			&cli.BoolFlag{Name: "exclusive", Usage: "stop just before the target instead of just after it (time, LSN, xid)"},
			&cli.StringFlag{Name: "target-timeline", Usage: `the timeline to recover along: an id, "current" or "latest" (default: the cluster's own timeline, on which the target lies)`},
			&cli.StringFlag{Name: "backup-set", Usage: "restore this backup (a label pigwf backup list prints); default: the newest that stopped before the target (xid, name: the earliest)"},
			&cli.BoolFlag{Name: "inspect", Usage: "stop paused at the target and wait for a second approval, showing the last replayed commit, before promoting"},
			&cli.BoolFlag{Name: "cleanup", Usage: "restore nothing: delete the data directories earlier restores kept aside, after an approval of the list"},
			&cli.BoolFlag{Name: "dry-run", Usage: "run the precheck and print the plan; change nothing"},
			&cli.StringFlag{Name: "reason", Usage: "why, for the record"},
			&cli.DurationFlag{Name: "approval-timeout", Usage: "end (rolled back) without a decision by then (default: pigwf_approval_timeout or 1h)"},
		),
		Action: func(c *cli.Context) error {
			r, err := newStartRequest(c)
			if err != nil {
				return err
			}
			in, err := starter.PITRRestoreInput(r.inv, r.cl, starter.PITRRequest{
				Flags: pitr.Flags{Time: c.String("target-time"), LSN: c.String("target-lsn"), XID: c.String("target-xid"), Name: c.String("target-name"),
					Immediate: c.Bool("immediate"), Latest: c.Bool("latest"), Exclusive: c.Bool("exclusive"), Timeline: c.String("target-timeline")},
				BackupSet: c.String("backup-set"), Inspect: c.Bool("inspect"), Cleanup: c.Bool("cleanup"), DryRun: c.Bool("dry-run"), Reason: c.String("reason"),
				Timeout: c.Duration("approval-timeout"),
			}, r.who.req.By)
			if err != nil {
				return err
			}
			if in.DryRun {
				_ = c.Set("wait", "true")
			}
			var res workflows.PITRRestoreResult
			err = startAndFollow(c, workflows.PITRRestoreRunbook, workflows.PITRRestoreName, in.Cluster, in, starter.PITRRestoreMeta(in, r.who.req), &res, r.who, !in.DryRun)
			if in.Cleanup && err == nil {
				for _, l := range res.Leftovers {
					fmt.Printf("  %s: %s (%s) %s\n", l.Member, l.Path, l.Size, map[bool]string{true: "would be deleted", false: "deleted"}[in.DryRun])
				}
				if len(res.Leftovers) == 0 {
					fmt.Println("nothing to clean: no data directory kept by an earlier restore")
				}
				return nil
			}
			if in.DryRun && err == nil {
				fmt.Println("dry run: the precheck passed; nothing was changed. The plan:")
				fmt.Println("  " + strings.ReplaceAll(res.Plan.Describe(in.Cluster), "; ", ";\n  "))
			}
			return err
		},
	}
}
