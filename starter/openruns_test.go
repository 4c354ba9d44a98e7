package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pigwf/pigwf/workflows"
)

// listClient answers ListWorkflow from pages, a page per call, and records the requests.
type listClient struct {
	client.Client
	pages [][]*workflowpb.WorkflowExecutionInfo
	reqs  []*workflowservice.ListWorkflowExecutionsRequest
	err   error
}

func (l *listClient) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	l.reqs = append(l.reqs, &workflowservice.ListWorkflowExecutionsRequest{Query: req.Query, PageSize: req.PageSize, NextPageToken: req.NextPageToken})
	if l.err != nil {
		return nil, l.err
	}
	i := len(l.reqs) - 1
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: l.pages[i]}
	if i+1 < len(l.pages) {
		resp.NextPageToken = fmt.Appendf(nil, "page-%d", i+1)
	}
	return resp, nil
}

// listedRun is a run as visibility lists it; "" attributes are left out.
func listedRun(id, wfType string, attrs map[string]string) *workflowpb.WorkflowExecutionInfo {
	fields := map[string]*commonpb.Payload{}
	for k, v := range attrs {
		if v == "" {
			continue
		}
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			panic(err)
		}
		fields[k] = p
	}
	return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}, Type: &commonpb.WorkflowType{Name: wfType},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: fields}}
}

func TestOpenRunsReadsEveryPage(t *testing.T) {
	cl := workflows.SearchAttrCluster.GetName()
	rb := workflows.SearchAttrRunbook.GetName()
	st := workflows.SearchAttrState.GetName()
	l := &listClient{pages: [][]*workflowpb.WorkflowExecutionInfo{
		{listedRun("switchover/pg-test", workflows.SwitchoverName, map[string]string{cl: "pg-test", rb: "switchover", st: workflows.PhaseWaitingForApproval})},
		{listedRun("node-init/pg-meta", workflows.NodeInitName, map[string]string{cl: "pg-meta", rb: "node-init", st: workflows.PhaseRunning}),
			listedRun("odd", workflows.PITRRestoreName, map[string]string{cl: "pg-x"})},
	}}
	runs, err := (&Client{C: l}).OpenRuns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []OpenRun{
		{WorkflowID: "switchover/pg-test", Runbook: "switchover", Cluster: "pg-test", Phase: workflows.PhaseWaitingForApproval},
		{WorkflowID: "node-init/pg-meta", Runbook: "node-init", Cluster: "pg-meta", Phase: workflows.PhaseRunning},
		{WorkflowID: "odd", Runbook: workflows.PITRRestoreName, Cluster: "pg-x"}, // no Runbook attribute: the workflow type
	}
	if fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Errorf("runs\n %v\nwant\n %v", runs, want)
	}
	if !runs[0].WaitingForApproval() || runs[1].WaitingForApproval() {
		t.Error("WaitingForApproval")
	}
	if len(l.reqs) != 2 || string(l.reqs[1].NextPageToken) != "page-1" {
		t.Fatalf("requests: %v", l.reqs)
	}
	if q := l.reqs[0].Query; !strings.Contains(q, "ExecutionStatus = 'Running'") || !strings.Contains(q, "PgCluster IS NOT NULL") {
		t.Errorf("query %q: want open pigwf runs", q)
	}
}

func TestOpenRunsError(t *testing.T) {
	l := &listClient{err: errors.New("unavailable")}
	if _, err := (&Client{C: l}).OpenRuns(context.Background()); err == nil || !strings.Contains(err.Error(), "while listing open runs: unavailable") {
		t.Fatalf("err = %v", err)
	}
}
