package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// One runbook at a time per cluster, atomically. A run takes its cluster by starting a child
// workflow with the fixed ID lock/<cluster> (ClusterLock): Temporal keeps at most one open
// workflow per ID, so of two runs that start in the same instant exactly one gets the lock and the
// other's start of the child fails with Temporal's typed "already started" error. The lock's
// ParentClosePolicy is TERMINATE: it ends when its holder ends, whichever way (completed, failed,
// cancelled, terminated, timed out); a dead worker does not end a run, so nor its hold.
//
// The CLI's check through visibility (starter.Client.Start) stays as the fast early refusal; it
// lags a moment behind a start, the lock does not. A run's child runs on the same cluster (the
// switchover of pg-restart, the node-init of pg-member-add, a custom runbook's steps) are started
// with ClusterLocked set in their input and do not take the lock again: their parent holds it
// for them. Runs recorded before the lock replay as they ran (GetVersion clusterLockChange), with
// the visibility step (activities.ClusterExclusive) where they had one.

// ClusterLockName is the lock's workflow type.
const ClusterLockName = "ClusterLock"

// ClusterLockReleaseSignal ends a lock before its holder ends (a holder done with the cluster;
// an operator can also `temporal workflow terminate` it).
const ClusterLockReleaseSignal = "release"

// ClusterBusyType is the error type of a run refused because another run holds its cluster: it
// changed nothing.
const ClusterBusyType = activities.ErrClusterBusy

// clusterLockChange is the GetVersion change ID of taking the lock, taken once per run.
const clusterLockChange = "cluster-lock"

// ClusterLockID is the lock's workflow ID: lock/<cluster>.
func ClusterLockID(cluster string) string { return "lock/" + cluster }

// ClusterLockInput is the lock's input: the cluster it holds, for people reading it in the Web
// UI (the holder is the lock's parent run).
type ClusterLockInput struct {
	Cluster string `json:"cluster"`
}

// ClusterLock holds lock/<cluster> until it is released or its holder (its parent) ends.
func ClusterLock(ctx workflow.Context, in ClusterLockInput) error {
	workflow.GetSignalChannel(ctx, ClusterLockReleaseSignal).Receive(ctx, nil)
	return nil
}

// exclusiveStep is the row of the cluster's lock in a run's progress: "exclusive", as the
// visibility check before it was named.
var exclusiveStep = controlStep("exclusive", within(time.Minute, 3))

// clusterBusy is the refusal of a run whose cluster another run holds: nothing changed.
type clusterBusy struct{ msg string }

func (e *clusterBusy) Error() string { return e.msg }

// takeCluster takes lock/<cluster> for the run's whole life, or, in a child run whose parent
// holds it (inherited: the input's ClusterLocked, honoured only in a run that has a parent),
// leaves it to the parent. held is false in a run recorded before the lock: the caller does what
// it did then. A cluster another run holds is a *clusterBusy naming that run; the row "exclusive"
// says it too.
func takeCluster(ctx workflow.Context, track *tracker, cluster string, inherited bool) (held bool, err error) {
	if workflow.GetVersion(ctx, clusterLockChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false, nil
	}
	track.add(step{}, exclusiveStep)
	id := ClusterLockID(cluster)
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; inherited && parent != nil {
		track.set(exclusiveStep, StateUnchanged, fmt.Sprintf("%s is held by the parent run %s", id, parent.ID))
		return true, nil
	}
	track.set(exclusiveStep, StateRunning, "taking "+id)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		StaticSummary:         fmt.Sprintf("%s to one runbook at a time: held by its parent run", cluster),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_TERMINATE,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	var lock workflow.Execution
	err = workflow.ExecuteChildWorkflow(cctx, ClusterLockName, ClusterLockInput{Cluster: cluster}).
		GetChildWorkflowExecution().Get(ctx, &lock)
	if err == nil {
		track.set(exclusiveStep, StateUnchanged, fmt.Sprintf("%s held by this run until it ends", id))
		return true, nil
	}
	if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		track.set(exclusiveStep, StateFailed, failureMessage(err))
		return false, err
	}
	busy := &clusterBusy{msg: busyMessage(ctx, cluster)}
	track.set(exclusiveStep, StateFailed, busy.msg)
	return false, busy
}

// lockCluster is the first step of a runbook that had no check of its own (the CLI's only): the
// lock, and a refusal (ClusterBusyType, non-retryable) when another run holds it. held is as
// takeCluster's: a run that holds the lock starts its child runs with ClusterLocked.
func lockCluster(ctx workflow.Context, track *tracker, cluster string, inherited bool) (held bool, err error) {
	held, err = takeCluster(ctx, track, cluster, inherited)
	var busy *clusterBusy
	if errors.As(err, &busy) {
		track.skipPending()
		return false, track.fail(busy.msg, ClusterBusyType, nil)
	}
	return held, err
}

// claimCluster is the first step of the runbooks that checked the cluster themselves before the
// lock (pg-backup, which schedules start, and the member runbooks): the lock, or in a run
// recorded before it, the check through visibility it made then.
// held is as takeCluster's.
func claimCluster(ctx workflow.Context, track *tracker, cluster string) (held bool, err error) {
	if held, err = takeCluster(ctx, track, cluster, false); held || err != nil {
		return held, err
	}
	var a *activities.Activities
	run := workflow.GetInfo(ctx).WorkflowExecution
	_, err = runStep(ctx, track, exclusiveStep, checkOutcome, a.ClusterExclusive,
		activities.ExclusiveInput{Cluster: cluster, WorkflowID: run.ID, RunID: run.RunID})
	return false, err
}

// busyMessage names the run holding the cluster, the lock's parent (an activity describes the
// lock: a workflow cannot).
func busyMessage(ctx workflow.Context, cluster string) string {
	var a *activities.Activities
	run := workflow.GetInfo(ctx).WorkflowExecution
	actx := workflow.WithActivityOptions(ctx, controlStep("lock-holder", within(time.Minute, 3)).activityOptions())
	var holder activities.ClusterRun
	err := workflow.ExecuteActivity(actx, a.ClusterLockHolder,
		activities.ExclusiveInput{Cluster: cluster, WorkflowID: run.ID, RunID: run.RunID}).Get(ctx, &holder)
	who, watch := "another run", ""
	switch {
	case err != nil:
		who += " (which one could not be read: " + failureMessage(err) + ")"
	case holder.WorkflowID != "":
		who = fmt.Sprintf("%s (run %s, holding it since %s)", holder.WorkflowID, holder.RunID, holder.Started.UTC().Format(time.RFC3339))
		if holder.Released {
			who += ", which has just ended: start again"
		}
		watch = fmt.Sprintf(" (watch it with `pigwf status %s`)", holder.WorkflowID)
	}
	return fmt.Sprintf("cluster %s is busy: %s holds %s; one runbook at a time per cluster, so this run changed nothing%s; a scheduled run is tried again at the schedule's next time",
		cluster, who, ClusterLockID(cluster), watch)
}
