// Package worker wires pigwf's workflows and activities to a Temporal worker. Wiring only:
// no runbook logic lives here.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/metrics/prom"
	"github.com/pigwf/pigwf/workflows"
)

// Config is what a worker needs.
type Config struct {
	Temporal                starter.Connection // how to reach Temporal (address, namespace, TLS)
	TaskQueue               string             // default workflows.TaskQueue
	CADir                   string             // the deployment CA (control side)
	SecretsDir              string             // generated passwords (control side)
	AgentBinary             string             // pg-ha-agent, installed on nodes by PgClusterCreate
	NotifyURL               string             // chat webhook for run events ("" = off)
	ApprovalsFile           string             // who may approve and whose keys are believed (approval.Trust)
	WebUI                   string             // Temporal Web UI base URL, for links in notifications
	MaxConcurrentActivities int                // 0: the SDK default
	// StickyCacheSize is how many runs' state the worker keeps in memory between their steps
	// (0: the SDK default, 10,000). A run not in the cache replays its whole history at its next
	// step; the README ("Workers") says what that costs.
	StickyCacheSize int
	AllowPlaintext  bool        // lab-only: act on plain-text clusters (activities.Activities.AllowPlaintext)
	Metrics         prom.Listen // where /metrics is served (metrics.go)
	// MetricsBestEffort: a metrics address in use is logged and the worker runs without metrics
	// (the default address, taken by another worker on the same machine), instead of stopping.
	MetricsBestEffort bool
	// BuildID names this worker's build in pigwf's Temporal Worker Deployment (default
	// DefaultBuildID()); Versioning says how runs move between builds (versioning.go).
	BuildID    string
	Versioning Versioning
	// MakeCurrent makes this build the deployment's current version at start even when another
	// is: a single worker replaced in place by a new binary (its old build has no worker left).
	MakeCurrent bool
	Logger      *slog.Logger
}

// Run polls until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = workflows.TaskQueue
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.BuildID == "" {
		cfg.BuildID = DefaultBuildID()
	}
	if cfg.Versioning == "" {
		cfg.Versioning = VersioningAutoUpgrade
	}
	if err := validBuildID(cfg.BuildID); err != nil {
		return err
	}
	if err := checkApprovals(cfg.ApprovalsFile, log); err != nil {
		return err
	}
	mx, err := bindMetrics(cfg, log)
	if err != nil {
		return err
	}
	cl, err := starter.Dial(ctx, cfg.Temporal, log, mx.dialOptions()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	mx.serve(ctx, cl, log)
	c := cl.C
	runner := sshrun.New(sshrun.Options{Logger: log})
	defer runner.Close()

	if cfg.StickyCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(cfg.StickyCacheSize) // process-wide; before the worker starts
	}
	w := worker.New(c, cfg.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		Identity:                           Identity(cfg.BuildID),
		DeploymentOptions:                  cfg.Versioning.deploymentOptions(cfg.BuildID),
		Interceptors: []interceptor.WorkerInterceptor{
			// Every activity's input is checked against the inventory's rules before it runs.
			&activities.ValidateInputs{},
			// How each run ends goes to the metrics (a no-op without them).
			&workflows.RunMetrics{},
		},
	})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{
		Remote: runner, CA: pki.CA{Dir: cfg.CADir}, Secrets: activities.SecretStore{Dir: cfg.SecretsDir},
		AgentBinary: cfg.AgentBinary, AllowPlaintext: cfg.AllowPlaintext, Notifier: activities.Notifier{URL: cfg.NotifyURL, WebUI: cfg.WebUI},
		Approvals: activities.ApprovalTrust{File: cfg.ApprovalsFile}, Log: log, OpenRunsOn: cl.OpenRunsOn, LockHolder: cl.LockHolder,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("while starting the worker: %w", err)
	}
	log.Info("pigwf worker polling", "temporal", cfg.Temporal, "task_queue", cfg.TaskQueue, "ca_dir", cfg.CADir,
		"build_id", cfg.BuildID, "versioning", string(cfg.Versioning))
	go keepCurrent(ctx, c, cfg, log)
	<-ctx.Done()
	w.Stop()
	return nil
}

// checkApprovals reads the approvals file once at the start: a file that does not parse stops the
// worker with every problem named; no file at all is allowed (a lab, a worker for NodeInit only)
// but said loudly, since then no run can be approved. The activities read it again at every use,
// so an edit needs no restart.
func checkApprovals(file string, log *slog.Logger) error {
	tr, err := approval.Load(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("no approvals file: nobody can approve a run on this worker; runs waiting for approval will time out, changing nothing. Create it (README, \"Switchover and approvals\"; `pigwf keys new NAME` makes a key) or give --approvals FILE",
			"approvals", file)
		return nil
	case err != nil:
		return fmt.Errorf("the worker's approvals file: %w", err)
	}
	log.Info("approvals file read", "approvals", file, "signature_window", tr.Window.String())
	return nil
}
