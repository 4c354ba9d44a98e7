package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/urfave/cli/v2"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/starter"
)

func configEditCmd() *cli.Command {
	return &cli.Command{
		Name:  "edit",
		Usage: "edit the config as YAML in $VISUAL/$EDITOR; validated, shown and written as `config set` does",
		Description: "Opens `pigwf config show`'s YAML in a private temporary file with $VISUAL, else $EDITOR, else vi\n" +
			"(run directly, no shell). The saved file is read strictly: a key that is no setting is refused\n" +
			"with its line and the setting it likely meant; a setting left out is its default, a parameter\n" +
			"left out is removed. Then the same checks, changes, compare-and-swap on the revision read\n" +
			"before editing, and wait as `pigwf config set`. An unchanged file writes nothing; a refused\n" +
			"edit keeps the file and names it.",
		Flags: haFlags(configWriteFlags()...),
		Action: func(c *cli.Context) error {
			var kept string
			err := changeConfig(c, c.Bool("yes"), c.Bool("no-wait"), func(read starter.ConfigRead) (haagent.Config, []error, error) {
				path, edited, err := starter.EditConfigFile(read, runEditor)
				if err != nil {
					return haagent.Config{}, nil, err
				}
				kept = path
				next, problems := starter.DecodeConfigYAML(path, edited)
				return next, problems, nil
			})
			if kept == "" {
				return err
			}
			if _, refused := errors.AsType[*starter.ConfigRefusedError](err); refused {
				return fmt.Errorf("%w\nyour edit is kept in %s", err, kept)
			}
			os.Remove(kept)
			return err
		},
	}
}

// runEditor runs the user's editor (starter.EditorCommand) on path, on this terminal.
func runEditor(path string) error {
	argv := starter.EditorCommand(os.Getenv, path)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}
