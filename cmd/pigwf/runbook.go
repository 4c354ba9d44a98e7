package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/dsl"
)

// runbookCmd: `pigwf runbook check --file F --cluster C`: a custom runbook (dsl/) checked
// against the inventory's cluster, every problem with file:line, before anything runs.
func runbookCmd() *cli.Command {
	return &cli.Command{
		Name:  "runbook",
		Usage: "custom runbooks in YAML (dsl/): check one against a cluster",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "parse and validate a runbook file for a cluster: every problem with file:line and its fix",
			Flags: []cli.Flag{&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true},
				&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true}, inventoryFlag},
			Action: func(c *cli.Context) error {
				_, cl, _, err := loadInventoryCluster(c)
				if err != nil {
					return err
				}
				rb, err := dsl.ParseFile(c.String("file"))
				if err != nil {
					return err
				}
				var members []dsl.Member
				for _, h := range cl.Hosts {
					members = append(members, dsl.Member{Name: h.Node.Nodename, Role: h.Role})
				}
				if err := dsl.Validate(rb, members); err != nil {
					return err
				}
				fmt.Printf("%s: runbook %s is valid for %s (%d steps)\n", c.String("file"), rb.Name, cl.Name, len(rb.Steps))
				return nil
			},
		}},
	}
}
