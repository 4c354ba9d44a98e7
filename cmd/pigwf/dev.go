package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/workflows"
)

func devCmd() *cli.Command {
	return &cli.Command{
		Name: "dev",
		Usage: "run a Temporal dev server with the Web UI (state kept in a file), serving mutual TLS from the deployment CA: " +
			"the frontend's certificate and the clients' are issued (once, renewed near expiry) from $PIGWF_HOME/ca, and the CLI and the worker use theirs by default",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db-filename", Usage: "SQLite file for the server's state (default $PIGWF_HOME/temporal.db)"},
			&cli.IntFlag{Name: "port", Value: 7233},
			&cli.IntFlag{Name: "ui-port", Value: 8233},
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1"},
			&cli.BoolFlag{Name: "insecure-plaintext", Usage: "LAB ONLY: serve gRPC without TLS or client authentication (anyone who reaches the port can start, signal and approve runs); clients then need --tls=false"},
		},
		Action: func(c *cli.Context) error {
			bin, err := siblingBinary("pigwf-temporal")
			if err != nil {
				return err
			}
			if err := os.MkdirAll(home(), 0o700); err != nil {
				return err
			}
			db := c.String("db-filename")
			if db == "" {
				db = filepath.Join(home(), "temporal.db")
			}
			var mtls *devTLS
			if !c.Bool("insecure-plaintext") {
				layout := devtls.Layout{Home: home()}
				changed, err := devtls.Ensure(layout, c.String("ip"), time.Now())
				if err != nil {
					return fmt.Errorf("while issuing the dev server's certificates (--insecure-plaintext skips TLS, lab only): %w", err)
				}
				for _, f := range changed {
					fmt.Fprintln(os.Stderr, "pigwf dev: issued "+f)
				}
				mtls = &devTLS{Server: layout.Frontend(), Internal: layout.Client(devtls.RoleInternal)}
			} else {
				fmt.Fprintln(os.Stderr, "pigwf dev: WARNING: --insecure-plaintext: no TLS, no client authentication; for a lab only")
			}
			args := devServerArgs(bin, c.String("ip"), c.Int("port"), c.Int("ui-port"), db, mtls)
			// Become the server (exec, not a child): signals and PIDs then refer to it directly,
			// so stopping `pigwf dev` stops Temporal and never leaves an orphan holding the database.
			return syscall.Exec(bin, args, os.Environ())
		},
	}
}

// devTLS is the dev server's mutual TLS: its frontend certificate, and the client certificate of
// its own clients (system workers, readiness probe, Web UI); both carry the CA.
type devTLS struct{ Server, Internal pki.Files }

// devServerArgs is pigwf-temporal's command line (argv[0] is bin) for `pigwf dev`: the addresses,
// the state file, mutual TLS unless mtls is nil, and every search attribute pigwf's runs need
// (workflows.CustomSearchAttributes) registered in the namespace.
func devServerArgs(bin, ip string, port, uiPort int, db string, mtls *devTLS) []string {
	args := []string{bin, "--ip", ip, "--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort), "--db-filename", db}
	if mtls != nil {
		args = append(args, "--tls-cert", mtls.Server.Cert, "--tls-key", mtls.Server.Key, "--tls-ca", mtls.Server.CA,
			"--tls-internal-cert", mtls.Internal.Cert, "--tls-internal-key", mtls.Internal.Key)
	}
	for _, sa := range workflows.CustomSearchAttributes() {
		args = append(args, "--search-attribute", sa.Flag())
	}
	return args
}
