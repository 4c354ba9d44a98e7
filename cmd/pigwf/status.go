package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

func statusCmd() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a run's state and per-step progress",
		ArgsUsage: "WORKFLOW-ID (e.g. node-init/pg-test)",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "run-id"}, &cli.BoolFlag{Name: "json"}},
		Action: func(c *cli.Context) error {
			id, values, bools, err := positionalWithFlags(c, []string{"run-id"}, []string{"json"})
			if err != nil {
				return fmt.Errorf("%v; usage: pigwf status WORKFLOW-ID [--json] [--run-id ID]", err)
			}
			asJSON, runID := bools["json"], values["run-id"]
			if id == "" {
				return errors.New("usage: pigwf status WORKFLOW-ID [--json] (e.g. node-init/pg-test)")
			}
			return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
				st, err := cl.Describe(ctx, id, runID)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(st)
				}
				starter.PrintStatus(os.Stdout, st)
				return nil
			})
		},
	}
}
