package main

import (
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/worker"
	"github.com/pigwf/pigwf/workflows"
)

func workerCmd() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run a pigwf worker (executes runbooks; run one or more)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task-queue", Value: workflows.TaskQueue},
			&cli.StringFlag{Name: "ca-dir", Usage: "the deployment CA directory (default $PIGWF_HOME/ca)"},
			&cli.IntFlag{Name: "max-concurrent-activities", Usage: "activities run at once by this worker (0: SDK default)"},
			&cli.BoolFlag{Name: "allow-insecure-plaintext", Usage: "lab-only: act on clusters whose inventory sets pigwf_insecure_plaintext (etcd, agents and replication without TLS); refused otherwise"},
			&cli.StringFlag{Name: "approvals", EnvVars: []string{"PIGWF_APPROVALS"}, Usage: "who may approve runs and whose keys are believed (default $PIGWF_HOME/approvals.yml; without it nobody can approve)"},
			&cli.StringFlag{Name: "notify-url", EnvVars: []string{"PIGWF_NOTIFY_URL"}, Usage: "chat webhook that gets a POST when a run waits for approval and when it ends"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := signalContext(c)
			defer cancel()
			caDir := c.String("ca-dir")
			if caDir == "" {
				caDir = filepath.Join(home(), "ca")
			}
			approvals := c.String("approvals")
			if approvals == "" {
				approvals = filepath.Join(home(), "approvals.yml")
			}
			conn, err := connection(c, devtls.RoleWorker)
			if err != nil {
				return err
			}
			agent, err := siblingBinary("pg-ha-agent")
			if err != nil {
				logger(c).Warn("no pg-ha-agent binary: pg-cluster-create will fail until `make build` makes one", "err", err)
			}
			return worker.Run(ctx, worker.Config{
				Temporal: conn, TaskQueue: c.String("task-queue"),
				CADir: caDir, SecretsDir: filepath.Join(home(), "secrets"), AgentBinary: agent,
				NotifyURL: c.String("notify-url"), WebUI: c.String("ui"), ApprovalsFile: approvals,
				MaxConcurrentActivities: c.Int("max-concurrent-activities"), Logger: logger(c),
				AllowPlaintext: c.Bool("allow-insecure-plaintext"),
			})
		},
	}
}
