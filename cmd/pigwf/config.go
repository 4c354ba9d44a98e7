package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/starter"
)

// `pigwf config show|set` (edit: config_edit.go): the cluster's one configuration, the DCS config
// key the HA agents read (haagent.Config: HA settings and postgresql.parameters).

func configCmd() *cli.Command {
	return &cli.Command{
		Name:        "config",
		Usage:       "the cluster's configuration in the DCS: HA settings and PostgreSQL parameters (show, set, edit)",
		Subcommands: []*cli.Command{configShowCmd(), configSetCmd(), configEditCmd()},
	}
}

func configShowCmd() *cli.Command {
	return &cli.Command{
		Name:  "show",
		Usage: "the whole config as the agents read it (defaults filled), as YAML with its etcd revision",
		Flags: haFlags(&cli.BoolFlag{Name: "json", Usage: "print {cluster, revision, config, problems, leader} as JSON"}),
		Action: func(c *cli.Context) error {
			return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
				read, err := h.ReadConfig(ctx)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(read)
				}
				text, err := starter.RenderConfigYAML(read)
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(text)
				return err
			})
		},
	}
}

// configWriteFlags are more and the flags of every command that writes the config.
func configWriteFlags(more ...cli.Flag) []cli.Flag {
	return append(more,
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "write without asking (needed where no terminal can be asked)"},
		&cli.BoolFlag{Name: "no-wait", Usage: "do not wait for the members to apply the write"},
	)
}

func configSetCmd() *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "change HA settings and PostgreSQL parameters, validated first, written by compare-and-swap",
		ArgsUsage: "NAME=VALUE... [--unset NAME]...",
		Description: "A NAME that is an HA setting of `pigwf config show` (loop_interval_ms, synchronous_mode, ...)\n" +
			"sets it; any other NAME is a PostgreSQL parameter (postgresql.parameters). --unset puts an HA\n" +
			"setting back to its default and removes a parameter. Before anything is written every change\n" +
			"is checked and every problem reported at once: HA timings that cannot hold, settings pigwf\n" +
			"owns, and new parameters against the leader's own pg_settings (unknown names, bad values,\n" +
			"units and ranges). Then the changes are shown (old → new, and which need a restart), and\n" +
			"written only if nobody changed the config since it was read. Unless --no-wait, it waits\n" +
			"until every member applied it and shows the settings pending restart.",
		Flags: configWriteFlags(
			&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "cluster name (required)"},
			inventoryFlag,
			&cli.StringSliceFlag{Name: "unset", Usage: "an HA setting back to its default, or a parameter removed (repeatable)"},
		),
		Action: func(c *cli.Context) error {
			a, err := mixedArgs(c, []string{"cluster", "c", "inventory", "i"}, []string{"unset"}, []string{"yes", "y", "no-wait"})
			if err != nil {
				return fmt.Errorf("%v; usage: pigwf config set --cluster NAME NAME=VALUE... [--unset NAME]... [--yes] [--no-wait]", err)
			}
			cluster := cmp.Or(a.values["c"], a.values["cluster"])
			if cluster == "" {
				return errors.New("--cluster is required (usage: pigwf config set --cluster NAME NAME=VALUE [NAME=VALUE ...] [--unset NAME])")
			}
			if err := c.Set("cluster", cluster); err != nil {
				return err
			}
			if inv := cmp.Or(a.values["i"], a.values["inventory"]); inv != "" {
				if err := c.Set("inventory", inv); err != nil {
					return err
				}
			}
			changes, err := starter.ParseConfigArgs(a.positional, a.lists["unset"])
			if err != nil {
				return err
			}
			return changeConfig(c, a.bools["yes"] || a.bools["y"], a.bools["no-wait"], func(read starter.ConfigRead) (haagent.Config, []error, error) {
				next, problems := starter.ApplyConfigChanges(read.Config, changes)
				return next, problems, nil
			})
		},
	}
}

// changeConfig is what `config set` and `config edit` share around starter.ApplyConfig: read the
// config, make the new one from it (next may take human time: it has no deadline), then validate,
// show, confirm, write by compare-and-swap on the revision read, and wait.
func changeConfig(c *cli.Context, yes, noWait bool, next func(starter.ConfigRead) (haagent.Config, []error, error)) error {
	h, err := dialHA(c)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := signalContext(c)
	defer cancel()
	readCtx, cancelRead := context.WithTimeout(ctx, haRequestTimeout)
	read, err := h.ReadConfig(readCtx)
	cancelRead()
	if err != nil {
		return err
	}
	cfg, problems, err := next(read)
	if err != nil {
		return err
	}
	opts := starter.ConfigApplyOptions{Out: os.Stdout, Wait: starter.ConfigApplyWait}
	if noWait {
		opts.Wait = 0
	}
	if !yes {
		opts.Confirm = askOnTerminal("Write these changes? [y/N] ")
	}
	_, err = h.ApplyConfig(ctx, read, cfg, problems, opts)
	return err
}

// askOnTerminal asks a yes/no question on the terminal; without one it refuses, since nobody
// saw the changes it would agree to.
func askOnTerminal(question string) func() (bool, error) {
	return func() (bool, error) {
		if !isTerminal(os.Stdin) {
			return false, errors.New("no terminal to ask on: nothing written; give --yes to write without asking")
		}
		fmt.Print(question)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return false, fmt.Errorf("reading the answer: %w", err)
		}
		answer := strings.ToLower(strings.TrimSpace(line))
		return answer == "y" || answer == "yes", nil
	}
}
