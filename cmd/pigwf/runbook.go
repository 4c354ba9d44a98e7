package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/starter"
)

// runbookFileFlag is --file, the runbook file of `pigwf runbook check` and `pigwf start runbook`.
var runbookFileFlag = &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true, Usage: "the runbook file (YAML)"}

// runbookCmd: `pigwf runbook check --file F --cluster C`: a custom runbook (dsl/) checked
// against the inventory's cluster, every problem with file:line, before anything runs. It checks
// what `pigwf start runbook` checks (starter.RunbookInput).
func runbookCmd() *cli.Command {
	return &cli.Command{
		Name:  "runbook",
		Usage: "custom runbooks in YAML (dsl/, docs/runbooks.md): check one against a cluster; `pigwf start runbook` runs one",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "parse and validate a runbook file for a cluster: every problem with file:line and its fix",
			Flags: []cli.Flag{runbookFileFlag, &cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true}, inventoryFlag},
			Action: func(c *cli.Context) error {
				inv, cl, path, err := loadInventoryCluster(c)
				if err != nil {
					return err
				}
				rb, err := dsl.ParseFile(c.String("file"))
				if err != nil {
					return err
				}
				if _, err := starter.RunbookInput(inv, cl, path, rb, ""); err != nil {
					return err
				}
				fmt.Printf("%s: runbook %s is valid for %s (%d steps)\n", c.String("file"), rb.Name, cl.Name, len(rb.Steps))
				return nil
			},
		}},
	}
}
