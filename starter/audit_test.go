package starter

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	updatepb "go.temporal.io/api/update/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/workflows"
)

var auditT0 = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

func payloadsOf(t *testing.T, v any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events numbers the events and times them a second apart from auditT0.
func events(evs ...*historypb.HistoryEvent) []*historypb.HistoryEvent {
	for i, e := range evs {
		e.EventId = int64(i + 1)
		e.EventTime = timestamppb.New(auditT0.Add(time.Duration(i) * time.Second))
	}
	return evs
}

func ev(typ enumspb.EventType, attrs any) *historypb.HistoryEvent {
	e := &historypb.HistoryEvent{EventType: typ}
	switch a := attrs.(type) {
	case *historypb.WorkflowExecutionStartedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: a}
	case *historypb.ActivityTaskScheduledEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: a}
	case *historypb.ActivityTaskStartedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: a}
	case *historypb.ActivityTaskCompletedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: a}
	case *historypb.ActivityTaskFailedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{ActivityTaskFailedEventAttributes: a}
	case *historypb.WorkflowExecutionSignaledEventAttributes:
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: a}
	case *historypb.WorkflowExecutionUpdateAcceptedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionUpdateAcceptedEventAttributes{WorkflowExecutionUpdateAcceptedEventAttributes: a}
	case *historypb.WorkflowExecutionUpdateCompletedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionUpdateCompletedEventAttributes{WorkflowExecutionUpdateCompletedEventAttributes: a}
	case *historypb.StartChildWorkflowExecutionInitiatedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_StartChildWorkflowExecutionInitiatedEventAttributes{StartChildWorkflowExecutionInitiatedEventAttributes: a}
	case *historypb.ChildWorkflowExecutionStartedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ChildWorkflowExecutionStartedEventAttributes{ChildWorkflowExecutionStartedEventAttributes: a}
	case *historypb.ChildWorkflowExecutionTerminatedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_ChildWorkflowExecutionTerminatedEventAttributes{ChildWorkflowExecutionTerminatedEventAttributes: a}
	case *historypb.StartChildWorkflowExecutionFailedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_StartChildWorkflowExecutionFailedEventAttributes{StartChildWorkflowExecutionFailedEventAttributes: a}
	case *historypb.WorkflowExecutionFailedEventAttributes:
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{WorkflowExecutionFailedEventAttributes: a}
	}
	return e
}

func scheduled(t *testing.T, id, typ string, in any) *historypb.HistoryEvent {
	return ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, &historypb.ActivityTaskScheduledEventAttributes{
		ActivityId: id, ActivityType: &commonpb.ActivityType{Name: typ}, Input: payloadsOf(t, in)})
}

func completed(t *testing.T, sched int64, res any) *historypb.HistoryEvent {
	return ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: sched, Result: payloadsOf(t, res)})
}

func signaled(t *testing.T, name string, d approval.Decision) *historypb.HistoryEvent {
	return ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, &historypb.WorkflowExecutionSignaledEventAttributes{
		SignalName: name, Input: payloadsOf(t, d), Identity: "pigwf@ops-1"})
}

func signedBy(who, decision string) approval.Decision {
	return approval.Decision{Decision: decision, Approver: who, WorkflowID: "pg-member-remove/pg-test", RunID: "r1",
		Signer: who, SignedAt: auditT0, Signature: "c2ln-" + who}
}

// A pg-member-remove run that took the cluster's lock, was requested by carol (a signed
// request), approved by bob through an Update, ignored mallory's signal (no key), and failed at a
// member step.
func memberRemoveHistory(t *testing.T) []*historypb.HistoryEvent {
	verify := func(d approval.Decision) any {
		return activities.VerifyApprovalInput{Decision: d, Run: approval.Run{WorkflowID: "pg-member-remove/pg-test", RunID: "r1"}}
	}
	carol, bob, mallory := signedBy("carol", approval.Request), signedBy("bob", approval.Approve), signedBy("mallory", approval.Approve)
	bob.Comment = "go"
	return events(
		/* 1 */ ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, &historypb.WorkflowExecutionStartedEventAttributes{
			Identity: "pigwf@ops-1", Input: payloadsOf(t, workflows.PgMemberRemoveInput{PgMembersTarget: workflows.PgMembersTarget{Cluster: "pg-test", RequestedBy: "carol"}, Member: "pg-test-3"})}),
		/* 2 */ ev(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, &historypb.StartChildWorkflowExecutionInitiatedEventAttributes{
			WorkflowId: "lock/pg-test", WorkflowType: &commonpb.WorkflowType{Name: workflows.ClusterLockName}}),
		/* 3 */ ev(enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, &historypb.ChildWorkflowExecutionStartedEventAttributes{
			InitiatedEventId: 2, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: "lock/pg-test", RunId: "lock-r"}}),
		/* 4 */ scheduled(t, "control/plan", "ReadClusterState", activities.ClusterStateInput{}),
		/* 5 */ completed(t, 4, activities.ClusterState{View: "pg-test-1 leader"}),
		/* 6 */ signaled(t, workflows.RequestSignal, carol),
		/* 7 */ scheduled(t, "4", "ApprovalPolicy", activities.ApprovalPolicyInput{}),
		/* 8 */ completed(t, 7, approval.Policy{}),
		/* 9 */ scheduled(t, "5", "VerifyApproval", verify(carol)),
		/* 10 */ completed(t, 9, approval.Verdict{Verified: true, Identity: "carol", Via: "carol's key"}),
		/* 11 */ ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, &historypb.WorkflowExecutionUpdateAcceptedEventAttributes{
			AcceptedRequest: &updatepb.Request{Meta: &updatepb.Meta{UpdateId: "u1", Identity: "chatops@bridge"},
				Input: &updatepb.Input{Name: workflows.ApproveUpdate, Args: payloadsOf(t, bob)}}}),
		/* 12 */ signaled(t, workflows.ApproveSignal, mallory),
		/* 13 */ scheduled(t, "6", "VerifyApproval", verify(bob)),
		/* 14 */ completed(t, 13, approval.Verdict{Verified: true, Identity: "bob", Via: "bob's key"}),
		/* 15 */ ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, &historypb.WorkflowExecutionUpdateCompletedEventAttributes{
			Meta: &updatepb.Meta{UpdateId: "u1"}, Outcome: &updatepb.Outcome{Value: &updatepb.Outcome_Success{Success: payloadsOf(t, "ok")}}}),
		/* 16 */ scheduled(t, "7", "VerifyApproval", verify(mallory)),
		/* 17 */ completed(t, 16, approval.Verdict{Reason: "mallory has no key in the approvals file"}),
		/* 18 */ scheduled(t, "pg-test-3/agent-stop", "AgentStop", activities.MemberNodeInput{}),
		/* 19 */ completed(t, 18, activities.StepResult{Changed: true, Changes: []string{"stopped pg-ha-agent"}}),
		/* 20 */ scheduled(t, "pg-test-3/data-aside", "DataAside", activities.MemberNodeInput{}),
		/* 21 */ ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: 20, Attempt: 3}),
		/* 22 */ ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, &historypb.ActivityTaskFailedEventAttributes{ScheduledEventId: 20,
			Failure: &failurepb.Failure{Message: "disk full", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: "Remote"}}}}),
		/* 23 */ ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, &historypb.WorkflowExecutionFailedEventAttributes{
			Failure: &failurepb.Failure{Message: "pg-member-remove: data aside failed", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: workflows.PgMembersFailedType}}}}),
		/* 24 */ ev(enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED, &historypb.ChildWorkflowExecutionTerminatedEventAttributes{InitiatedEventId: 2}),
	)
}

func memberRemoveInfo(t *testing.T) *workflowpb.WorkflowExecutionInfo {
	return &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "pg-member-remove/pg-test", RunId: "r1"},
		Type:      &commonpb.WorkflowType{Name: workflows.PgMemberRemoveName},
		Status:    enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
		StartTime: timestamppb.New(auditT0), CloseTime: timestamppb.New(auditT0.Add(time.Minute)),
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			workflows.SearchAttrCluster.GetName(): payloadsOf(t, "pg-test").Payloads[0],
			workflows.SearchAttrRunbook.GetName(): payloadsOf(t, workflows.PgMemberRemoveRunbook).Payloads[0],
		}},
	}
}

func TestAuditRunOf(t *testing.T) {
	r, err := AuditRunOf(memberRemoveInfo(t), memberRemoveHistory(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Runbook != "pg-member-remove" || r.Cluster != "pg-test" || r.Status != "failed" || r.RequestedBy != "carol" || r.RequesterVerified != "carol" ||
		r.StartedBy != "pigwf@ops-1" || r.Error == nil || r.Error.Type != workflows.PgMembersFailedType || !r.Closed.Equal(auditT0.Add(time.Minute)) {
		t.Errorf("run %+v", r)
	}
	// Steps: the plan (unchanged), the agent stopped (changed), the data aside failed after three
	// attempts; the gate's own activities are not steps.
	var steps []string
	for _, s := range r.Steps {
		steps = append(steps, s.ID+"="+s.State)
	}
	if want := "control/plan=unchanged pg-test-3/agent-stop=changed pg-test-3/data-aside=failed"; strings.Join(steps, " ") != want {
		t.Errorf("steps %s, want %s", strings.Join(steps, " "), want)
	}
	if s := r.Steps[2]; s.Node != "pg-test-3" || s.Step != "data-aside" || s.Attempts != 3 || s.Error == nil || s.Error.Message != "disk full" || s.Error.Type != "Remote" {
		t.Errorf("failed step %+v", s)
	}
	if s := r.Steps[1]; len(s.Changes) != 1 || s.Activity != "AgentStop" || r.Steps[0].Node != "" {
		t.Errorf("steps %+v", r.Steps)
	}
	if len(r.Children) != 1 || r.Children[0] != (AuditChild{WorkflowID: "lock/pg-test", RunID: "lock-r", Type: workflows.ClusterLockName, Status: "terminated"}) {
		t.Errorf("children %+v", r.Children)
	}
	// Approvals in the order received, each with its verification.
	if len(r.Approvals) != 3 {
		t.Fatalf("approvals %+v", r.Approvals)
	}
	req, bob, mallory := r.Approvals[0], r.Approvals[1], r.Approvals[2]
	if req.Kind != "request" || req.Approver != "carol" || req.Via != "signal" || req.Verified == nil || !*req.Verified || req.VerifyBy != "carol's key" {
		t.Errorf("request %+v", req)
	}
	if bob.Kind != "decision" || bob.Decision != "approve" || bob.Via != "update" || bob.SentBy != "chatops@bridge" || bob.Comment != "go" ||
		bob.Verified == nil || !*bob.Verified || bob.Identity != "bob" || bob.Taken == nil || !*bob.Taken || !bob.Received.Equal(auditT0.Add(10*time.Second)) {
		t.Errorf("bob %+v", bob)
	}
	if mallory.Via != "signal" || mallory.Verified == nil || *mallory.Verified || mallory.Reason != "mallory has no key in the approvals file" || mallory.Taken != nil {
		t.Errorf("mallory %+v", mallory)
	}
	txt := r.Text()
	for _, want := range []string{"pg-member-remove/pg-test  pg-member-remove  failed", "requested by carol", "failed     pg-test-3/data-aside",
		"decision approve by bob", "verified: bob by bob's key", "not taken: mallory has no key"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
}

// The wire contract: what is marshalled reads back the same.
func TestAuditRunRoundTrip(t *testing.T) {
	r, err := AuditRunOf(memberRemoveInfo(t), memberRemoveHistory(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back AuditRun
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip:\n%+v\n%+v", r, back)
	}
	for _, key := range []string{`"workflow_id":"pg-member-remove/pg-test"`, `"requested_by":"carol"`, `"steps":[`, `"approvals":[`, `"verified":true`, `"verified_by":"bob's key"`, `"state":"failed"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	// A run with nothing recorded still has its lists, as [] (a consumer need not test for null).
	empty, err := AuditRunOf(memberRemoveInfo(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(empty)
	if !strings.Contains(string(b), `"steps":[]`) || !strings.Contains(string(b), `"approvals":[]`) {
		t.Errorf("empty run: %s", b)
	}
}

// A run refused by the cluster's lock: its lock child never started.
func TestAuditLockRefused(t *testing.T) {
	hist := events(
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, &historypb.WorkflowExecutionStartedEventAttributes{Input: payloadsOf(t, map[string]string{"cluster": "pg-test"})}),
		ev(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, &historypb.StartChildWorkflowExecutionInitiatedEventAttributes{
			WorkflowId: "lock/pg-test", WorkflowType: &commonpb.WorkflowType{Name: workflows.ClusterLockName}}),
		ev(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED, &historypb.StartChildWorkflowExecutionFailedEventAttributes{InitiatedEventId: 2}),
		scheduled(t, "control/lock-holder", "ClusterLockHolder", activities.ExclusiveInput{Cluster: "pg-test"}),
		completed(t, 4, activities.ClusterRun{WorkflowID: "pg-backup/pg-test"}),
	)
	r, err := AuditRunOf(memberRemoveInfo(t), hist)
	if err != nil {
		t.Fatal(err)
	}
	if r.Children[0].Status != "not started" || r.RequestedBy != "" || r.Steps[0].State != AuditUnchanged {
		t.Errorf("run %+v", r)
	}
	if !strings.Contains(r.Text(), "child run  lock/pg-test (ClusterLock): not started") {
		t.Errorf("text:\n%s", r.Text())
	}
}

// A step a run was still running (or retrying) when it ended is unfinished; in an open run, running.
func TestAuditUnfinishedStep(t *testing.T) {
	hist := events(
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, &historypb.WorkflowExecutionStartedEventAttributes{}),
		scheduled(t, "pg-test-1/reload", "MemberReload", activities.MemberReloadInput{}),
	)
	info := memberRemoveInfo(t)
	info.Status = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	if r, _ := AuditRunOf(info, hist); r.Steps[0].State != AuditUnfinished || r.Status != "terminated" {
		t.Errorf("terminated run: %+v", r)
	}
	info.Status, info.CloseTime = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	if r, _ := AuditRunOf(info, hist); r.Steps[0].State != AuditRunning || !r.Closed.IsZero() {
		t.Errorf("open run: %+v", r)
	}
}

// fakeAudit is visibility's pages and the runs' histories.
type fakeAudit struct {
	pages   [][]*workflowpb.WorkflowExecutionInfo
	history map[string][]*historypb.HistoryEvent
	queries []string
}

func (f *fakeAudit) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.queries = append(f.queries, req.Query)
	page := 0
	if len(req.NextPageToken) > 0 {
		page = int(req.NextPageToken[0])
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: f.pages[page]}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

func (f *fakeAudit) GetWorkflowHistory(_ context.Context, id, runID string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	return &fakeIter{events: f.history[id+"/"+runID]}
}

type fakeIter struct{ events []*historypb.HistoryEvent }

func (i *fakeIter) HasNext() bool { return len(i.events) > 0 }
func (i *fakeIter) Next() (*historypb.HistoryEvent, error) {
	e := i.events[0]
	i.events = i.events[1:]
	return e, nil
}

// Every page of the cluster's runs, since the time given, each with its history.
func TestAuditPages(t *testing.T) {
	second := memberRemoveInfo(t)
	second.Execution = &commonpb.WorkflowExecution{WorkflowId: "pg-backup/pg-test", RunId: "r2"}
	f := &fakeAudit{
		pages:   [][]*workflowpb.WorkflowExecutionInfo{{memberRemoveInfo(t)}, {second}},
		history: map[string][]*historypb.HistoryEvent{"pg-member-remove/pg-test/r1": memberRemoveHistory(t)},
	}
	var got []AuditRun
	err := audit(context.Background(), f, "pg-test", auditT0, func(r AuditRun) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].RequestedBy != "carol" || got[1].WorkflowID != "pg-backup/pg-test" || len(got[1].Steps) != 0 {
		t.Errorf("runs %+v", got)
	}
	if want := "PgCluster = 'pg-test' AND StartTime >= '2026-12-01T02:00:00Z'"; len(f.queries) != 2 || f.queries[0] != want {
		t.Errorf("queries %q, want %q", f.queries, want)
	}
}

func TestAuditSince(t *testing.T) {
	now := auditT0
	for in, want := range map[string]time.Time{"": {}, "24h": now.Add(-24 * time.Hour), "90m": now.Add(-90 * time.Minute), "2026-11-30T00:00:00Z": time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)} {
		got, err := AuditSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1h", "yesterday", "2026-11-30"} {
		if _, err := AuditSince(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
