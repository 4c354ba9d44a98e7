package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/pigwf/pigwf/starter"
)

var (
	watchFlag    = &cli.BoolFlag{Name: "watch", Aliases: []string{"W"}, Usage: "redraw every --interval until Ctrl-C (like patronictl list -W)"}
	intervalFlag = &cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "time between rounds of --watch (implies --watch)"}
)

// haListWatch is `pigwf ha list --watch`: one connection to the DCS for every round, each
// round bounded by haRequestTimeout, until Ctrl-C.
func haListWatch(c *cli.Context) error {
	h, err := dialHA(c)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := signalContext(c)
	defer cancel()
	w := starter.HAListWatch{
		View: func(ctx context.Context) (starter.HAView, error) {
			ctx, cancel := context.WithTimeout(ctx, haRequestTimeout)
			defer cancel()
			return h.View(ctx)
		},
		Interval: c.Duration("interval"),
		Terminal: clearable(os.Stdout),
		JSON:     c.Bool("json"),
	}
	return w.Run(ctx, os.Stdout)
}

// clearable: f is a terminal that understands ANSI escapes, so a round may clear the screen.
// Anything else (a pipe, a file, TERM=dumb) keeps every round.
func clearable(f *os.File) bool {
	return isTerminal(f) && os.Getenv("TERM") != "dumb"
}

// isTerminal: f is a terminal (it has terminal attributes, which a pipe, a file or /dev/null
// lack).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
