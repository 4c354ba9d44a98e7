package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pki"
)

// Remote runs commands on hosts; sshrun.Runner is the real one, unit tests use a fake.
type Remote interface {
	Run(ctx context.Context, t sshrun.Target, cmd sshrun.Command) (sshrun.Result, error)
}

// Activities carries the injected dependencies of every pigwf activity.
type Activities struct {
	Remote  Remote
	CA      pki.CA
	Secrets SecretStore
	// AgentBinary is the pg-ha-agent executable the worker installs on nodes.
	AgentBinary string
	Notifier    Notifier
	// Approvals is the worker's approvals file: the approval gates' policies and the keys that
	// verify decisions.
	Approvals ApprovalTrust
	Log       *slog.Logger
	// AllowPlaintext is the worker's own consent (its --allow-insecure-plaintext) to act on a
	// cluster without TLS: a workflow input asking for plain text is refused without it, so a
	// crafted input cannot turn TLS off.
	AllowPlaintext bool
	// OpenRunsOn lists the pigwf runs open on a cluster (Temporal's visibility; the worker gives
	// starter.Client.OpenRunsOn): ClusterExclusive reads it.
	OpenRunsOn func(ctx context.Context, cluster string) ([]ClusterRun, error)
	// LockHolder is the run holding the cluster's lock (the worker gives
	// starter.Client.LockHolder): ClusterLockHolder reads it.
	LockHolder func(ctx context.Context, cluster string) (ClusterRun, error)

	agentHTTP agentTransport // see agentClient
}

// ClientTLS are the worker's TLS client files: the deployment CA and the worker's client
// certificate, issued from the CA on this host (and renewed by the same rule as node
// certificates) when first needed. Etcd and the agents' APIs authenticate the worker by it.
func (a *Activities) ClientTLS() (pki.Files, error) {
	files, _, err := a.CA.EnsureClient(pki.WorkerClient, time.Now())
	if err != nil {
		return pki.Files{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the worker's client certificate from the CA in %s: %v (is the deployment CA there? NodeInit creates it)", a.CA.Dir, err), ErrConfig, err)
	}
	return files, nil
}

// ErrPlaintextRefused: a run asked for plain text and this worker does not allow it.
const ErrPlaintextRefused = "PlaintextRefused"

// checkPlaintext refuses an input that asks for plain text (DCSInput.Plaintext,
// PGSpec.Plaintext) unless this worker allows it.
func (a *Activities) checkPlaintext(plaintext bool) error {
	if plaintext && !a.AllowPlaintext {
		return temporal.NewNonRetryableApplicationError(
			"this run asks for plain text (pigwf_insecure_plaintext) and this worker does not allow it: that is for labs only; start the worker with --allow-insecure-plaintext in a lab, or remove pigwf_insecure_plaintext from the inventory",
			ErrPlaintextRefused, nil)
	}
	return nil
}

// exitPermanent is the exit status step scripts use for failures a retry cannot fix.
const exitPermanent = 64

// scriptPrelude gives every step script the same vocabulary: changed (journal + report),
// note (report only) and fail (permanent failure with a message for the operator).
var scriptPrelude = `set -eu
export LC_ALL=C
cd /  # commands run as postgres may not enter root's home
changed() {
  mkdir -p /var/lib/pigwf
  printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PIGWF_STEP" "$*" >> ` + JournalPath + `
  echo "changed: $*"
}
note() { echo "note: $*"; }
fact() { echo "fact: $1=$2"; }
fail() { echo "$*" >&2; exit ` + strconv.Itoa(exitPermanent) + `; }
`

// JournalPath is where every change pigwf makes on a node is recorded, one line per change.
const JournalPath = "/var/lib/pigwf/journal.log"

// runStep runs a step script as root on the node, heartbeating while it runs, and turns its
// "changed:"/"note:" lines into a StepResult.
func (a *Activities) runStep(ctx context.Context, node Node, step, script string, stdin []byte) (StepResult, error) {
	return a.runStepReporting(ctx, node, step, script, stdin, nil)
}

// runStepReporting is runStep whose heartbeats also carry progress() (nil: none), what the step
// has done so far as the step itself can tell.
func (a *Activities) runStepReporting(ctx context.Context, node Node, step, script string, stdin []byte, progress func() string) (StepResult, error) {
	res := StepResult{Node: node.Addr, Step: step}
	full := scriptPrelude + "PIGWF_STEP=" + sshrun.ShellQuote(step) + "\n" + script
	stop := heartbeatWith(ctx, node, step, progress)
	out, err := a.Remote.Run(ctx, node.Target(), sshrun.Command{Script: full, AsUser: "root", Stdin: stdin})
	stop()
	if err != nil {
		return res, a.classify(node, step, err)
	}
	for _, line := range strings.Split(out.Stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "changed: "):
			res.Changed = true
			res.Changes = append(res.Changes, strings.TrimPrefix(line, "changed: "))
		case strings.HasPrefix(line, "note: "):
			res.Notes = append(res.Notes, strings.TrimPrefix(line, "note: "))
		case strings.HasPrefix(line, "fact: "):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, "fact: "), "=")
			if res.Facts == nil {
				res.Facts = map[string]string{}
			}
			res.Facts[k] = v
		}
	}
	if out.ExitStatus != 0 {
		msg := fmt.Sprintf("%s on %s failed: %v", step, node, out.Err())
		if out.ExitStatus == exitPermanent {
			return res, temporal.NewNonRetryableApplicationError(msg, ErrConflict, out.Err(), res)
		}
		// sudo -n says "no password-less sudo" only in words (its exit status is that of any
		// failure), so this is the one place its wording is read.
		if strings.Contains(out.Stderr, "sudo: a password is required") || strings.Contains(out.Stderr, "is not in the sudoers") {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: user %s cannot sudo without a password on %s; give it NOPASSWD sudo or log in as root", step, node.SSHUser, node), ErrAuth, nil)
		}
		return res, errors.New(msg)
	}
	a.logger().Info("step done", "node", node.String(), "step", step, "changed", res.Changed, "summary", res.Summary())
	return res, nil
}

// classify turns runner errors into Temporal errors: permanent ones are non-retryable and name
// the host and the fix; the rest (timeouts, refused connections) are retried by policy.
func (a *Activities) classify(node Node, step string, err error) error {
	var hk *sshrun.HostKeyError
	var au *sshrun.AuthError
	var cf *sshrun.ConfigError
	switch {
	case errors.As(err, &hk):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %v", step, node, hk), ErrHostKey, nil)
	case errors.As(err, &au):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %v", step, node, au), ErrAuth, nil)
	case errors.As(err, &cf):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %v", step, node, cf), ErrConfig, nil)
	}
	return fmt.Errorf("while running %s on %s: %w", step, node, err)
}

func (a *Activities) logger() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// heartbeat records progress every two seconds while a remote step runs, so a worker that dies
// mid-step is noticed by the heartbeat timeout rather than the (long) start-to-close timeout.
func heartbeat(ctx context.Context, node Node, step string) (stop func()) {
	return heartbeatWith(ctx, node, step, nil)
}

// heartbeatWith is heartbeat with progress() (when not nil and not "") added to each detail.
func heartbeatWith(ctx context.Context, node Node, step string, progress func() string) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				detail := fmt.Sprintf("%s on %s running for %s", step, node, time.Since(start).Round(time.Second))
				if progress != nil {
					if p := progress(); p != "" {
						detail += ": " + p
					}
				}
				activity.RecordHeartbeat(ctx, detail)
			}
		}
	}()
	return func() { close(done) }
}
