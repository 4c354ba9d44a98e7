package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

func haCmd() *cli.Command {
	flags := []cli.Flag{&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true}, inventoryFlag}
	withHA := func(c *cli.Context, fn func(ctx context.Context, h *starter.HAClient) error) error {
		inv, cl, _, err := loadInventoryCluster(c)
		if err != nil {
			return err
		}
		h, err := starter.DialHA(inv, cl, caDir(c))
		if err != nil {
			return err
		}
		defer h.Close()
		ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
		defer cancel()
		return fn(ctx, h)
	}
	return &cli.Command{
		Name:  "ha",
		Usage: "the HA agents: list members, pause and resume automatic failover",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "members, roles and lag as PostgreSQL reports them (like patronictl list)", Flags: append(flags, &cli.BoolFlag{Name: "json"}),
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						v, err := h.View(ctx)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(v)
						}
						starter.PrintHAList(os.Stdout, v)
						return nil
					})
				}},
			{Name: "pause", Usage: "maintenance mode: the agents change nothing until resume", Flags: append(flags, &cli.StringFlag{Name: "reason"}),
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						if err := h.SetPause(ctx, true, c.String("reason")); err != nil {
							return err
						}
						fmt.Println("Maintenance mode: on (automatic failover is off until `pigwf ha resume`)")
						return nil
					})
				}},
			{Name: "resume", Usage: "leave maintenance mode", Flags: flags,
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						if err := h.SetPause(ctx, false, ""); err != nil {
							return err
						}
						fmt.Println("Maintenance mode: off")
						return nil
					})
				}},
		},
	}
}
