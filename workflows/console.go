package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// The Web UI is the runbook console: a run's page shows its Current Details (the step running
// now, every step's state, and while it waits for a person: the plan, the approvers, the deadline
// and how to approve), and the RunState search attribute lets the run list be filtered by phase.
// What a user sees of a run is rendered here, from the tracker's state, and nowhere else.

// consoleChange is the GetVersion change ID of the run's RunState upserts. Current Details are not
// part of a run's history (the server asks the worker for them), so only the upserts, which are
// commands, are versioned; runs recorded before the change replay without them.
const consoleChange = "console-run-state"

// consoleVersion is the console's version for runs that start now.
const consoleVersion workflow.Version = 1

// startConsole fixes the run's console version and, in a run of this version, marks it running
// (the starter sets RunState too; this covers runs started any other way).
func (t *tracker) startConsole() {
	t.console = workflow.GetVersion(t.ctx, consoleChange, workflow.DefaultVersion, consoleVersion)
	t.upsertState()
	t.render()
}

// upsertState records the run's phase in RunState, in runs of a console version that has it.
func (t *tracker) upsertState() {
	if t.console < consoleVersion {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(t.ctx, SearchAttrState.ValueSet(t.p.Phase)); err != nil {
		workflow.GetLogger(t.ctx).Warn("could not record the run's state", "state", t.p.Phase, "err", err)
	}
}

// awaiting is what a run waiting for a person shows: enough to decide and to act.
type awaiting struct {
	plan      string
	approvers []string
	policy    string // the worker's policy in words (approval.Policy.Describe); "" in runs from before it
	deadline  time.Time
}

// render sets the run's Current Details (Markdown) from its progress.
func (t *tracker) render() {
	workflow.SetCurrentDetails(t.ctx, t.details())
}

// details is the Markdown of the run's Current Details.
func (t *tracker) details() string {
	var b strings.Builder
	title := t.p.Runbook
	if t.p.Name != "" {
		title += " " + t.p.Name
	}
	fmt.Fprintf(&b, "## %s %s: %s\n\n", title, t.p.Cluster, t.p.Phase)
	if w := t.waiting; w != nil && t.p.Phase == PhaseWaitingForApproval {
		id := workflow.GetInfo(t.ctx).WorkflowExecution.ID
		fmt.Fprintf(&b, "**Waiting for approval** until %s.\n\n", w.deadline.UTC().Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(&b, "**Plan:** %s\n\n", w.plan)
		if w.policy != "" {
			fmt.Fprintf(&b, "**Approvers:** %s (the worker's approvals policy)\n\n", w.policy)
		} else {
			fmt.Fprintf(&b, "**Approvers:** %s\n\n", strings.Join(w.approvers, ", "))
		}
		fmt.Fprintf(&b, "**Approve:** `%s [--comment TEXT]` (reject: add `--reject`), or in chat `%s [comment]`\n\n",
			ApproveCommand(id), ChatApproveCommand(id))
	}
	if now := t.running(); len(now) > 0 {
		fmt.Fprintf(&b, "**Now:** %s\n\n", strings.Join(now, "; "))
	}
	if len(t.p.Steps) > 0 {
		b.WriteString("| node | step | state | detail |\n|---|---|---|---|\n")
		for _, s := range t.p.Steps {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(orDefault(s.Node, "-")), cell(s.Step), s.State, cell(s.Detail))
		}
	}
	return b.String()
}

// running lists the steps running now as "node: step".
func (t *tracker) running() []string {
	var now []string
	for _, s := range t.p.Steps {
		if s.State == StateRunning {
			now = append(now, strings.TrimPrefix(orDefault(s.Node, "")+": "+s.Step, ": "))
		}
	}
	return now
}

// cell keeps a value on one line of a Markdown table.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.Join(strings.Fields(s), " ")
}
