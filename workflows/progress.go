package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
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

// Phases of a run shown to users.
const (
	PhaseRunning            = "running"
	PhaseWaitingForApproval = "waiting for approval"
	PhaseDone               = "done"
	PhaseFailed             = "failed"
)

// Progress is a runbook's live state: what each step on each node is doing or did.
type Progress struct {
	Runbook string      `json:"runbook"`
	Name    string      `json:"name,omitempty"` // a custom runbook's own name (RunbookRunbook runs)
	Cluster string      `json:"cluster"`
	Phase   string      `json:"phase"` // running, waiting for approval, done, failed
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

// tracker holds a run's Progress and answers the progress query with it. Runbooks change it only
// through its methods and runStep, so what a user sees of a run is decided here.
type tracker struct {
	ctx     workflow.Context
	p       Progress
	console workflow.Version // what the run shows in the Web UI (console.go)
	waiting *awaiting        // set while the run waits for a person
}

func newTracker(ctx workflow.Context, runbook, cluster string) (*tracker, error) {
	t := &tracker{ctx: ctx, p: Progress{Runbook: runbook, Cluster: cluster, Phase: PhaseRunning}}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return t.p, nil }); err != nil {
		return t, err
	}
	t.startConsole()
	return t, nil
}

// plan lists steps as pending, in the order given.
func (t *tracker) plan(steps ...step) {
	for _, s := range steps {
		t.p.Steps = append(t.p.Steps, StepState{Node: s.node, Step: s.name, State: StatePending, Updated: workflow.Now(t.ctx)})
	}
	t.render()
}

// add lists s as pending right after the row of after, unless s is listed already: a step
// whose members the run learns as it goes (a custom runbook's). Callers add a group of rows in
// order, each after the one before.
func (t *tracker) add(after, s step) {
	at := len(t.p.Steps) - 1
	for i, st := range t.p.Steps {
		if st.Node == s.node && st.Step == s.name {
			return
		}
		if st.Node == after.node && st.Step == after.name {
			at = i
		}
	}
	row := StepState{Node: s.node, Step: s.name, State: StatePending, Updated: workflow.Now(t.ctx)}
	t.p.Steps = append(t.p.Steps[:at+1], append([]StepState{row}, t.p.Steps[at+1:]...)...)
	t.render()
}

// ensure lists the steps not listed yet as pending, at the end in order: a build planned again
// around a new leader (its steps on the new primary).
func (t *tracker) ensure(steps ...step) {
	for _, s := range steps {
		if !slices.ContainsFunc(t.p.Steps, func(st StepState) bool { return st.Node == s.node && st.Step == s.name }) {
			t.p.Steps = append(t.p.Steps, StepState{Node: s.node, Step: s.name, State: StatePending, Updated: workflow.Now(t.ctx)})
		}
	}
	t.render()
}

// supersedeFailed marks every failed step skipped, its failure kept in its detail after why:
// the run went on past them (a build that followed a new leader), so they no longer fail it.
func (t *tracker) supersedeFailed(why string) {
	for i := range t.p.Steps {
		if st := &t.p.Steps[i]; st.State == StateFailed {
			st.State, st.Detail, st.Updated = StateSkipped, why+" (it had failed: "+st.Detail+")", workflow.Now(t.ctx)
		}
	}
	t.render()
}

// set records a planned step's state and detail.
func (t *tracker) set(s step, state, detail string) {
	for i := range t.p.Steps {
		if t.p.Steps[i].Node == s.node && t.p.Steps[i].Step == s.name {
			t.p.Steps[i].State, t.p.Steps[i].Detail, t.p.Steps[i].Updated = state, detail, workflow.Now(t.ctx)
			break
		}
	}
	t.render()
}

// skipPending marks the steps a failing run did not reach as skipped.
func (t *tracker) skipPending() {
	for _, s := range t.p.Steps {
		if s.State == StatePending {
			t.set(step{node: s.Node, name: s.Step}, StateSkipped, "not reached")
		}
	}
}

// setPhase records the run's phase, in its progress, its RunState and its Current Details.
func (t *tracker) setPhase(phase string) {
	changed := phase != t.p.Phase
	t.p.Phase = phase
	if changed {
		t.upsertState()
	}
	t.render()
}

// fail ends the run: the phase becomes failed and the returned error, non-retryable, carries
// details (the run's result so far) so clients still see what was done.
func (t *tracker) fail(msg, errType string, details any) error {
	t.setPhase(PhaseFailed)
	return temporal.NewNonRetryableApplicationError(msg, errType, nil, details)
}
