package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pigwf/pigwf/workflows"
)

// `pigwf audit`: every run on a cluster, as Temporal keeps it, one JSON object per run: what ran,
// who asked, every step and how it ended, every approval decision the run received and how the
// worker verified it. The runs come from visibility (the PgCluster search attribute), the rest
// from each run's history, so it needs no worker and shows closed runs as long as the namespace
// keeps them (its retention). These types are the export's wire contract: one home, here.

// AuditRun is one run.
type AuditRun struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Runbook    string `json:"runbook"`
	Cluster    string `json:"cluster"`
	// Type is the workflow type (PgBackup); Runbook the runbook's name (pg-backup).
	Type   string `json:"type"`
	Status string `json:"status"` // running, completed, failed, canceled, terminated, timed out
	// Parent is the run that started this one as its child ("" for a run by hand or a schedule).
	Parent  string    `json:"parent,omitempty"`
	Started time.Time `json:"started"`
	Closed  time.Time `json:"closed,omitzero"`
	// RequestedBy is the requester the run's input names (what `pigwf start --as` said).
	RequestedBy string `json:"requested_by,omitempty"`
	// RequesterVerified is the requester as the worker verified their signed request ("" when
	// no request was verified: none sent, or a run from before verified approvals).
	RequesterVerified string `json:"requester_verified,omitempty"`
	// StartedBy is the Temporal client identity that started the run (the CLI, a schedule).
	StartedBy string `json:"started_by,omitempty"`
	// Error is why a run that did not complete ended: its error type and message, or the
	// termination's reason.
	Error     *AuditError     `json:"error,omitempty"`
	Steps     []AuditStep     `json:"steps"`
	Children  []AuditChild    `json:"children,omitempty"`
	Approvals []AuditApproval `json:"approvals"`
}

// AuditError is how a run or a step failed.
type AuditError struct {
	Type    string `json:"type,omitempty"`
	Message string `json:"message"`
}

// Step states in an audit: a step's activity ended changed, unchanged or failed; one still
// running (or retrying) is running.
const (
	AuditChanged   = "changed"
	AuditUnchanged = "unchanged"
	AuditFailed    = "failed"
	AuditRunning   = "running"
	AuditCanceled  = "canceled"
	// AuditUnfinished: the run ended (terminated, say) while the step ran or was retried.
	AuditUnfinished = "unfinished"
)

// AuditStep is one step of a run: one activity (with all its attempts).
type AuditStep struct {
	ID        string      `json:"id"`             // the activity ID: <node>/<step> or control/<step>
	Node      string      `json:"node,omitempty"` // "" for a control-side step
	Step      string      `json:"step"`
	Activity  string      `json:"activity"` // the activity type
	State     string      `json:"state"`    // changed, unchanged, failed, running, canceled
	Attempts  int32       `json:"attempts,omitempty"`
	Scheduled time.Time   `json:"scheduled"`
	Ended     time.Time   `json:"ended,omitzero"`
	Changes   []string    `json:"changes,omitempty"` // what a changed step says it changed
	Error     *AuditError `json:"error,omitempty"`
}

// AuditChild is a child run the run started (pg-restart's switchover, the cluster's lock).
type AuditChild struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	Type       string `json:"type"`
	// Status: started, completed, failed, canceled, terminated, timed out, or "not started"
	// (another run held its ID: the cluster's lock, say).
	Status string `json:"status"`
}

// AuditApproval is one approval decision (or the requester's signed request) a run received,
// and what the worker's verification said of it.
type AuditApproval struct {
	Kind     string    `json:"kind"`     // decision | request
	Decision string    `json:"decision"` // approve | reject | request
	Approver string    `json:"approver"` // who the decision names
	Comment  string    `json:"comment,omitempty"`
	Signer   string    `json:"signer,omitempty"` // whose key signed it (the approver's, or a trusted signer's such as chatops)
	SignedAt time.Time `json:"signed_at,omitzero"`
	Received time.Time `json:"received"`
	Via      string    `json:"via"`                   // signal | update
	SentBy   string    `json:"sent_by,omitempty"`     // the Temporal client identity that sent it
	Verified *bool     `json:"verified,omitempty"`    // the worker's verification (absent: not verified: screened out, or a run from before verified approvals)
	Identity string    `json:"identity,omitempty"`    // who the verification proved
	VerifyBy string    `json:"verified_by,omitempty"` // how: which key or trusted signer
	Reason   string    `json:"reason,omitempty"`      // why the verification refused it, or why the run did not take it
	// Taken is, for an Update, whether the run took the decision (its answer); absent for a
	// signal, which gets no answer (the run's result says what counted).
	Taken *bool `json:"taken,omitempty"`
}

// AuditSince reads --since: a duration back from now (24h, 90m) or an RFC 3339 time; "" is no
// bound.
func AuditSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %s: give a positive duration (24h) or a time", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %s: give a duration back from now (24h, 90m) or an RFC 3339 time with its zone (2026-12-01T00:00:00Z)", s)
	}
	return t, nil
}

// auditSource is what the audit reads of Temporal: the visibility list and run histories
// (client.Client has both).
type auditSource interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool, filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// auditPage is how many runs one visibility page lists.
const auditPage = 200

// Audit calls emit with every run on cluster that started at or after since (zero: any), in
// visibility's order (newest first), page by page. It stops at emit's first error.
func (c *Client) Audit(ctx context.Context, cluster string, since time.Time, emit func(AuditRun) error) error {
	return audit(ctx, c.C, cluster, since, emit)
}

func audit(ctx context.Context, src auditSource, cluster string, since time.Time, emit func(AuditRun) error) error {
	if cluster == "" {
		return errors.New("audit needs --cluster")
	}
	req := workflowListRequest{cluster: cluster, all: true, limit: auditPage, since: since}.proto()
	for {
		resp, err := src.ListWorkflow(ctx, req)
		if err != nil {
			return fmt.Errorf("while listing the runs of %s: %w", cluster, err)
		}
		for _, e := range resp.Executions {
			events, err := runHistory(ctx, src, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				return err
			}
			run, err := AuditRunOf(e, events)
			if err != nil {
				return err
			}
			if err := emit(run); err != nil {
				return err
			}
		}
		if len(resp.NextPageToken) == 0 {
			return nil
		}
		req.NextPageToken = resp.NextPageToken
	}
}

// runHistory reads one run's whole history.
func runHistory(ctx context.Context, src auditSource, id, runID string) ([]*historypb.HistoryEvent, error) {
	iter := src.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return nil, fmt.Errorf("while reading the history of %s (run %s): %w", id, runID, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// AuditRunOf assembles one run's record from its visibility entry and its history.
func AuditRunOf(e *workflowpb.WorkflowExecutionInfo, events []*historypb.HistoryEvent) (AuditRun, error) {
	r := AuditRun{
		WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
		Runbook: runbookOf(e), Cluster: keywordOf(e, workflows.SearchAttrCluster.GetName()),
		Type: e.GetType().GetName(), Status: stateName(e.GetStatus()),
		Started: e.GetStartTime().AsTime(), Steps: []AuditStep{}, Approvals: []AuditApproval{},
	}
	if e.GetCloseTime() != nil {
		r.Closed = e.GetCloseTime().AsTime()
	}
	if p := e.GetParentExecution(); p != nil {
		r.Parent = p.GetWorkflowId()
	}
	if err := (&historyReader{run: &r}).read(events); err != nil {
		return r, fmt.Errorf("while reading the history of %s (run %s): %w", r.WorkflowID, r.RunID, err)
	}
	if e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		for i := range r.Steps {
			if r.Steps[i].State == AuditRunning {
				r.Steps[i].State = AuditUnfinished
			}
		}
	}
	return r, nil
}

// Text is the run's record for people: a header line, then its steps and approvals indented.
func (r AuditRun) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %s  started %s", r.WorkflowID, r.Runbook, r.Status, r.Started.Local().Format(time.RFC3339))
	if !r.Closed.IsZero() {
		fmt.Fprintf(&b, ", closed %s", r.Closed.Local().Format(time.RFC3339))
	}
	if who := orDash(r.RequesterVerified, r.RequestedBy); who != "-" {
		fmt.Fprintf(&b, ", requested by %s", who)
		if r.RequesterVerified == "" {
			b.WriteString(" (unverified)")
		}
	}
	b.WriteString("\n")
	if r.Error != nil {
		fmt.Fprintf(&b, "  error: %s\n", r.Error.Message)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %-10s %s\n", s.State, s.ID)
	}
	for _, c := range r.Children {
		fmt.Fprintf(&b, "  child run  %s (%s): %s\n", c.WorkflowID, c.Type, c.Status)
	}
	for _, a := range r.Approvals {
		v := "not verified"
		if a.Verified != nil && *a.Verified {
			v = "verified: " + a.Identity + " by " + a.VerifyBy
		} else if a.Reason != "" {
			v = "not taken: " + a.Reason
		}
		fmt.Fprintf(&b, "  %s %s by %s at %s (%s; %s)\n", a.Kind, a.Decision, a.Approver, a.Received.Local().Format(time.RFC3339), a.Via, v)
	}
	return b.String()
}

// orDash is the first of vals not empty, else "-".
func orDash(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return "-"
}
