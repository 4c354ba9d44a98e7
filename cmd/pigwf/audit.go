package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/starter"
)

func auditCmd() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "every run on a cluster: its steps and approval decisions (who, when, verified how)",
		Description: "Reads the runs from Temporal's visibility (PgCluster) and each run's history; needs no worker.\n" +
			"Closed runs are there as long as the namespace keeps them (its retention: 24 h on a dev server).\n" +
			"--json prints one JSON object per run (JSON lines), for an archive or a SIEM.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true},
			&cli.StringFlag{Name: "since", Usage: "runs started since: a duration back from now (24h, 90m) or an RFC 3339 time"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per run, one per line"},
		},
		Action: func(c *cli.Context) error {
			since, err := starter.AuditSince(c.String("since"), time.Now())
			if err != nil {
				return err
			}
			cl, err := temporalClient(c.Context, c, devtls.RoleCLI)
			if err != nil {
				return err
			}
			defer cl.Close()
			enc := json.NewEncoder(os.Stdout)
			enc.SetEscapeHTML(false)
			return cl.Audit(c.Context, c.String("cluster"), since, func(r starter.AuditRun) error {
				if c.Bool("json") {
					return enc.Encode(r)
				}
				_, err := fmt.Fprint(os.Stdout, r.Text())
				return err
			})
		},
	}
}
