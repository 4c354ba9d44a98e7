package starter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/workflows"
)

// A run waiting for approval is printed with everything an approver needs: the plan, who, by
// when, the commands, the page.
func TestPrintPending(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	p := Pending{
		WorkflowID: "switchover/pg-test", RunID: "r1", Runbook: "switchover",
		State: workflows.ApprovalState{Waiting: true, Plan: "switch pg-test's primary from pg-test-1 to pg-test-2",
			Approvers: []string{"alice", "bob"}, Deadline: now.Add(time.Hour)},
		WebURL: "http://127.0.0.1:8233/namespaces/default/workflows/switchover%2Fpg-test/r1/user-metadata",
	}
	var b bytes.Buffer
	PrintPending(&b, p, now)
	want := "switchover/pg-test (switchover) is waiting for approval\n" +
		"  plan:      switch pg-test's primary from pg-test-1 to pg-test-2\n" +
		"  approvers: alice, bob\n" +
		"  deadline:  " + now.Add(time.Hour).Local().Format(time.RFC3339) + " (1h0m0s left)\n" +
		"  approve:   pigwf approve switchover/pg-test --by NAME   (reject: add --reject)\n" +
		"  in chat:   /pigwf approve switchover/pg-test\n" +
		"  web:       http://127.0.0.1:8233/namespaces/default/workflows/switchover%2Fpg-test/r1/user-metadata\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// A run under verified approvals shows the worker's policy, whether its requester is proven, what
// counted so far and why anything else did not.
func TestPrintPendingVerified(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	pol := approval.Policy{Source: "approvals.yml policies[0]", Approvers: []string{"alice", "bob", "carol"}, FourEyes: true, Quorum: 2}
	p := Pending{
		WorkflowID: "switchover/pg-test", RunID: "r1", Runbook: "switchover",
		State: workflows.ApprovalState{Waiting: true, Plan: "switch", Approvers: pol.Approvers, Deadline: now.Add(time.Hour),
			Policy: &pol, RequestedBy: "alice",
			Votes:   []approval.Vote{{Approver: "bob", Decision: workflows.DecisionApprove, Via: "bob's key SHA256:x"}},
			Ignored: []workflows.IgnoredDecision{{ApprovalDecision: workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, Reason: "four eyes: alice requested this run and may not approve it"}}},
	}
	var b bytes.Buffer
	PrintPending(&b, p, now)
	for _, want := range []string{
		"  approvers: 2 of alice, bob, carol; four eyes (the requester may not approve); signed decisions only\n",
		"  requester: alice (signed request)\n",
		"  counted:   approve by bob (bob's key SHA256:x)\n",
		"  ignored:   approve by alice: four eyes: alice requested this run and may not approve it\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}
