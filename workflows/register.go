package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// TaskQueue is where pigwf workers poll.
const TaskQueue = "pigwf"

// Search attributes every pigwf workflow sets, so runs can be found in the Web UI by cluster
// and runbook: PgCluster = "pg-test" AND Runbook = "node-init".
var (
	SearchAttrCluster = temporal.NewSearchAttributeKeyKeyword("PgCluster")
	SearchAttrRunbook = temporal.NewSearchAttributeKeyKeyword("Runbook")
)

// setSearchAttributes records cluster and runbook on the run (the starter sets them too; this
// makes runs started any other way, e.g. `temporal workflow start`, findable as well).
func setSearchAttributes(ctx workflow.Context, runbook, cluster string) error {
	return workflow.UpsertTypedSearchAttributes(ctx, SearchAttrCluster.ValueSet(cluster), SearchAttrRunbook.ValueSet(runbook))
}

// Registry is the part of a worker (or replayer) that workflows are registered on.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every pigwf workflow under its stable name. Workers and the replay tests
// both use it, so a replay always exercises exactly what the worker runs.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(NodeInit, workflowOpts(NodeInitName))
	r.RegisterWorkflowWithOptions(PgClusterCreate, workflowOpts(PgClusterCreateName))
	r.RegisterWorkflowWithOptions(Switchover, workflowOpts(SwitchoverName))
}

func workflowOpts(name string) workflow.RegisterOptions { return workflow.RegisterOptions{Name: name} }
