package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// scheduleRunbookFlags name one schedule: its cluster and runbook.
func scheduleRunbookFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true},
		&cli.StringFlag{Name: "runbook", Value: workflows.PgBackupRunbook, Usage: "the runbook the schedule runs: " + strings.Join(starter.ScheduledRunbooks, ", ")},
	}, more...)
}

// scheduleCmd: `pigwf schedule create|list|delete|pause|resume`, runbooks on Temporal Schedules.
func scheduleCmd() *cli.Command {
	return &cli.Command{
		Name:  "schedule",
		Usage: "run a runbook on a Temporal Schedule (pg-backup)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "a schedule that starts the runbook on the cluster at cron times or intervals",
				Description: "The schedule (ID <runbook>/<cluster>) starts the runbook with the input `pigwf start` would build\n" +
					"from the inventory now: create it again after the inventory changes. Its runs are\n" +
					"<runbook>/<cluster>/scheduled-<time>; a run still open at the next time is not joined by another,\n" +
					"and a run that finds another pigwf run on the cluster ends at once with nothing changed.",
				Flags: scheduleRunbookFlags(
					inventoryFlag,
					&cli.StringFlag{Name: "cron", Usage: "cron expression, five fields in UTC: minute hour day-of-month month day-of-week ('0 2 * * *'), or @daily; CRON_TZ=Zone first for another zone"},
					&cli.DurationFlag{Name: "every", Usage: "an interval instead, e.g. 6h (at least 1s)"},
					backupTypeFlag,
					&cli.BoolFlag{Name: "paused", Usage: "create it paused (pigwf schedule resume starts it)"},
					&cli.StringFlag{Name: "as", Usage: "who creates it, for the record (default: your login)"},
				),
				Action: scheduleCreate,
			},
			{
				Name:  "list",
				Usage: "pigwf's schedules: when, paused, the next runs and the last run's result",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "only this cluster's"},
					&cli.BoolFlag{Name: "json", Usage: "print the list as JSON"},
				},
				Action: func(c *cli.Context) error {
					return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
						rows, err := cl.ListSchedules(ctx, c.String("cluster"))
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(rows)
						}
						starter.PrintSchedules(os.Stdout, rows)
						return nil
					})
				},
			},
			{
				Name:  "delete",
				Usage: "delete the runbook's schedule on the cluster (runs it started go on)",
				Flags: scheduleRunbookFlags(),
				Action: func(c *cli.Context) error {
					return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
						id, err := cl.DeleteSchedule(ctx, c.String("runbook"), c.String("cluster"))
						if err == nil {
							fmt.Printf("deleted schedule %s\n", id)
						}
						return err
					})
				},
			},
			schedulePauseCmd("pause", true),
			schedulePauseCmd("resume", false),
		},
	}
}

func schedulePauseCmd(name string, pause bool) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: name + " the runbook's schedule on the cluster",
		Flags: scheduleRunbookFlags(&cli.StringFlag{Name: "note", Usage: "why, shown by temporal schedule describe"}),
		Action: func(c *cli.Context) error {
			note := c.String("note")
			if note == "" {
				note = name + "d by " + starter.Requester()
			}
			return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
				id, err := cl.PauseSchedule(ctx, c.String("runbook"), c.String("cluster"), pause, note)
				if err == nil {
					fmt.Printf("%sd schedule %s\n", name, id)
				}
				return err
			})
		},
	}
}

// scheduleCreate checks the runbook, the times and the input before it connects, then creates
// the schedule.
func scheduleCreate(c *cli.Context) error {
	runbook := c.String("runbook")
	if !slices.Contains(starter.ScheduledRunbooks, runbook) {
		return fmt.Errorf("--runbook %s: schedules run %s", runbook, strings.Join(starter.ScheduledRunbooks, ", "))
	}
	spec, when, err := starter.ScheduleSpecOf(c.String("cron"), c.Duration("every"))
	if err != nil {
		return err
	}
	inv, cl, path, err := loadInventoryCluster(c)
	if err != nil {
		return err
	}
	by := c.String("as")
	if by == "" {
		by = starter.Requester()
	}
	id := workflows.ScheduleID(runbook, cl.Name)
	req := starter.NewRequest(path)
	req.By = fmt.Sprintf("schedule %s (created by %s, %s)", id, by, when)
	in, err := starter.PgBackupInput(inv, cl, c.String("type"), req.By)
	if err != nil {
		return err
	}
	s := starter.Schedule{Runbook: runbook, Workflow: workflows.PgBackupName, Cluster: cl.Name, Input: in, Meta: starter.PgBackupMeta(in, req),
		Spec: spec, SpecText: when, CreatedBy: by, Paused: c.Bool("paused")}
	return askTemporal(c, func(ctx context.Context, tc *starter.Client) error {
		if _, err := tc.CreateSchedule(ctx, s); err != nil {
			return err
		}
		state := ""
		if s.Paused {
			state = ", paused"
		}
		fmt.Printf("created schedule %s: %s %s backup, %s%s\n  its runs: %s-<time>\n  `pigwf schedule list --cluster %s` shows the next runs and the last result\n",
			id, runbook, in.Type, when, state, workflows.ScheduledWorkflowID(runbook, cl.Name), cl.Name)
		return nil
	})
}
