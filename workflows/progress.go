// Package workflows holds pigwf's runbooks as deterministic Temporal workflows, one file each.
//
// Rules here: time comes from workflow.Now, concurrency from workflow.Go, iteration over maps
// only through sorted keys; every logic change to a released workflow goes behind
// workflow.GetVersion and the replay tests in replaytests/ guard it.
package workflows

import (
	"errors"
	"time"

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

// ProgressQuery is the query name every runbook answers with its Progress.
const ProgressQuery = "progress"

// Step states shown to users.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateChanged   = "changed"
	StateUnchanged = "unchanged"
	StateFailed    = "failed"
	StateSkipped   = "skipped"
)

// Progress is a runbook's live state: what each step on each node is doing or did.
type Progress struct {
	Runbook string      `json:"runbook"`
	Cluster string      `json:"cluster"`
	Phase   string      `json:"phase"` // running, done, failed
	Steps   []StepState `json:"steps"`
}

// StepState is one step on one node ("" node for control-side steps).
type StepState struct {
	Node    string    `json:"node"`
	Step    string    `json:"step"`
	State   string    `json:"state"`
	Detail  string    `json:"detail,omitempty"`
	Updated time.Time `json:"updated"`
}

type tracker struct {
	ctx workflow.Context
	p   Progress
}

func newTracker(ctx workflow.Context, runbook, cluster string) (*tracker, error) {
	t := &tracker{ctx: ctx, p: Progress{Runbook: runbook, Cluster: cluster, Phase: "running"}}
	err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return t.p, nil })
	return t, err
}

func (t *tracker) add(node, step string) {
	t.p.Steps = append(t.p.Steps, StepState{Node: node, Step: step, State: StatePending, Updated: workflow.Now(t.ctx)})
}

func (t *tracker) set(node, step, state, detail string) {
	for i := range t.p.Steps {
		if t.p.Steps[i].Node == node && t.p.Steps[i].Step == step {
			t.p.Steps[i].State, t.p.Steps[i].Detail, t.p.Steps[i].Updated = state, detail, workflow.Now(t.ctx)
			return
		}
	}
}

// setSearchAttributes records cluster and runbook on the run (the starter sets them too; this
// makes runs started any other way, e.g. `temporal workflow start`, findable as well).
func setSearchAttributes(ctx workflow.Context, runbook, cluster string) error {
	return workflow.UpsertTypedSearchAttributes(ctx, SearchAttrCluster.ValueSet(cluster), SearchAttrRunbook.ValueSet(runbook))
}

// failureMessage is the innermost application message of an activity failure: what the
// activity said, without Temporal's wrapping.
func failureMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timed out (" + to.TimeoutType().String() + ")"
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "canceled"
	}
	return err.Error()
}
