package main

import (
	"fmt"
	"time"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/urfave/cli/v2"
)

func listCmd() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list recent pigwf runs",
		Flags: []cli.Flag{&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}}, &cli.IntFlag{Name: "limit", Value: 20}},
		Action: func(c *cli.Context) error {
			cl, err := temporalClient(c.Context, c, devtls.RoleCLI)
			if err != nil {
				return err
			}
			defer cl.Close()
			runs, err := cl.Recent(c.Context, c.String("cluster"), c.Int("limit"))
			if err != nil {
				return err
			}
			for _, r := range runs {
				fmt.Printf("%-28s %-12s %-10s %s\n", r.WorkflowID, r.Type, r.State, r.Started.Local().Format(time.RFC3339))
			}
			return nil
		},
	}
}
