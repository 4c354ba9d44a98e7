package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/metrics/prom"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
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
			&cli.IntFlag{Name: "max-concurrent-activities", Usage: "activities run at once by this worker (0: SDK default, 1000); each node step holds one SSH session"},
			&cli.IntFlag{Name: "sticky-cache-size", Usage: "runs whose state the worker keeps between their steps (0: SDK default, 10000); a run not cached replays its history at its next step"},
			&cli.BoolFlag{Name: "allow-insecure-plaintext", Usage: "lab-only: act on clusters whose inventory sets pigwf_insecure_plaintext (etcd, agents and replication without TLS); refused otherwise"},
			&cli.StringFlag{Name: "approvals", EnvVars: []string{"PIGWF_APPROVALS"}, Usage: "who may approve runs and whose keys are believed (default $PIGWF_HOME/approvals.yml; without it nobody can approve)"},
			&cli.StringFlag{Name: "notify-url", EnvVars: []string{"PIGWF_NOTIFY_URL"}, Usage: "chat webhook that gets a POST when a run waits for approval and when it ends"},
			&cli.StringFlag{Name: flagMetricsListen, Value: defaultMetricsListen, EnvVars: []string{"PIGWF_METRICS_LISTEN"},
				Usage: `where Prometheus scrapes /metrics ("" or off: nowhere); plain HTTP on a loopback address only, HTTPS with --` + flagMetricsCert + ` and --` + flagMetricsKey + ` anywhere`},
			&cli.StringFlag{Name: flagMetricsCert, EnvVars: []string{"PIGWF_METRICS_TLS_CERT"}, Usage: "certificate the metrics endpoint serves HTTPS with (one of the deployment CA, naming the address Prometheus scrapes)"},
			&cli.StringFlag{Name: flagMetricsKey, EnvVars: []string{"PIGWF_METRICS_TLS_KEY"}, Usage: "its private key"},
			&cli.StringFlag{Name: "build-id", EnvVars: []string{"PIGWF_BUILD_ID"}, Usage: "this worker's build in pigwf's Temporal worker deployment (default: the binary's VCS revision)"},
			&cli.StringFlag{Name: "versioning", EnvVars: []string{"PIGWF_WORKER_VERSIONING"}, Value: string(worker.VersioningAutoUpgrade),
				Usage: "how runs move between builds on an upgrade: auto-upgrade (a run's next step runs on the current build), pinned (a run ends on the build it started on), off (no routing by build)"},
			&cli.BoolFlag{Name: "make-current", Usage: "make this build the current version at start even though another build's workers still poll (a worker replaced in place)"},
		},
		Subcommands: []*cli.Command{workerPromoteCmd()},
		Action: func(c *cli.Context) error {
			ctx, cancel := signalContext(c)
			defer cancel()
			approvals := c.String("approvals")
			if approvals == "" {
				approvals = filepath.Join(home(), "approvals.yml")
			}
			versioning, err := worker.ParseVersioning(c.String("versioning"))
			if err != nil {
				return fmt.Errorf("--versioning: %w", err)
			}
			conn, err := connection(c, devtls.RoleWorker)
			if err != nil {
				return err
			}
			mx, err := metricsListen(c)
			if err != nil {
				return err
			}
			agent, err := siblingBinary("pg-ha-agent")
			if err != nil {
				logger(c).Warn("no pg-ha-agent binary: pg-cluster-create will fail until `make build` makes one", "err", err)
			}
			return worker.Run(ctx, worker.Config{
				Temporal: conn, TaskQueue: c.String("task-queue"),
				CADir: caDir(c), SecretsDir: filepath.Join(home(), "secrets"), AgentBinary: agent,
				NotifyURL: c.String("notify-url"), WebUI: c.String("ui"), ApprovalsFile: approvals,
				MaxConcurrentActivities: c.Int("max-concurrent-activities"), StickyCacheSize: c.Int("sticky-cache-size"), Logger: logger(c),
				AllowPlaintext: c.Bool("allow-insecure-plaintext"),
				// The default address is best effort: a second worker on the machine finds it taken.
				Metrics: mx, MetricsBestEffort: !c.IsSet(flagMetricsListen),
				BuildID: c.String("build-id"), Versioning: versioning, MakeCurrent: c.Bool("make-current"),
			})
		},
	}
}

// workerPromoteCmd makes a build the current version of pigwf's worker deployment: the step of
// a rolling upgrade after the new build's workers run.
func workerPromoteCmd() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "make a build the current version of the worker fleet: new runs (and, with auto-upgrade, every run's next step) go to its workers",
		ArgsUsage: " ",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "build-id", Required: true, Usage: "the build to make current (what its workers log at start)"}},
		Action: func(c *cli.Context) error {
			return askTemporal(c, func(ctx context.Context, cl *starter.Client) error {
				prev, err := worker.Promote(ctx, cl.C, c.String("build-id"))
				if err != nil {
					return err
				}
				if prev == c.String("build-id") {
					fmt.Printf("build %s is already current (unchanged)\n", prev)
					return nil
				}
				fmt.Printf("build %s is now current (was %q)\n", c.String("build-id"), prev)
				return nil
			})
		},
	}
}

// The worker's metrics flags. The default port is pigwf's own: clear of Prometheus (9090), the
// node exporter (9100), postgres_exporter (9187) and Pigsty's exporters (963x).
const (
	flagMetricsListen    = "metrics-listen"
	flagMetricsCert      = "metrics-tls-cert"
	flagMetricsKey       = "metrics-tls-key"
	defaultMetricsListen = "127.0.0.1:9477"
)

// metricsListen is where the worker serves its metrics, checked: HTTPS needs both files, and an
// address off loopback needs HTTPS. A client's certificate, when one is given, is verified against
// the deployment CA.
func metricsListen(c *cli.Context) (prom.Listen, error) {
	l := prom.Listen{Addr: c.String(flagMetricsListen)}
	if cert, key := c.String(flagMetricsCert), c.String(flagMetricsKey); cert != "" || key != "" {
		l.TLS = pki.Files{CA: pki.CA{Dir: caDir(c)}.Files().CA, Cert: cert, Key: key}
	}
	err := l.Check()
	switch {
	case errors.Is(err, prom.ErrPlaintextOffLoopback):
		return l, fmt.Errorf("--%s %s: %w; give --%s and --%s (a certificate of the deployment CA naming the address Prometheus scrapes), or listen on 127.0.0.1",
			flagMetricsListen, l.Addr, prom.ErrPlaintextOffLoopback, flagMetricsCert, flagMetricsKey)
	case err != nil:
		return l, fmt.Errorf("--%s/--%s/--%s: %w", flagMetricsListen, flagMetricsCert, flagMetricsKey, err)
	}
	return l, nil
}
