package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// runbookStartCmd: `pigwf start runbook --file F --cluster C [--dry-run] [--wait]`: a custom
// runbook (dsl/, docs/runbooks.md) checked as `pigwf runbook check` checks it (every problem with
// file:line, and nothing starts), then run by the interpreter workflow as runbook/<cluster>.
func runbookStartCmd() *cli.Command {
	return &cli.Command{
		Name:  "runbook",
		Usage: "run a custom runbook (YAML, docs/runbooks.md) on a cluster, once it checks",
		Flags: runbookFlags(runbookFileFlag,
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan with the members each step would act on now; change nothing"}),
		Action: func(c *cli.Context) error {
			r, err := newStartRequest(c)
			if err != nil {
				return err
			}
			rb, err := dsl.ParseFile(c.String("file"))
			if err != nil {
				return err
			}
			in, err := starter.RunbookInput(r.inv, r.cl, r.path, rb, r.who.req.By)
			if err != nil {
				return err
			}
			in.DryRun = c.Bool("dry-run")
			if in.DryRun {
				_ = c.Set("wait", "true")
			}
			gated := false
			rb.Walk(func(s dsl.Step) { gated = gated || s.Kind == dsl.KindApproval })
			var res workflows.RunbookResult
			err = startAndFollow(c, workflows.RunbookRunbook, workflows.RunbookName, in.Cluster, in, starter.RunbookMeta(in, r.who.req), &res, r.who, gated && !in.DryRun)
			if in.DryRun && err == nil {
				fmt.Printf("dry run: nothing was changed. The plan of %s on %s:\n", rb.Name, in.Cluster)
				for _, line := range res.Plan {
					fmt.Println("  " + line)
				}
			}
			return err
		},
	}
}
