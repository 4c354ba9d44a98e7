package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/metrics"
)

// Metrics of runs (package metrics names them). Workflow code emits only through
// workflow.GetMetricsHandler: it records nothing while a worker replays a history, so a run's
// events are counted by the worker that runs them first (again only when a workflow task is
// retried after its worker died in it), and emitting adds no command to the history. A run's runbook and cluster labels are its search attributes Runbook and PgCluster,
// which every runbook sets as it starts (setSearchAttributes).

// runMetrics is the handler of a run's own metrics: the SDK's tags (namespace, task_queue,
// workflow_type) and the run's runbook and cluster.
func runMetrics(ctx workflow.Context, runbook, cluster string) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{metrics.LabelRunbook: runbook, metrics.LabelCluster: cluster})
}

// runStarted counts the run's start.
func runStarted(ctx workflow.Context, runbook, cluster string) {
	runMetrics(ctx, runbook, cluster).Counter(metrics.RunsStarted).Inc(1)
}

// stepEnded records a step's final state and how long it took.
func (t *tracker) stepEnded(ctx workflow.Context, s step, state string, took time.Duration) {
	runMetrics(ctx, t.p.Runbook, t.p.Cluster).WithTags(map[string]string{metrics.LabelStep: s.name, metrics.LabelState: state}).
		Timer(metrics.StepDuration).Record(took)
}

// approvalEnded records how long the run waited at its gate and the decision.
func (t *tracker) approvalEnded(ctx workflow.Context, st ApprovalState) {
	runMetrics(ctx, t.p.Runbook, t.p.Cluster).WithTags(map[string]string{metrics.LabelDecision: st.Decision}).
		Timer(metrics.ApprovalWait).Record(workflow.Now(ctx).Sub(st.Requested))
}

// resultOfType: the run error types that are a result of their own; any other error is
// ResultFailed.
var resultOfType = map[string]string{
	SwitchoverRejectedType:    metrics.ResultNotApproved,
	PITRRestoreRejectedType:   metrics.ResultNotApproved,
	RunbookNotApprovedType:    metrics.ResultNotApproved,
	PgObjectsRefusedType:      metrics.ResultNotApproved, // refused by the plan, rejected or timed out: nothing changed
	PITRRestoreRolledBackType: metrics.ResultRolledBack,
}

// RunResult is how a run that returned err ended, as the runs-finished metric labels it.
func RunResult(err error) string {
	if err == nil {
		return metrics.ResultCompleted
	}
	if temporal.IsCanceledError(err) {
		return metrics.ResultCanceled
	}
	if workflow.IsContinueAsNewError(err) {
		return metrics.ResultContinued
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if r, ok := resultOfType[app.Type()]; ok {
			return r
		}
	}
	return metrics.ResultFailed
}

// RunMetrics (as &RunMetrics{}) is the worker interceptor that counts how each run ended, by
// runbook, cluster and RunResult: the one place that sees every runbook's return. It runs inside
// the workflow and emits through its replay-safe handler like the rest of workflow code.
type RunMetrics struct {
	interceptor.WorkerInterceptorBase
}

// InterceptWorkflow wraps the run.
func (*RunMetrics) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &runMetricsInbound{}
	i.Next = next
	return i
}

type runMetricsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *runMetricsInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	if workflow.GetInfo(ctx).WorkflowType.Name == ClusterLockName { // a run's lock, not a run
		return i.Next.ExecuteWorkflow(ctx, in)
	}
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	runbook, cluster := runIdentity(ctx)
	runMetrics(ctx, runbook, cluster).WithTags(map[string]string{metrics.LabelResult: RunResult(err)}).Counter(metrics.RunsFinished).Inc(1)
	return res, err
}

// runIdentity is the run's runbook and cluster from its search attributes; a run that ended
// before setting them (it cannot, but a workflow registered by someone else could) is labelled by
// its workflow type and no cluster.
func runIdentity(ctx workflow.Context) (runbook, cluster string) {
	sa := workflow.GetTypedSearchAttributes(ctx)
	runbook, _ = sa.GetKeyword(SearchAttrRunbook)
	cluster, _ = sa.GetKeyword(SearchAttrCluster)
	if runbook == "" {
		runbook = workflow.GetInfo(ctx).WorkflowType.Name
	}
	return runbook, cluster
}
