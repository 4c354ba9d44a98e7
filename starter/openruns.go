package starter

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/workflows"
)

// OpenRun is an open pigwf run as Temporal's visibility has it: no query to the run, so it needs
// no worker to answer.
type OpenRun struct {
	WorkflowID string
	Runbook    string // the Runbook search attribute (the workflow type when unreadable)
	Cluster    string // PgCluster
	Phase      string // RunState: workflows.PhaseRunning, PhaseWaitingForApproval, ...
}

// WaitingForApproval reports whether the run says it waits for an approval.
func (r OpenRun) WaitingForApproval() bool { return r.Phase == workflows.PhaseWaitingForApproval }

// openRunsPage and openRunsMax bound a listing: pigwf runs one runbook per cluster at a time, so
// thousands of open runs would mean something else is wrong; the listing stops there rather than
// page on.
const (
	openRunsPage = 1000
	openRunsMax  = 10 * openRunsPage
)

// OpenRuns lists every open pigwf run (every page, up to openRunsMax) with its runbook, cluster
// and phase, from the search attributes each run keeps up to date.
func (c *Client) OpenRuns(ctx context.Context) ([]OpenRun, error) {
	req := workflowListRequest{limit: openRunsPage}.proto()
	var out []OpenRun
	for {
		resp, err := c.C.ListWorkflow(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("while listing open runs: %w", err)
		}
		for _, e := range resp.Executions {
			out = append(out, OpenRun{WorkflowID: e.GetExecution().GetWorkflowId(), Runbook: runbookOf(e),
				Cluster: keywordOf(e, workflows.SearchAttrCluster.GetName()), Phase: keywordOf(e, workflows.SearchAttrState.GetName())})
		}
		if len(resp.NextPageToken) == 0 || len(out) >= openRunsMax {
			return out, nil
		}
		req.NextPageToken = resp.NextPageToken
	}
}

// keywordOf is a listed run's keyword search attribute name, "" when it has none or it cannot be
// read.
func keywordOf(e *workflowpb.WorkflowExecutionInfo, name string) string {
	return keyword(e.GetSearchAttributes(), name)
}

// keyword is the keyword search attribute name of a run's or a schedule's attributes, "" when
// absent or unreadable.
func keyword(sa *commonpb.SearchAttributes, name string) string {
	var v string
	if p := sa.GetIndexedFields()[name]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}

// LockHolder is the run holding the cluster's lock (workflows.ClusterLockID): the lock
// workflow's parent, since when it holds it, and whether it has let go since (the lock ended, or
// its holder did and Temporal has yet to end the lock: a moment after).
func (c *Client) LockHolder(ctx context.Context, cluster string) (activities.ClusterRun, error) {
	d, err := c.C.DescribeWorkflowExecution(ctx, workflows.ClusterLockID(cluster), "")
	if err != nil {
		return activities.ClusterRun{}, err
	}
	info := d.GetWorkflowExecutionInfo()
	p := info.GetParentExecution()
	r := activities.ClusterRun{WorkflowID: p.GetWorkflowId(), RunID: p.GetRunId(), Started: info.GetStartTime().AsTime(),
		Released: info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}
	if !r.Released && r.WorkflowID != "" {
		if pd, err := c.C.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID); err == nil {
			r.Released = pd.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		}
	}
	return r, nil
}
