package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

// haRequestTimeout bounds one read or write of a cluster's DCS and agents: a command, or one
// round of `ha list --watch`.
const haRequestTimeout = 15 * time.Second

// haFlags are the flags every `ha` subcommand takes.
func haFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true}, inventoryFlag}, more...)
}

// dialHA connects to the DCS of the cluster --cluster names in the inventory.
func dialHA(c *cli.Context) (*starter.HAClient, error) {
	inv, cl, _, err := loadInventoryCluster(c)
	if err != nil {
		return nil, err
	}
	return starter.DialHA(inv, cl, caDir(c))
}

// withHA runs fn with the cluster's HA client and a context that ends after haRequestTimeout.
func withHA(c *cli.Context, fn func(ctx context.Context, h *starter.HAClient) error) error {
	h, err := dialHA(c)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(c.Context, haRequestTimeout)
	defer cancel()
	return fn(ctx, h)
}

func haCmd() *cli.Command {
	return &cli.Command{
		Name:  "ha",
		Usage: "the HA agents: list members, timeline history, pause and resume automatic failover",
		Subcommands: []*cli.Command{
			haListCmd(),
			haHistoryCmd(),
			{Name: "pause", Usage: "maintenance mode: the agents change nothing until resume", Flags: haFlags(&cli.StringFlag{Name: "reason"}),
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						if err := h.SetPause(ctx, true, c.String("reason")); err != nil {
							return err
						}
						fmt.Println("Maintenance mode: on (automatic failover is off until `pigwf ha resume`)")
						return nil
					})
				}},
			{Name: "resume", Usage: "leave maintenance mode", Flags: haFlags(),
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

func haListCmd() *cli.Command {
	return &cli.Command{Name: "list", Usage: "members, roles and lag as PostgreSQL reports them (like patronictl list; --watch like list -W)",
		Flags: haFlags(&cli.BoolFlag{Name: "json"}, watchFlag, intervalFlag),
		Action: func(c *cli.Context) error {
			if c.Bool("watch") || c.IsSet("interval") {
				return haListWatch(c)
			}
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
		}}
}
