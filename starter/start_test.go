package starter_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// Start gives the run its meta: the static summary and details the Web UI shows on the run's
// page, and the search attributes its list filters on and shows (RunState, RunSummary).
func TestStartSetsTheRunsMeta(t *testing.T) {
	c := temporalServer(t)
	c.TaskQueue = "starter-meta-test"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := worker.New(c.C, c.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(noApprovalStep, workflow.RegisterOptions{Name: "MetaTest"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	meta := starter.RunMeta{Summary: "switchover pg-meta: pg-meta-1 → pg-meta-2, requested by alice", Details: "**switchover** of **pg-meta**"}
	run, err := c.Start(ctx, "switchover", "MetaTest", "pg-meta", nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.C.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	dc := converter.GetDefaultDataConverter()
	var summary, details string
	um := d.GetExecutionConfig().GetUserMetadata()
	if err := dc.FromPayload(um.GetSummary(), &summary); err != nil || summary != meta.Summary {
		t.Errorf("static summary %q (%v)", summary, err)
	}
	if err := dc.FromPayload(um.GetDetails(), &details); err != nil || details != meta.Details {
		t.Errorf("static details %q (%v)", details, err)
	}
	attrs := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for name, want := range map[string]string{
		workflows.SearchAttrCluster.GetName(): "pg-meta", workflows.SearchAttrRunbook.GetName(): "switchover",
		workflows.SearchAttrState.GetName(): workflows.PhaseRunning, workflows.SearchAttrSummary.GetName(): "switchover pg-meta — pg-meta-1 → pg-meta-2, requested by alice",
	} {
		var got string
		if err := dc.FromPayload(attrs[name], &got); err != nil || got != want {
			t.Errorf("search attribute %s = %q (%v), want %q", name, got, err, want)
		}
	}
}
