package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/starter"
)

// setupTimeout bounds `pigwf temporal setup`: besides its few calls it waits for the server's
// namespace cache to show a new namespace and new search attributes (seconds).
const setupTimeout = 2 * time.Minute

func temporalCmd() *cli.Command {
	return &cli.Command{
		Name:  "temporal",
		Usage: "prepare a Temporal server or Temporal Cloud namespace for pigwf",
		Subcommands: []*cli.Command{{
			Name: "setup",
			Usage: "create the namespace (--namespace) if missing with --retention, or set its retention, and register the search attributes pigwf's runs set; " +
				"idempotent: prints each item changed or unchanged",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "retention", Value: starter.FormatRetention(starter.DefaultRetention),
					Usage: "how long Temporal keeps closed runs (pigwf audit reads them only until then): days as 30d, or a duration as 720h; at least 1d"},
				&cli.BoolFlag{Name: "json", Usage: "print the items as JSON"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return fmt.Errorf("unexpected argument %q: the namespace is the global --namespace", c.Args().First())
				}
				retention, err := starter.ParseRetention(c.String("retention"))
				if err != nil {
					return fmt.Errorf("--retention: %w", err)
				}
				ctx, cancel := context.WithTimeout(c.Context, setupTimeout)
				defer cancel()
				// The CLI's identity: on a server with an authorizer it is the operator's
				// certificate that may create namespaces, not the worker's.
				cl, err := temporalClient(ctx, c, devtls.RoleCLI)
				if err != nil {
					return err
				}
				defer cl.Close()
				items, setupErr := cl.SetupNamespace(ctx, retention)
				if c.Bool("json") {
					if err := printJSON(items); err != nil {
						return err
					}
				} else {
					for _, it := range items {
						fmt.Println(it)
					}
				}
				return setupErr
			},
		}},
	}
}
