package workflows

import (
	"go.temporal.io/sdk/workflow"
)

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
