package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/workflows"
)

func devCmd() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a Temporal dev server with the Web UI (state kept in a file)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db-filename", Usage: "SQLite file for the server's state (default $PIGWF_HOME/temporal.db)"},
			&cli.IntFlag{Name: "port", Value: 7233},
			&cli.IntFlag{Name: "ui-port", Value: 8233},
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1"},
		},
		Action: func(c *cli.Context) error {
			bin, err := siblingBinary("pigwf-temporal")
			if err != nil {
				return err
			}
			db := c.String("db-filename")
			if db == "" {
				if err := os.MkdirAll(home(), 0o700); err != nil {
					return err
				}
				db = filepath.Join(home(), "temporal.db")
			}
			args := devServerArgs(bin, c.String("ip"), c.Int("port"), c.Int("ui-port"), db)
			// Become the server (exec, not a child): signals and PIDs then refer to it directly,
			// so stopping `pigwf dev` stops Temporal and never leaves an orphan holding the database.
			return syscall.Exec(bin, args, os.Environ())
		},
	}
}

// devServerArgs is pigwf-temporal's command line (argv[0] is bin) for `pigwf dev`: the addresses,
// the state file, and every search attribute pigwf's runs need (workflows.CustomSearchAttributes)
// registered in the namespace.
func devServerArgs(bin, ip string, port, uiPort int, db string) []string {
	args := []string{bin, "--ip", ip, "--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort), "--db-filename", db}
	for _, sa := range workflows.CustomSearchAttributes() {
		args = append(args, "--search-attribute", sa.Flag())
	}
	return args
}
