// Command pigwf runs PostgreSQL runbooks as durable Temporal workflows.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/worker"
	"github.com/pigwf/pigwf/workflows"
)

func main() {
	app := &cli.App{
		Name:  "pigwf",
		Usage: "durable PostgreSQL runbooks on Temporal",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Value: "127.0.0.1:7233", EnvVars: []string{"TEMPORAL_ADDRESS"}, Usage: "Temporal frontend host:port"},
			&cli.StringFlag{Name: "namespace", Value: "default", EnvVars: []string{"TEMPORAL_NAMESPACE"}, Usage: "Temporal namespace"},
			&cli.StringFlag{Name: "ui", Value: "http://127.0.0.1:8233", EnvVars: []string{"PIGWF_UI"}, Usage: "Temporal Web UI base URL, for links"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"PIGWF_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
		},
		Commands: []*cli.Command{devCmd(), labCmd(), workerCmd(), startCmd(), statusCmd(), listCmd(), approveCmd(), pendingCmd(), inventoryCmd(), haCmd(), chatopsCmd()},
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
			args := []string{bin, "--ip", c.String("ip"), "--port", fmt.Sprint(c.Int("port")), "--ui-port", fmt.Sprint(c.Int("ui-port")), "--db-filename", db}
			// Become the server (exec, not a child): signals and PIDs then refer to it directly,
			// so stopping `pigwf dev` stops Temporal and never leaves an orphan holding the database.
			return syscall.Exec(bin, args, os.Environ())
		},
	}
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

func labConfig(c *cli.Context) lab.Config {
	return lab.Config{Name: c.String("name"), Nodes: c.Int("nodes"), Subnet: c.String("subnet"), Cluster: c.String("cluster")}.WithDefaults()
}

func labCmd() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Value: "pigwf", Usage: "lab name (prefix of its namespaces and links)"},
		&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of nodes"},
		&cli.StringFlag{Name: "subnet", Value: "10.213.0", Usage: "first three octets of the lab network"},
		&cli.StringFlag{Name: "cluster", Value: "pg-test", Usage: "cluster name written into the lab inventory"},
	}
	return &cli.Command{
		Name:  "lab",
		Usage: "the local lab: nodes as network namespaces with their own sshd and filesystem view",
		Subcommands: []*cli.Command{
			{Name: "up", Usage: "create or repair the lab (idempotent)", Flags: flags, Action: func(c *cli.Context) error {
				st, err := lab.Up(c.Context, labConfig(c))
				if err != nil {
					return err
				}
				printLab(st)
				return nil
			}},
			{Name: "down", Usage: "remove the lab completely", Flags: flags, Action: func(c *cli.Context) error {
				if err := lab.Down(c.Context, labConfig(c)); err != nil {
					return err
				}
				fmt.Println("lab", labConfig(c).Name, "removed")
				return nil
			}},
			{Name: "status", Usage: "show the lab's nodes and files", Flags: append(flags, &cli.BoolFlag{Name: "json"}), Action: func(c *cli.Context) error {
				st, err := lab.Load(labConfig(c))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				printLab(st)
				return nil
			}},
		},
	}
}

func printLab(st *lab.Status) {
	fmt.Printf("lab %s (%s)\n", st.Name, st.Dir)
	for _, n := range st.Nodes {
		state := "running"
		if !n.Running {
			state = "DOWN"
		} else if !n.LinkUp {
			state = "running, link down"
		}
		fmt.Printf("  %-4s %-14s pid %-7d %s\n", n.Name, n.Addr, n.PID, state)
	}
	fmt.Printf("  inventory   %s\n  known_hosts %s\n  ssh key     %s\n", st.Inventory, st.KnownHosts, st.SSHKey)
}

func workerCmd() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run a pigwf worker (executes runbooks; run one or more)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task-queue", Value: workflows.TaskQueue},
			&cli.StringFlag{Name: "ca-dir", Usage: "the deployment CA directory (default $PIGWF_HOME/ca)"},
			&cli.IntFlag{Name: "max-concurrent-activities", Usage: "activities run at once by this worker (0: SDK default)"},
			&cli.StringFlag{Name: "notify-url", EnvVars: []string{"PIGWF_NOTIFY_URL"}, Usage: "chat webhook that gets a POST when a run waits for approval and when it ends"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := signalContext(c)
			defer cancel()
			caDir := c.String("ca-dir")
			if caDir == "" {
				caDir = filepath.Join(home(), "ca")
			}
			agent, err := siblingBinary("pg-ha-agent")
			if err != nil {
				logger(c).Warn("no pg-ha-agent binary: pg-cluster-create will fail until `make build` makes one", "err", err)
			}
			return worker.Run(ctx, worker.Config{
				HostPort: c.String("address"), Namespace: c.String("namespace"), TaskQueue: c.String("task-queue"),
				CADir: caDir, SecretsDir: filepath.Join(home(), "secrets"), AgentBinary: agent,
				NotifyURL: c.String("notify-url"), WebUI: strings.TrimRight(c.String("ui"), "/"),
				MaxConcurrentActivities: c.Int("max-concurrent-activities"), Logger: logger(c),
			})
		},
	}
}

// inventoryPath: --inventory, else ./inventory.yml, else the default lab's inventory.
func inventoryPath(c *cli.Context) (string, error) {
	if p := c.String("inventory"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("inventory.yml"); err == nil {
		return "inventory.yml", nil
	}
	if st, err := lab.Load(lab.Config{}.WithDefaults()); err == nil {
		return st.Inventory, nil
	}
	return "", errors.New("no inventory: pass --inventory FILE, put inventory.yml here, or run `pigwf lab up` for the local lab")
}

func loadCluster(c *cli.Context) (*inventory.Cluster, string, error) {
	_, cl, path, err := loadInventoryCluster(c)
	return cl, path, err
}

func loadInventoryCluster(c *cli.Context) (*inventory.Inventory, *inventory.Cluster, string, error) {
	path, err := inventoryPath(c)
	if err != nil {
		return nil, nil, "", err
	}
	inv, err := inventory.LoadInventory(path)
	if err != nil {
		return nil, nil, path, err
	}
	cl, err := inv.Cluster(c.String("cluster"))
	return inv, cl, path, err
}

// runbookFlags are the flags every runbook takes, then its own.
func runbookFlags(own ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true},
		inventoryFlag,
		&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "follow progress until the run ends"},
	}, own...)
}

var inventoryFlag = &cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, EnvVars: []string{"PIGWF_INVENTORY"}, Usage: "inventory file (Pigsty format)"}

func startCmd() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "start a runbook",
		Subcommands: []*cli.Command{
			{
				Name:  "node-init",
				Usage: "prepare the nodes of a cluster for PostgreSQL (like Pigsty's node.yml)",
				Flags: runbookFlags(
					&cli.StringSliceFlag{Name: "nodes", Aliases: []string{"l"}, Usage: "only these nodes (address or nodename), comma separated"},
				),
				Action: func(c *cli.Context) error {
					cl, _, err := loadCluster(c)
					if err != nil {
						return err
					}
					in, err := starter.NodeInitInput(cl, splitList(c.StringSlice("nodes")))
					if err != nil {
						return err
					}
					var res workflows.NodeInitResult
					return startAndFollow(c, workflows.NodeInitRunbook, workflows.NodeInitName, in.Cluster, in, &res)
				},
			},
			{
				Name:  "switchover",
				Usage: "move the primary role to a replica, after an approver says yes",
				Flags: runbookFlags(
					&cli.StringFlag{Name: "candidate", Usage: "member (nodename or address) to promote; default: a synchronous/least-lagging standby"},
					&cli.TimestampFlag{Name: "at", Layout: time.RFC3339, Usage: "switch no earlier than this time (RFC 3339)"},
					&cli.StringFlag{Name: "reason", Usage: "why, for the record"},
					&cli.DurationFlag{Name: "approval-timeout", Usage: "end the run unchanged without a decision by then (default: pigwf_approval_timeout or 1h)"},
				),
				Action: func(c *cli.Context) error {
					inv, cl, _, err := loadInventoryCluster(c)
					if err != nil {
						return err
					}
					var at time.Time
					if t := c.Timestamp("at"); t != nil {
						at = *t
					}
					in, err := starter.SwitchoverInput(inv, cl, c.String("candidate"), c.String("reason"), currentUser(), at, c.Duration("approval-timeout"))
					if err != nil {
						return err
					}
					var res workflows.SwitchoverResult
					return startAndFollow(c, workflows.SwitchoverRunbook, workflows.SwitchoverName, in.Cluster, in, &res)
				},
			},
			{
				Name:  "pg-cluster-create",
				Usage: "build an HA PostgreSQL cluster from the inventory (like Pigsty's pgsql.yml)",
				Flags: runbookFlags(
					&cli.BoolFlag{Name: "dry-run", Usage: "run the prechecks and print the plan; change nothing"},
					&cli.BoolFlag{Name: "force", Usage: "move aside (never delete) data directories of another system, after an approver agrees"},
					&cli.DurationFlag{Name: "approval-timeout", Usage: "with --force: end unchanged without a decision by then"},
				),
				Action: func(c *cli.Context) error {
					inv, cl, path, err := loadInventoryCluster(c)
					if err != nil {
						return err
					}
					in, err := starter.PgClusterCreateInput(inv, cl, path)
					if err != nil {
						return err
					}
					in.DryRun, in.Force = c.Bool("dry-run"), c.Bool("force")
					if d := c.Duration("approval-timeout"); d > 0 {
						in.Approval.Timeout = d
					}
					if in.Force && len(in.Approval.Approvers) == 0 {
						return fmt.Errorf("--force needs an approver: list them in the inventory (pigwf_approvers: [alice] in %s.vars)", cl.Group)
					}
					if in.DryRun {
						_ = c.Set("wait", "true")
					}
					var res workflows.PgClusterCreateResult
					err = startAndFollow(c, workflows.PgClusterCreateRunbook, workflows.PgClusterCreateName, in.Cluster, in, &res)
					if in.DryRun && err == nil {
						fmt.Println("dry run: prechecks passed; nothing was changed. The plan:")
						for _, p := range res.Plan {
							fmt.Println("  " + p)
						}
					}
					return err
				},
			},
		},
	}
}

func splitList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func webURL(c *cli.Context, id, runID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s", strings.TrimRight(c.String("ui"), "/"), c.String("namespace"), id, runID)
}

func startAndFollow(c *cli.Context, runbook, wfName, cluster string, input, result any) error {
	ctx, cancel := signalContext(c)
	defer cancel()
	cl, err := starter.Dial(ctx, c.String("address"), c.String("namespace"), nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	run, err := cl.Start(ctx, runbook, wfName, cluster, input)
	if err != nil {
		return err
	}
	fmt.Printf("started %s (run %s)\n  %s\n", run.GetID(), run.GetRunID(), webURL(c, run.GetID(), run.GetRunID()))
	if !c.Bool("wait") {
		fmt.Printf("follow it with `pigwf status %s`\n", run.GetID())
		return nil
	}
	pp := &starter.ProgressPrinter{W: os.Stdout}
	var last workflows.Progress
	err = cl.Wait(ctx, run.GetID(), run.GetRunID(), result, func(p workflows.Progress) { last = p; pp.Print(p) })
	if errors.Is(err, context.Canceled) {
		fmt.Printf("\nstopped following; the run goes on: `pigwf status %s`\n", run.GetID())
		return nil
	}
	if len(last.Steps) > 0 {
		starter.Recap(os.Stdout, last)
	}
	if err != nil {
		return fmt.Errorf("%s failed: %v", run.GetID(), err)
	}
	return nil
}

func statusCmd() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a run's state and per-step progress",
		ArgsUsage: "WORKFLOW-ID (e.g. node-init/pg-test)",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "run-id"}, &cli.BoolFlag{Name: "json"}},
		Action: func(c *cli.Context) error {
			id, values, bools, err := positionalWithFlags(c, []string{"run-id"}, []string{"json"})
			if err != nil {
				return fmt.Errorf("%v; usage: pigwf status WORKFLOW-ID [--json] [--run-id ID]", err)
			}
			asJSON, runID := bools["json"], values["run-id"]
			if id == "" {
				return errors.New("usage: pigwf status WORKFLOW-ID [--json] (e.g. node-init/pg-test)")
			}
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			cl, err := starter.Dial(ctx, c.String("address"), c.String("namespace"), nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.Describe(ctx, id, runID)
			if err != nil {
				return err
			}
			st.WebURL = webURL(c, st.WorkflowID, st.RunID)
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			starter.PrintStatus(os.Stdout, st)
			return nil
		},
	}
}

func listCmd() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list recent pigwf runs",
		Flags: []cli.Flag{&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}}, &cli.IntFlag{Name: "limit", Value: 20}},
		Action: func(c *cli.Context) error {
			cl, err := starter.Dial(c.Context, c.String("address"), c.String("namespace"), nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			runs, err := cl.Recent(c.Context, c.String("cluster"), c.Int("limit"))
			if err != nil {
				return err
			}
			for _, r := range runs {
				fmt.Printf("%-28s %-12s %-10s %s\n", r.WorkflowID, r.Type, r.State, r.Started.Local().Format(time.RFC3339))
			}
			return nil
		},
	}
}

func inventoryCmd() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "check an inventory file",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the inventory and print each cluster's nodes",
			Flags: []cli.Flag{inventoryFlag},
			Action: func(c *cli.Context) error {
				path, err := inventoryPath(c)
				if err != nil {
					return err
				}
				inv, err := inventory.LoadInventory(path)
				if err != nil {
					return err
				}
				for _, name := range sortedClusterNames(inv) {
					cl := inv.Clusters[name]
					kind := "group"
					if cl.Name != "" {
						kind = "PostgreSQL cluster"
					}
					fmt.Printf("%s (%s, %d nodes)\n", name, kind, len(cl.Hosts))
					for _, h := range cl.Hosts {
						pg := ""
						if cl.Name != "" {
							pg = fmt.Sprintf(" seq=%d role=%s", h.Seq, h.Role)
						}
						fmt.Printf("  %-16s %-12s%s ssh=%s@%s:%d\n", h.Addr, h.Node.Nodename, pg, h.Node.SSHUser, h.Node.SSHHost, h.Node.SSHPort)
					}
				}
				return nil
			},
		}},
	}
}

func sortedClusterNames(inv *inventory.Inventory) []string {
	names := make([]string, 0, len(inv.Clusters))
	for n := range inv.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func haCmd() *cli.Command {
	flags := []cli.Flag{&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Required: true}, inventoryFlag}
	withHA := func(c *cli.Context, fn func(ctx context.Context, h *starter.HAClient) error) error {
		inv, cl, _, err := loadInventoryCluster(c)
		if err != nil {
			return err
		}
		h, err := starter.DialHA(inv, cl)
		if err != nil {
			return err
		}
		defer h.Close()
		ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
		defer cancel()
		return fn(ctx, h)
	}
	return &cli.Command{
		Name:  "ha",
		Usage: "the HA agents: list members, pause and resume automatic failover",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "members, roles and lag as PostgreSQL reports them (like patronictl list)", Flags: append(flags, &cli.BoolFlag{Name: "json"}),
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						v, err := h.View(ctx)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							enc := json.NewEncoder(os.Stdout)
							enc.SetIndent("", "  ")
							return enc.Encode(v)
						}
						starter.PrintHAList(os.Stdout, v)
						return nil
					})
				}},
			{Name: "pause", Usage: "maintenance mode: the agents change nothing until resume", Flags: append(flags, &cli.StringFlag{Name: "reason"}),
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						if err := h.SetPause(ctx, true, c.String("reason")); err != nil {
							return err
						}
						fmt.Println("Maintenance mode: on (automatic failover is off until `pigwf ha resume`)")
						return nil
					})
				}},
			{Name: "resume", Usage: "leave maintenance mode", Flags: flags,
				Action: func(c *cli.Context) error {
					return withHA(c, func(ctx context.Context, h *starter.HAClient) error {
						if err := h.SetPause(ctx, false, ""); err != nil {
							return err
						}
						fmt.Println("Maintenance mode: off")
						return nil
					})
				}},
		},
	}
}

func currentUser() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func approveCmd() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "approve (or --reject) a run waiting for approval",
		ArgsUsage: "WORKFLOW-ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Usage: "your approver identity (must be on the run's allow-list)"},
			&cli.StringFlag{Name: "comment"},
			&cli.BoolFlag{Name: "reject"},
			&cli.BoolFlag{Name: "signal", Usage: "send the signal instead of the Update (no immediate answer)"},
		},
		Action: func(c *cli.Context) error {
			id, values, bools, err := positionalWithFlags(c, []string{"by", "comment"}, []string{"reject", "signal"})
			if err == nil && (id == "" || values["by"] == "") {
				err = errors.New("the run's ID and --by are required")
			}
			if err != nil {
				return fmt.Errorf("%v; usage: pigwf approve WORKFLOW-ID --by NAME [--reject] [--comment TEXT] [--signal]", err)
			}
			d := workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: values["by"], Comment: values["comment"]}
			if bools["reject"] {
				d.Decision = workflows.DecisionReject
			}
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			cl, err := starter.Dial(ctx, c.String("address"), c.String("namespace"), nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			if bools["signal"] {
				if err := cl.SignalDecision(ctx, id, d); err != nil {
					return err
				}
				fmt.Printf("sent %s by %s to %s (as a signal: check `pigwf status %s`)\n", d.Decision, d.Approver, id, id)
				return nil
			}
			st, err := cl.Decide(ctx, id, d)
			if err != nil {
				return fmt.Errorf("%s: not taken: %w", id, err)
			}
			fmt.Printf("%s: %s\n", id, st.Summary())
			return nil
		},
	}
}

func pendingCmd() *cli.Command {
	return &cli.Command{
		Name:  "pending",
		Usage: "runs waiting for approval, with what they will do",
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			cl, err := starter.Dial(ctx, c.String("address"), c.String("namespace"), nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			runs, err := cl.PendingApprovals(ctx)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				fmt.Println("no run is waiting for approval")
				return nil
			}
			for _, p := range runs {
				fmt.Printf("%s (%s)\n  plan:      %s\n  approvers: %s\n  deadline:  %s (%s left)\n", p.WorkflowID, p.Runbook, p.State.Plan,
					strings.Join(p.State.Approvers, ", "), p.State.Deadline.Local().Format(time.RFC3339), time.Until(p.State.Deadline).Round(time.Second))
				if len(p.State.Ignored) > 0 {
					fmt.Printf("  ignored:   %d decision(s) from non-approvers\n", len(p.State.Ignored))
				}
				fmt.Printf("  approve:   pigwf approve --by NAME %s\n", p.WorkflowID)
			}
			return nil
		},
	}
}

func chatopsCmd() *cli.Command {
	return &cli.Command{
		Name:  "chatops",
		Usage: "the ChatOps bridge for chat bots",
		Subcommands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve /slack/command (Slack-signed) and /webhook (bearer token)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8088"},
				&cli.StringFlag{Name: "config", Required: true, Usage: "YAML: users (chat user -> approver); secrets come from PIGWF_SLACK_SIGNING_SECRET and PIGWF_CHATOPS_TOKEN"},
			},
			Action: func(c *cli.Context) error {
				cfg, err := loadChatopsConfig(c.String("config"))
				if err != nil {
					return err
				}
				ctx, cancel := signalContext(c)
				defer cancel()
				cl, err := starter.Dial(ctx, c.String("address"), c.String("namespace"), nil)
				if err != nil {
					return err
				}
				defer cl.Close()
				srv := &http.Server{Addr: c.String("listen"), Handler: chatops.New(cfg, cl, logger(c)).Handler(), ReadHeaderTimeout: 10 * time.Second}
				go func() { <-ctx.Done(); srv.Close() }()
				logger(c).Info("chatops bridge listening", "addr", c.String("listen"), "users", len(cfg.Users))
				if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			},
		}},
	}
}

func loadChatopsConfig(path string) (chatops.Config, error) {
	var file struct {
		Users map[string]string `yaml:"users"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return chatops.Config{}, fmt.Errorf("while reading the chatops config: %w", err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return chatops.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg := chatops.Config{Users: file.Users, SlackSigningSecret: os.Getenv("PIGWF_SLACK_SIGNING_SECRET"), WebhookToken: os.Getenv("PIGWF_CHATOPS_TOKEN")}
	if cfg.SlackSigningSecret == "" && cfg.WebhookToken == "" {
		return cfg, errors.New("set PIGWF_SLACK_SIGNING_SECRET (Slack) and/or PIGWF_CHATOPS_TOKEN (webhook) in the environment")
	}
	if len(cfg.Users) == 0 {
		return cfg, fmt.Errorf("%s maps no chat users to approvers (users: {U0123ABC: alice})", path)
	}
	return cfg, nil
}

// positionalWithFlags reads "ID [--flag value] [--bool]" in any order: urfave/cli stops parsing
// flags at the first argument, but people type flags after the ID. values and bools start from
// what cli parsed before the ID.
func positionalWithFlags(c *cli.Context, valueFlags, boolFlags []string) (id string, values map[string]string, bools map[string]bool, err error) {
	values, bools = map[string]string{}, map[string]bool{}
	for _, f := range valueFlags {
		values[f] = c.String(f)
	}
	for _, f := range boolFlags {
		bools[f] = c.Bool(f)
	}
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			if id != "" {
				return "", nil, nil, fmt.Errorf("unexpected argument %q", a)
			}
			id = a
			continue
		}
		if _, ok := values[name]; ok {
			if !hasVal {
				if i+1 >= len(args) {
					return "", nil, nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			values[name] = val
			continue
		}
		if _, ok := bools[name]; ok && !hasVal {
			bools[name] = true
			continue
		}
		return "", nil, nil, fmt.Errorf("unknown flag %s", a)
	}
	return id, values, bools, nil
}
