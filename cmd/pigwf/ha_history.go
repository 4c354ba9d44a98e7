package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
)

func haHistoryCmd() *cli.Command {
	return &cli.Command{Name: "history", Usage: "timeline switches (failovers, switchovers, restores) and who led on each side (like patronictl history)",
		Flags: haFlags(&cli.BoolFlag{Name: "json"}),
		Action: func(c *cli.Context) error {
			return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
				hist, err := h.History(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(hist)
				}
				starter.PrintHAHistory(os.Stdout, hist)
				return nil
			})
		}}
}
