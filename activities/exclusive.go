package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// One runbook at a time per cluster. The CLI's start refuses a cluster with an open pigwf run
// (starter.Client.Start, through Temporal's visibility); every run then takes the cluster's lock
// itself (workflows.ClusterLock: atomic, where visibility lags). Runs recorded before the lock
// checked through visibility themselves with ClusterExclusive; ClusterLockHolder names the run
// holding a lock for a run refused by it.

// ClusterRun is an open pigwf run on a cluster, as Temporal's visibility lists it.
type ClusterRun struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Started    time.Time `json:"started"`
	// Released: the run held the cluster's lock and it has ended since (ClusterLockHolder).
	Released bool `json:"released,omitempty"`
}

// ErrClusterBusy: another pigwf run is open on the cluster; this one changed nothing.
const ErrClusterBusy = "ClusterBusy"

// ExclusiveInput asks whether a run may go ahead on Cluster: no other open run there but itself.
type ExclusiveInput struct {
	Cluster    string `json:"cluster"`
	WorkflowID string `json:"workflow_id"` // the asking run's own, left out of the count
	RunID      string `json:"run_id"`
}

// Validate checks the cluster's name.
func (in ExclusiveInput) Validate() error {
	var c inputCheck
	c.rule("cluster", "pg_cluster", in.Cluster)
	return c.err()
}

// ClusterExclusive fails, non-retryably (ErrClusterBusy), when another pigwf run is open on the
// cluster, naming it; it changes nothing. Visibility lags a moment behind a start, so two runs
// started within that moment can both pass: the same window the CLI's own check has.
func (a *Activities) ClusterExclusive(ctx context.Context, in ExclusiveInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: "exclusive"}
	if a.OpenRunsOn == nil {
		return res, temporal.NewNonRetryableApplicationError("this worker cannot list the runs open on a cluster (it was built without OpenRunsOn): a wiring bug in the worker", ErrConfig, nil)
	}
	runs, err := a.OpenRunsOn(ctx, in.Cluster)
	if err != nil {
		return res, fmt.Errorf("while listing the runs open on %s: %w", in.Cluster, err)
	}
	var others []string
	first := ""
	for _, r := range runs {
		if r.WorkflowID == in.WorkflowID && (r.RunID == in.RunID || r.RunID == "") {
			continue
		}
		if first == "" {
			first = r.WorkflowID
		}
		others = append(others, fmt.Sprintf("%s (run %s, started %s)", r.WorkflowID, r.RunID, r.Started.UTC().Format(time.RFC3339)))
	}
	if len(others) > 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"cluster %s is busy: %s is running; one runbook at a time per cluster, so this run changed nothing (watch the other with `pigwf status %s`; a scheduled run is tried again at the schedule's next time)",
			in.Cluster, strings.Join(others, ", "), first), ErrClusterBusy, nil)
	}
	res.Notes = []string{"no other pigwf run is open on " + in.Cluster}
	return res, nil
}

// ClusterLockHolder names the run holding the cluster's lock (the lock workflow's parent), for
// the refusal of a run that could not take it; it changes nothing. Released says the lock has
// ended since (its holder ended a moment ago).
func (a *Activities) ClusterLockHolder(ctx context.Context, in ExclusiveInput) (ClusterRun, error) {
	if a.LockHolder == nil {
		return ClusterRun{}, temporal.NewNonRetryableApplicationError("this worker cannot read a cluster's lock (it was built without LockHolder): a wiring bug in the worker", ErrConfig, nil)
	}
	r, err := a.LockHolder(ctx, in.Cluster)
	if err != nil {
		return r, fmt.Errorf("while reading who holds the lock of %s: %w", in.Cluster, err)
	}
	return r, nil
}
