// Package worker wires pigwf's workflows and activities to a Temporal worker. Wiring only:
// no runbook logic lives here.
package worker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
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
	WebUI                   string             // Temporal Web UI base URL, for links in notifications
	MaxConcurrentActivities int                // 0: the SDK default
	AllowPlaintext          bool               // lab-only: act on plain-text clusters (activities.Activities.AllowPlaintext)
	Logger                  *slog.Logger
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
	cl, err := starter.Dial(ctx, cfg.Temporal, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	c := cl.C
	runner := sshrun.New(sshrun.Options{Logger: log})
	defer runner.Close()

	w := worker.New(c, cfg.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		// Every activity's input is checked against the inventory's rules before it runs.
		Interceptors: []interceptor.WorkerInterceptor{&activities.ValidateInputs{}},
	})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{
		Remote: runner, CA: pki.CA{Dir: cfg.CADir}, Secrets: activities.SecretStore{Dir: cfg.SecretsDir},
		AgentBinary: cfg.AgentBinary, AllowPlaintext: cfg.AllowPlaintext, Notifier: activities.Notifier{URL: cfg.NotifyURL, WebUI: cfg.WebUI}, Log: log,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("while starting the worker: %w", err)
	}
	log.Info("pigwf worker polling", "temporal", cfg.Temporal, "task_queue", cfg.TaskQueue, "ca_dir", cfg.CADir)
	<-ctx.Done()
	w.Stop()
	return nil
}
