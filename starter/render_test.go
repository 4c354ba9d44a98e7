package starter

import (
	"bytes"
	"testing"
	"time"

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
