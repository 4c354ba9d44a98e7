package starter

import (
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/workflows"
)

// What a run's history says, for its audit record: the input's requester, each step's activity
// and how it ended, the approval decisions that came as signals or Updates, the worker's
// verification of each (the VerifyApproval activity: its input names the decision, its result
// the verdict), the child runs, and how the run ended.

// Activity types that are the approval gate's own machinery, not steps of the runbook.
var gateActivities = map[string]bool{"VerifyApproval": true, "ApprovalPolicy": true, "Notify": true}

// historyReader fills run from its events, in order.
type historyReader struct {
	run      *AuditRun
	steps    map[int64]int // an activity's scheduled event ID → its step
	verifies map[int64]int // a VerifyApproval's scheduled event ID → the approval it verifies
	children map[int64]int // a child's initiated event ID → the child
	updates  map[string]int
	keys     []approval.Decision // the decision behind each of run.Approvals, to match verifications
}

func (h *historyReader) read(events []*historypb.HistoryEvent) error {
	h.steps, h.verifies, h.children, h.updates = map[int64]int{}, map[int64]int{}, map[int64]int{}, map[string]int{}
	for _, ev := range events {
		if err := h.event(ev); err != nil {
			return err
		}
	}
	return nil
}

func (h *historyReader) event(ev *historypb.HistoryEvent) error {
	r := h.run
	at := ev.GetEventTime().AsTime()
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		a := ev.GetWorkflowExecutionStartedEventAttributes()
		r.StartedBy = a.GetIdentity()
		var in struct {
			RequestedBy string `json:"requested_by"`
		}
		if decode(a.GetInput(), &in) {
			r.RequestedBy = in.RequestedBy
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		a := ev.GetActivityTaskScheduledEventAttributes()
		typ := a.GetActivityType().GetName()
		if typ == "VerifyApproval" {
			var in activities.VerifyApprovalInput
			if decode(a.GetInput(), &in) {
				h.verifies[ev.GetEventId()] = h.approvalFor(in.Decision, at)
			}
		}
		if gateActivities[typ] {
			return nil
		}
		node, name, ok := strings.Cut(a.GetActivityId(), "/")
		if !ok { // not a runbook step (they all have IDs <node>/<step>)
			return nil
		}
		if node == "control" {
			node = ""
		}
		h.steps[ev.GetEventId()] = len(r.Steps)
		r.Steps = append(r.Steps, AuditStep{ID: a.GetActivityId(), Node: node, Step: name, Activity: typ, State: AuditRunning, Scheduled: at})
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		a := ev.GetActivityTaskStartedEventAttributes()
		if s := h.step(a.GetScheduledEventId()); s != nil {
			s.Attempts = a.GetAttempt()
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		a := ev.GetActivityTaskCompletedEventAttributes()
		if i, ok := h.verifies[a.GetScheduledEventId()]; ok {
			var v approval.Verdict
			if decode(a.GetResult(), &v) {
				h.verdict(i, v)
			}
		}
		if s := h.step(a.GetScheduledEventId()); s != nil {
			var res activities.StepResult
			s.State, s.Ended = AuditUnchanged, at
			if decode(a.GetResult(), &res) && res.Changed {
				s.State, s.Changes = AuditChanged, res.Changes
			}
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		a := ev.GetActivityTaskFailedEventAttributes()
		h.activityFailed(a.GetScheduledEventId(), at, errorOf(a.GetFailure()))
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		a := ev.GetActivityTaskTimedOutEventAttributes()
		h.activityFailed(a.GetScheduledEventId(), at, errorOf(a.GetFailure()))
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
		if s := h.step(ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()); s != nil {
			s.State, s.Ended = AuditCanceled, at
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if a.GetSignalName() != workflows.ApproveSignal && a.GetSignalName() != workflows.RequestSignal {
			return nil
		}
		var d approval.Decision
		if decode(a.GetInput(), &d) {
			h.received(d, at, "signal", a.GetIdentity())
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
		req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
		if req.GetInput().GetName() != workflows.ApproveUpdate {
			return nil
		}
		var d approval.Decision
		if decode(req.GetInput().GetArgs(), &d) {
			h.updates[req.GetMeta().GetUpdateId()] = h.received(d, at, "update", req.GetMeta().GetIdentity())
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
		a := ev.GetWorkflowExecutionUpdateCompletedEventAttributes()
		i, ok := h.updates[a.GetMeta().GetUpdateId()]
		if !ok {
			return nil
		}
		taken := a.GetOutcome().GetFailure() == nil
		r.Approvals[i].Taken = &taken
		if !taken && r.Approvals[i].Reason == "" {
			r.Approvals[i].Reason = a.GetOutcome().GetFailure().GetMessage()
		}
	case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
		a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes()
		h.children[ev.GetEventId()] = len(r.Children)
		r.Children = append(r.Children, AuditChild{WorkflowID: a.GetWorkflowId(), Type: a.GetWorkflowType().GetName(), Status: "initiated"})
	case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
		h.childStatus(ev.GetStartChildWorkflowExecutionFailedEventAttributes().GetInitiatedEventId(), "not started")
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
		a := ev.GetChildWorkflowExecutionStartedEventAttributes()
		if c := h.child(a.GetInitiatedEventId()); c != nil {
			c.RunID, c.Status = a.GetWorkflowExecution().GetRunId(), "started"
		}
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
		h.childStatus(ev.GetChildWorkflowExecutionCompletedEventAttributes().GetInitiatedEventId(), "completed")
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
		h.childStatus(ev.GetChildWorkflowExecutionFailedEventAttributes().GetInitiatedEventId(), "failed")
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED:
		h.childStatus(ev.GetChildWorkflowExecutionCanceledEventAttributes().GetInitiatedEventId(), "canceled")
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
		h.childStatus(ev.GetChildWorkflowExecutionTimedOutEventAttributes().GetInitiatedEventId(), "timed out")
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
		h.childStatus(ev.GetChildWorkflowExecutionTerminatedEventAttributes().GetInitiatedEventId(), "terminated")
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		r.Error = errorOf(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
		r.Error = &AuditError{Type: "terminated", Message: ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		r.Error = &AuditError{Type: "timed out", Message: "the run timed out"}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
		r.Error = &AuditError{Type: "canceled", Message: "the run was canceled"}
	}
	return nil
}

// received records a decision the run received; its index among the run's approvals.
func (h *historyReader) received(d approval.Decision, at time.Time, via, identity string) int {
	kind := "decision"
	if d.Decision == approval.Request {
		kind = "request"
	}
	h.run.Approvals = append(h.run.Approvals, AuditApproval{Kind: kind, Decision: d.Decision, Approver: d.Approver, Comment: d.Comment,
		Signer: d.Signer, SignedAt: d.SignedAt, Received: at, Via: via, SentBy: identity})
	h.keys = append(h.keys, d)
	return len(h.run.Approvals) - 1
}

// approvalFor is the approval a verification is of: the first received one with the same signed
// content and no verdict yet; a decision the run did not receive itself (its parent's request,
// passed on) is added as received from the parent.
func (h *historyReader) approvalFor(d approval.Decision, at time.Time) int {
	for i, k := range h.keys {
		if sameDecision(k, d) && h.run.Approvals[i].Verified == nil {
			return i
		}
	}
	return h.received(d, at, "parent run", "")
}

// verdict records the worker's verification of approval i; a verified request proves the run's
// requester.
func (h *historyReader) verdict(i int, v approval.Verdict) {
	a := &h.run.Approvals[i]
	ok := v.Verified
	a.Verified, a.Identity, a.VerifyBy = &ok, v.Identity, v.Via
	if !ok {
		a.Reason = v.Reason
	}
	if ok && a.Kind == "request" && h.run.RequesterVerified == "" {
		h.run.RequesterVerified = v.Identity
	}
}

func (h *historyReader) activityFailed(scheduled int64, at time.Time, e *AuditError) {
	if i, ok := h.verifies[scheduled]; ok {
		no := false
		h.run.Approvals[i].Verified, h.run.Approvals[i].Reason = &no, "the verification failed: "+e.Message
	}
	if s := h.step(scheduled); s != nil {
		s.State, s.Ended, s.Error = AuditFailed, at, e
	}
}

func (h *historyReader) step(scheduled int64) *AuditStep {
	if i, ok := h.steps[scheduled]; ok {
		return &h.run.Steps[i]
	}
	return nil
}

func (h *historyReader) child(initiated int64) *AuditChild {
	if i, ok := h.children[initiated]; ok {
		return &h.run.Children[i]
	}
	return nil
}

func (h *historyReader) childStatus(initiated int64, status string) {
	if c := h.child(initiated); c != nil {
		c.Status = status
	}
}

// errorOf is a failure's type (an application error's) and message.
func errorOf(f *failurepb.Failure) *AuditError {
	return &AuditError{Type: f.GetApplicationFailureInfo().GetType(), Message: f.GetMessage()}
}

// decode reads the first payload into v; false when there is none or it does not decode.
func decode(p *commonpb.Payloads, v any) bool {
	if len(p.GetPayloads()) == 0 {
		return false
	}
	return converter.GetDefaultDataConverter().FromPayload(p.GetPayloads()[0], v) == nil
}

// sameDecision: the same signed content (a verification's input is the decision as received).
func sameDecision(a, b approval.Decision) bool {
	return a.Decision == b.Decision && a.Approver == b.Approver && a.Comment == b.Comment && a.WorkflowID == b.WorkflowID &&
		a.RunID == b.RunID && a.Signer == b.Signer && a.SignedAt.Equal(b.SignedAt) && a.Signature == b.Signature
}
