// Command pigwf runs PostgreSQL runbooks as durable Temporal workflows.
//
// One file per command (dev.go, lab.go, worker.go, start.go, status.go, list.go, approve.go,
// pending.go, inventory.go, ha.go with ha_history.go and ha_watch.go, temporal.go, config.go with
// config_edit.go, backup.go, schedule.go, restorepoint.go, chatops.go, keys.go: keys and approvals); main.go
// holds the app and the helpers every command shares, among them temporalClient, the one way a
// command reaches Temporal; connection.go the global flags of that connection (address,
// namespace, TLS, API key).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
)

func main() {
	app := &cli.App{
		Name:  "pigwf",
		Usage: "durable PostgreSQL runbooks on Temporal",
		Flags: append(connectionFlags(),
			&cli.StringFlag{Name: "ui", Value: "http://127.0.0.1:8233", EnvVars: []string{"PIGWF_UI"}, Usage: "Temporal Web UI base URL, for links"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"PIGWF_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
		),
		Commands: []*cli.Command{devCmd(), labCmd(), workerCmd(), startCmd(), statusCmd(), listCmd(), auditCmd(), approveCmd(), pendingCmd(), inventoryCmd(), haCmd(), configCmd(), backupCmd(), scheduleCmd(), restorePointCmd(), chatopsCmd(), keysCmd(), approvalsCmd(), runbookCmd(), temporalCmd()},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "pigwf: "+err.Error())
		os.Exit(1)
	}
}

// home is pigwf's control-side directory: the CA, the dev server's database, logs.
func home() string {
	if h := os.Getenv("PIGWF_HOME"); h != "" {
		return h
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "/var/lib/pigwf"
	}
	return filepath.Join(h, ".pigwf")
}

// caDir is the deployment CA's directory: the command's --ca-dir where it has one (the
// worker), else $PIGWF_HOME/ca. The CLI's commands that reach etcd or the agents take their
// client certificate from it (starter.ClientTLS), so they run where the worker's CA is.
func caDir(c *cli.Context) string {
	if d := c.String("ca-dir"); d != "" {
		return d
	}
	return pki.HomeDir(home())
}

func logger(c *cli.Context) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

// temporalClient connects to Temporal as role, with the global connection settings (connection):
// every command that talks to Temporal dials through here, and the client's links to runs point
// into the Web UI at the global --ui.
func temporalClient(ctx context.Context, c *cli.Context, role devtls.Role) (*starter.Client, error) {
	conn, err := connection(c, role)
	if err != nil {
		return nil, err
	}
	cl, err := starter.Dial(ctx, conn, nil)
	if err != nil {
		return nil, err
	}
	cl.WebUI = c.String("ui")
	return cl, nil
}

// requestTimeout bounds a command that asks Temporal for one thing and prints the answer.
const requestTimeout = 30 * time.Second

// askTemporal runs fn with a Temporal client and a context that ends after requestTimeout.
func askTemporal(c *cli.Context, fn func(ctx context.Context, cl *starter.Client) error) error {
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	cl, err := temporalClient(ctx, c, devtls.RoleCLI)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}

// printJSON writes v to stdout as indented JSON (the --json output of every command).
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// siblingBinary finds a helper binary next to pigwf, then on PATH.
func siblingBinary(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to pigwf or on PATH: run `make build`", name)
}

// positionalWithFlags reads "ID [--flag value] [--bool]" in any order (mixedArgs): one
// argument at most.
func positionalWithFlags(c *cli.Context, valueFlags, boolFlags []string) (id string, values map[string]string, bools map[string]bool, err error) {
	a, err := mixedArgs(c, valueFlags, nil, boolFlags)
	if err != nil {
		return "", nil, nil, err
	}
	if len(a.positional) > 1 {
		return "", nil, nil, fmt.Errorf("unexpected argument %q", a.positional[1])
	}
	if len(a.positional) == 1 {
		id = a.positional[0]
	}
	return id, a.values, a.bools, nil
}

// commandArgs are a command's arguments and the flags typed among them.
type commandArgs struct {
	positional []string
	values     map[string]string
	lists      map[string][]string // a repeated flag: each value, in order
	bools      map[string]bool
}

// mixedArgs reads arguments and flags in any order: urfave/cli stops parsing flags at the first
// argument, but people type flags after it. values, lists and bools start from what cli parsed
// before the first argument.
func mixedArgs(c *cli.Context, valueFlags, listFlags, boolFlags []string) (commandArgs, error) {
	a := commandArgs{values: map[string]string{}, lists: map[string][]string{}, bools: map[string]bool{}}
	for _, f := range valueFlags {
		a.values[f] = c.String(f)
	}
	for _, f := range listFlags {
		a.lists[f] = c.StringSlice(f)
	}
	for _, f := range boolFlags {
		a.bools[f] = c.Bool(f)
	}
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			a.positional = append(a.positional, arg)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		_, isValue := a.values[name]
		_, isList := a.lists[name]
		if isValue || isList {
			if !hasVal {
				if i+1 >= len(args) {
					return commandArgs{}, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if isList {
				a.lists[name] = append(a.lists[name], val)
			} else {
				a.values[name] = val
			}
			continue
		}
		if _, ok := a.bools[name]; ok && !hasVal {
			a.bools[name] = true
			continue
		}
		return commandArgs{}, fmt.Errorf("unknown flag %s", arg)
	}
	return a, nil
}
