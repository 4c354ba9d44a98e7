package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

func approveCmd() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "approve (or --reject) a run waiting for approval, signed with your key",
		ArgsUsage: "WORKFLOW-ID",
		Description: "The decision is signed with NAME's ed25519 key for the run open under WORKFLOW-ID (its run ID,\n" +
			"decision, comment and the time): the worker acts on it only if its approvals file holds that\n" +
			"key and its policy lists NAME, within the signature window (15 minutes by default).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Usage: "your approver identity (as the worker's approvals file names you)"},
			keyFlag,
			&cli.StringFlag{Name: "comment"},
			&cli.BoolFlag{Name: "reject"},
			&cli.BoolFlag{Name: "signal", Usage: "send the signal instead of the Update (no immediate answer; works with no worker up)"},
		},
		Action: func(c *cli.Context) error {
			id, values, bools, err := positionalWithFlags(c, []string{"by", "comment", "key"}, []string{"reject", "signal"})
			if err == nil && (id == "" || values["by"] == "") {
				err = errors.New("the run's ID and --by are required")
			}
			if err != nil {
				return fmt.Errorf("%v; usage: pigwf approve WORKFLOW-ID --by NAME [--key FILE] [--reject] [--comment TEXT] [--signal]", err)
			}
			key, err := signingKey(values["by"], values["key"])
			if err != nil {
				return err
			}
			d := workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: values["by"], Comment: values["comment"]}
			if bools["reject"] {
				d.Decision = workflows.DecisionReject
			}
			return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
				if bools["signal"] {
					if err := cl.SignalDecision(ctx, id, d, &key); err != nil {
						return err
					}
					fmt.Printf("sent %s by %s to %s, signed (as a signal: check `pigwf status %s`)\n", d.Decision, d.Approver, id, id)
					return nil
				}
				dec, err := cl.Decide(ctx, id, d, &key)
				if err != nil {
					return fmt.Errorf("%s: not taken: %w", id, err)
				}
				fmt.Printf("%s: %s\n", id, dec.State.Summary())
				if dec.RunURL != "" {
					fmt.Printf("  %s\n", dec.RunURL)
				}
				return nil
			})
		},
	}
}
