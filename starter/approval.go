package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/workflows"
)

// Decide sends an approval decision as the run's validated Update: the answer (accepted, or
// refused with the reason) comes back at once, with the run's page. With key, the decision is
// first signed for the run open under id (its run ID found by describing it) and sent to that run
// only, so a signature never reaches another run.
func (c *Client) Decide(ctx context.Context, id string, d workflows.ApprovalDecision, key *approval.Key) (chatops.Decided, error) {
	runID, err := c.bind(ctx, id, &d, key)
	if err != nil {
		return chatops.Decided{}, err
	}
	h, err := c.C.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, RunID: runID, UpdateName: workflows.ApproveUpdate, Args: []any{d}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return chatops.Decided{}, decideError(id, err)
	}
	dec := chatops.Decided{RunURL: c.RunURL(id, h.RunID())}
	if err := h.Get(ctx, &dec.State); err != nil {
		return dec, decideError(id, err)
	}
	return dec, nil
}

func decideError(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &chatops.NotFoundError{WorkflowID: id}
	}
	// The run's own answer comes back as an application failure: its validator's refusal (not an
	// approver, not waiting, not a decision) or, on a run with no approval step (yet), the SDK's
	// unknown-update rejection. Any other error never reached the run's code.
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return &chatops.RefusedError{Reason: app.Message()}
	}
	return fmt.Errorf("while sending the decision to %s: %s", id, rootMessage(err))
}

// SignalDecision sends the decision as the "approve" signal (what the Web UI's "Send a Signal"
// and `temporal workflow signal` do): recorded in the run, with no immediate answer. With key it
// is signed for the open run first, as Decide does; it needs no worker up.
func (c *Client) SignalDecision(ctx context.Context, id string, d workflows.ApprovalDecision, key *approval.Key) error {
	runID, err := c.bind(ctx, id, &d, key)
	if err != nil {
		return err
	}
	if err := c.C.SignalWorkflow(ctx, id, runID, workflows.ApproveSignal, d); err != nil {
		return fmt.Errorf("while signalling %s: %s", id, rootMessage(err))
	}
	return nil
}

// bind finds the run open under id and, with key, signs d for it; "" (any run) without a key.
func (c *Client) bind(ctx context.Context, id string, d *workflows.ApprovalDecision, key *approval.Key) (string, error) {
	if key == nil {
		return "", nil
	}
	desc, err := c.C.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "", &chatops.NotFoundError{WorkflowID: id}
	}
	if err != nil {
		return "", fmt.Errorf("while finding the run %s: %s", id, rootMessage(err))
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", &chatops.NotFoundError{WorkflowID: id}
	}
	runID := info.GetExecution().GetRunId()
	if err := approval.Sign(d, *key, id, runID, time.Now()); err != nil {
		return "", err
	}
	return runID, nil
}

// SignRequest sends the requester's signed request to the run just started (id, runID): the
// worker believes who asked for a run only from this, and four eyes depends on it.
func (c *Client) SignRequest(ctx context.Context, id, runID string, key approval.Key) error {
	d := workflows.ApprovalDecision{Decision: approval.Request, Approver: key.Name}
	if err := approval.Sign(&d, key, id, runID, time.Now()); err != nil {
		return err
	}
	if err := c.C.SignalWorkflow(ctx, id, runID, workflows.RequestSignal, d); err != nil {
		return fmt.Errorf("while sending the signed request to %s: %s", id, rootMessage(err))
	}
	return nil
}

// Pending is a run waiting for a decision.
type Pending struct {
	WorkflowID string
	RunID      string
	Runbook    string // "switchover"
	State      workflows.ApprovalState
	WebURL     string // the run's page; "" when the client has no Web UI configured
}

// PendingApprovals lists running pigwf runs whose approval query says they are waiting.
func (c *Client) PendingApprovals(ctx context.Context) ([]Pending, error) {
	resp, err := c.C.ListWorkflow(ctx, workflowListRequest{}.proto())
	if err != nil {
		return nil, fmt.Errorf("while listing running runs: %w", err)
	}
	var out []Pending
	for _, e := range resp.Executions {
		if e.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		if p, ok := c.pending(ctx, e.Execution.WorkflowId, e.Execution.RunId, runbookOf(e)); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// pending asks a run whether it is waiting for a decision (runbooks without an approval step do
// not answer, nor does a run when no worker is up: then it is not known to be waiting).
func (c *Client) pending(ctx context.Context, id, runID, runbook string) (Pending, bool) {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	val, err := c.C.QueryWorkflow(qctx, id, runID, workflows.ApprovalQuery)
	if err != nil {
		return Pending{}, false
	}
	var st workflows.ApprovalState
	if val.Get(&st) != nil || !st.Waiting {
		return Pending{}, false
	}
	return Pending{WorkflowID: id, RunID: runID, Runbook: runbook, State: st, WebURL: c.RunURL(id, runID)}, true
}

// Status is a one-paragraph status for chat, with the run's page.
func (c *Client) Status(ctx context.Context, id string) (chatops.Report, error) {
	st, err := c.Describe(ctx, id, "")
	if err != nil {
		var nr *RunNotFoundError
		if errors.As(err, &nr) {
			return chatops.Report{}, &chatops.NotFoundError{WorkflowID: id}
		}
		return chatops.Report{}, err
	}
	out := fmt.Sprintf("%s (%s) is %s", id, st.Type, st.State)
	if st.Progress != nil {
		out += ", phase " + st.Progress.Phase
	}
	if st.Failure != "" {
		out += ": " + st.Failure
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if val, err := c.C.QueryWorkflow(qctx, id, st.RunID, workflows.ApprovalQuery); err == nil {
		var ap workflows.ApprovalState
		if val.Get(&ap) == nil && ap.Plan != "" {
			out += "; " + ap.Summary() + "; plan: " + ap.Plan
		}
	}
	return chatops.Report{Text: out, RunURL: st.WebURL}, nil
}

// runbookOf is a listed run's runbook, from its Runbook search attribute (the workflow type when
// the attribute cannot be read).
func runbookOf(e *workflowpb.WorkflowExecutionInfo) string {
	if rb := keywordOf(e, workflows.SearchAttrRunbook.GetName()); rb != "" {
		return rb
	}
	return e.GetType().GetName()
}
