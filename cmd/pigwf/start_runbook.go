package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/inventory"
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
		Action: startAction(func(c *cli.Context, inv *inventory.Inventory, cl *inventory.Cluster, req starter.Request) (runbookStart, error) {
			rb, err := dsl.ParseFile(c.String("file"))
			if err != nil {
				return runbookStart{}, err
			}
			in, err := starter.RunbookInput(inv, cl, req.Inventory, rb, req.By)
			if err != nil {
				return runbookStart{}, err
			}
			in.DryRun = c.Bool("dry-run")
			gated := false
			rb.Walk(func(s dsl.Step) { gated = gated || s.Kind == dsl.KindApproval })
			res := &workflows.RunbookResult{}
			rs := runbookStart{runbook: workflows.RunbookRunbook, workflow: workflows.RunbookName, cluster: in.Cluster, input: in,
				meta: starter.RunbookMeta(in, req), result: res, gated: gated && !in.DryRun, follow: in.DryRun}
			if in.DryRun {
				rs.after = func() {
					fmt.Printf("dry run: nothing was changed. The plan of %s on %s:\n", rb.Name, in.Cluster)
					for _, line := range res.Plan {
						fmt.Println("  " + line)
					}
				}
			}
			return rs, nil
		}),
	}
}
