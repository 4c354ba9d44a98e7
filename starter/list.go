package starter

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/pigwf/pigwf/workflows"
)

// WaitingForApprovalQuery finds every run waiting for approval, by the RunState each run keeps
// up to date: RunState="waiting for approval".
var WaitingForApprovalQuery = fmt.Sprintf("%s=%q", workflows.SearchAttrState.GetName(), workflows.PhaseWaitingForApproval)

// workflowListRequest builds visibility queries over pigwf's search attributes.
type workflowListRequest struct {
	cluster string
	all     bool // include closed runs
	limit   int
	since   time.Time // runs started at or after it; zero: any
}

func (r workflowListRequest) proto() *workflowservice.ListWorkflowExecutionsRequest {
	var conds []string
	if r.cluster != "" {
		// Cluster names are validated DNS labels; quoting keeps the query well-formed anyway.
		conds = append(conds, fmt.Sprintf("PgCluster = '%s'", strings.ReplaceAll(r.cluster, "'", "")))
	} else {
		conds = append(conds, "PgCluster IS NOT NULL")
	}
	if !r.all {
		conds = append(conds, "ExecutionStatus = 'Running'")
	}
	if !r.since.IsZero() {
		conds = append(conds, fmt.Sprintf("StartTime >= '%s'", r.since.UTC().Format(time.RFC3339Nano)))
	}
	limit := r.limit
	if limit == 0 {
		limit = 20
	}
	return &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(conds, " AND "), PageSize: int32(limit)}
}
