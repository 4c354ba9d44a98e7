package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/workerid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Versioning is how an upgrade of the worker fleet treats the runs in flight. Every worker
// belongs to the Temporal Worker Deployment DeploymentName with its build ID; the deployment's
// current version decides which build gets new runs.
type Versioning string

const (
	// VersioningAutoUpgrade (the default): once a new build is made current, every run's next
	// step runs on it, and workers of the old build get nothing more, so one run never ping-pongs
	// between an old and a new build. Safe because every change to a released workflow is behind
	// workflow.GetVersion and CI replays the kept histories of every released version.
	VersioningAutoUpgrade Versioning = "auto-upgrade"
	// VersioningPinned: a run stays on the build it started on until it ends; the old build's
	// workers must run until their runs drain (`temporal worker deployment describe-version`).
	// For fleets that want the server, not discipline, to keep old runs off new code.
	VersioningPinned Versioning = "pinned"
	// VersioningOff: no routing by build; any worker of the task queue takes any task, and the
	// build ID is recorded only. During a rolling upgrade an old worker can then replay a step a
	// new one recorded and fail it as non-deterministic: for a single worker, or tests.
	VersioningOff Versioning = "off"
)

// DeploymentName is the Temporal Worker Deployment every pigwf worker belongs to.
const DeploymentName = "pigwf"

// ErrBadVersioning is a --versioning value that is none of the three.
var ErrBadVersioning = errors.New("unknown versioning")

// ParseVersioning reads a --versioning value; empty is the default.
func ParseVersioning(s string) (Versioning, error) {
	switch v := Versioning(s); v {
	case "":
		return VersioningAutoUpgrade, nil
	case VersioningAutoUpgrade, VersioningPinned, VersioningOff:
		return v, nil
	}
	return "", fmt.Errorf("%w %q: use %s (default), %s or %s", ErrBadVersioning, s, VersioningAutoUpgrade, VersioningPinned, VersioningOff)
}

// routed says whether the server routes tasks by build (the deployment's current version).
func (v Versioning) routed() bool { return v != VersioningOff }

// deploymentOptions are the SDK options for a worker of build buildID.
func (v Versioning) deploymentOptions(buildID string) worker.DeploymentOptions {
	o := worker.DeploymentOptions{Version: worker.WorkerDeploymentVersion{DeploymentName: DeploymentName, BuildID: buildID}}
	switch v {
	case VersioningAutoUpgrade:
		o.UseVersioning, o.DefaultVersioningBehavior = true, workflow.VersioningBehaviorAutoUpgrade
	case VersioningPinned:
		o.UseVersioning, o.DefaultVersioningBehavior = true, workflow.VersioningBehaviorPinned
	}
	return o
}

// DefaultBuildID names the running binary's build: its VCS revision (with "+modified" when the
// tree had uncommitted changes) when the build recorded one, else a digest of the executable
// (builds with -buildvcs=false record none). Two workers of one build share it, so the
// deployment sees one version; any change to the code changes it.
func DefaultBuildID() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+modified"
				}
			}
		}
		if rev != "" {
			return rev[:min(len(rev), 12)] + modified
		}
	}
	if d, err := executableDigest(); err == nil {
		return "sha256-" + d[:12]
	}
	return "unknown"
}

// executableDigest is the hex SHA-256 of the running binary.
func executableDigest() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Identity is what Temporal records as the worker that ran each task: host, process and build,
// so a history says which machine and which build ran a step.
func Identity(buildID string) string {
	host, _ := os.Hostname()
	return workerid.Format(host, os.Getpid(), buildID)
}

// currentDecision says whether this worker's build should become the deployment's current
// version, and why. Pure: the caller observes, this decides.
//   - no current version yet: the first worker of a fleet makes its build current;
//   - told to (--make-current): a worker replaced in place by a new binary;
//   - the current build has had no worker polling the task queue for staleAfter: its workers
//     are gone (a rolling upgrade stopped them), and with no one to run its steps, runs would wait
//     for nothing. Pinned runs stay on their build whatever is current.
//
// Otherwise another build is current and live: this worker waits to be promoted.
func currentDecision(ours, current string, currentLastPoll, now time.Time, force bool) (set bool, why string) {
	switch {
	case current == ours:
		return false, "this build is the current version"
	case current == "":
		return true, "the worker deployment had no current version"
	case force:
		return true, "--make-current: this build replaces build " + current
	case currentLastPoll.IsZero() || now.Sub(currentLastPoll) > staleAfter:
		return true, "no worker of the current build " + current + " has polled for " + staleAfter.String()
	}
	return false, "build " + current + " is current and its workers poll: this worker gets no tasks until its build is promoted (pigwf worker promote --build-id " + ours + ")"
}

// staleAfter: a live worker polls again at least every ~70 s (the long poll's length), so a
// build silent for this long has no worker left.
const staleAfter = 2 * time.Minute

// ensureCurrent observes the deployment's current version and when its build last polled
// queue, applies currentDecision, and returns the current build afterwards and whether it changed
// it. The server refuses a version whose workers have not polled yet, so when it decided to set
// it retries until ctx ends (the worker has just started).
func ensureCurrent(ctx context.Context, c client.Client, queue, buildID string, force bool) (current string, changed bool, why string, err error) {
	h := c.WorkerDeploymentClient().GetHandle(DeploymentName)
	for {
		cur, err := currentBuild(ctx, h)
		var last time.Time
		if err == nil && cur != "" && cur != buildID {
			last, err = lastPoll(ctx, c, queue, cur)
		}
		if err == nil {
			var set bool
			set, why = currentDecision(buildID, cur, last, time.Now(), force)
			if !set {
				return cur, false, why, nil
			}
			_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID})
			if err == nil {
				return buildID, true, why, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", false, "", fmt.Errorf("making build %s current in worker deployment %s: %w", buildID, DeploymentName, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lastPoll is when a worker of build last polled queue for workflow steps (zero: none the server
// remembers).
func lastPoll(ctx context.Context, c client.Client, queue, build string) (time.Time, error) {
	d, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return time.Time{}, fmt.Errorf("describing task queue %s: %w", queue, err)
	}
	var last time.Time
	for _, p := range d.GetPollers() {
		if o := p.GetDeploymentOptions(); o.GetDeploymentName() == DeploymentName && o.GetBuildId() == build {
			if t := p.GetLastAccessTime().AsTime(); t.After(last) {
				last = t
			}
		}
	}
	return last, nil
}

// currentBuild is the build ID of the deployment's current version, "" when it has none (or the
// deployment does not exist yet).
func currentBuild(ctx context.Context, h client.WorkerDeploymentHandle) (string, error) {
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return "", nil
	case err != nil:
		return "", err
	case d.Info.RoutingConfig.CurrentVersion == nil:
		return "", nil
	}
	return d.Info.RoutingConfig.CurrentVersion.BuildID, nil
}

// Promote makes buildID the current version of pigwf's worker deployment: new runs, and with
// auto-upgrade every run's next step, go to that build's workers. What `pigwf worker promote`
// does; `temporal worker deployment set-current-version` is the same call.
func Promote(ctx context.Context, c client.Client, buildID string) (previous string, err error) {
	h := c.WorkerDeploymentClient().GetHandle(DeploymentName)
	previous, err = currentBuild(ctx, h)
	if err != nil {
		return "", fmt.Errorf("reading worker deployment %s: %w", DeploymentName, err)
	}
	if previous == buildID {
		return previous, nil
	}
	// The server refuses a version whose workers have not yet polled every task queue the current
	// one serves (FailedPrecondition): a worker started a moment ago. Wait for them, a while.
	wait, cancel := context.WithTimeout(ctx, promoteWait)
	defer cancel()
	for {
		_, err := h.SetCurrentVersion(wait, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID})
		var fp *serviceerror.FailedPrecondition
		if err == nil {
			return previous, nil
		}
		if !errors.As(err, &fp) || wait.Err() != nil {
			return previous, fmt.Errorf("making build %s current in worker deployment %s (its workers must poll every task queue the current build does): %w", buildID, DeploymentName, err)
		}
		select {
		case <-wait.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// promoteWait is how long Promote waits for the new build's workers to poll.
const promoteWait = 30 * time.Second

// keepCurrent runs beside the worker: at start and every checkEvery it applies currentDecision,
// so the first worker of a fleet, a worker told to, and a new build whose predecessor's workers
// are all gone become current without an operator; and it says loudly when this worker waits.
func keepCurrent(ctx context.Context, c client.Client, cfg Config, log *slog.Logger) {
	if !cfg.Versioning.routed() {
		log.Info("worker versioning off: any worker of the task queue takes any task", "build_id", cfg.BuildID)
		return
	}
	lastWhy := ""
	for force := cfg.MakeCurrent; ; force = false {
		once, cancel := context.WithTimeout(ctx, 30*time.Second)
		cur, changed, why, err := ensureCurrent(once, c, cfg.TaskQueue, cfg.BuildID, force)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("could not check the worker deployment's current version", "deployment", DeploymentName, "build_id", cfg.BuildID, "err", err)
		case changed:
			log.Info("this build is now the current version of the worker deployment: new runs go to it",
				"deployment", DeploymentName, "build_id", cfg.BuildID, "versioning", string(cfg.Versioning), "why", why)
		case why != lastWhy && cur == cfg.BuildID:
			log.Info(why, "deployment", DeploymentName, "build_id", cfg.BuildID)
		case why != lastWhy:
			log.Warn(why, "deployment", DeploymentName, "build_id", cfg.BuildID, "current_build_id", cur)
		}
		lastWhy = why
		if changed {
			_, lastWhy = currentDecision(cfg.BuildID, cfg.BuildID, time.Time{}, time.Time{}, false) // quiet until something changes
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkEvery):
		}
	}
}

// checkEvery is how often a worker looks at the deployment's current version.
const checkEvery = 30 * time.Second

// validBuildID keeps a build ID to what the server and a log line take as is.
func validBuildID(s string) error {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, " \t\n/\\\"'") {
		return fmt.Errorf("build ID %q: use 1–255 characters without spaces, quotes or slashes (default: the binary's VCS revision)", s)
	}
	return nil
}
