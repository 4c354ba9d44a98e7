package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// approvalState reads the switchover's approval query.
func approvalState(t *testing.T, c *starter.Client) workflows.ApprovalState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.C.QueryWorkflow(ctx, "switchover/pg-test", "", workflows.ApprovalQuery)
	if err != nil {
		t.Fatalf("approval query: %v", err)
	}
	var st workflows.ApprovalState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Verified approvals on the lab, in one switchover under a policy of four eyes and a quorum of
// two (alice, bob, carol approve; alice asks): a bare signal naming an approver (what the Web UI
// and `temporal workflow signal` send) is recorded and not acted on; alice may not approve her own
// run; bob's signed approval counts once; carol's signed approval completes the quorum and the
// switchover. The leader moves only then.
func TestVerifiedApprovalsOnTheLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwappr", "10.213.19")
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	c := dial(t)
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Fatalf("leader after create = %q", l)
	}
	// The worker reads the approvals file at every use: this policy applies to the next gate.
	setupApprovals(t, home, `  - { cluster: pg-test, runbook: switchover, approvers: [alice, bob, carol], four_eyes: true, quorum: 2 }`+"\n")

	run := startSwitchover(t, home, st, "--as", "alice", "--candidate", "pg-test-2", "--reason", "test: verified approvals")
	waitPending(t, c)
	if s := approvalState(t, c); s.RequestedBy != "alice" || s.Policy == nil || s.Policy.Quorum != 2 || !s.Policy.FourEyes {
		t.Fatalf("the run's approval state: %+v", s)
	}

	// 1. A bare signal with an approver's name, sent with the SDK as the Web UI would send it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.C.SignalWorkflow(ctx, "switchover/pg-test", "", workflows.ApproveSignal,
		map[string]string{"decision": "approve", "approver": "bob", "comment": "from the web ui"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := approvalState(t, c)
		if len(s.Ignored) == 1 && s.Ignored[0].Approver == "bob" && strings.Contains(s.Ignored[0].Reason, "not signed") {
			if !s.Waiting || len(s.Votes) != 0 {
				t.Fatalf("the bare signal was acted on: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bare signal was not recorded as unverified: %+v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// 2. Four eyes: alice asked, so alice's signed approval is refused.
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "alice"); err == nil || !strings.Contains(out, "four eyes: alice requested this run and may not approve it") {
		t.Errorf("alice approving her own run: %v\n%s", err, out)
	}

	// 3. A quorum of two: bob's approval counts once.
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "bob", "--comment", "looks fine"); err != nil || !strings.Contains(out, "approved so far by bob (1 of 2)") {
		t.Fatalf("bob's approval: %v\n%s", err, out)
	}
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "bob"); err == nil || !strings.Contains(out, "bob already approved") {
		t.Errorf("bob approving twice: %v\n%s", err, out)
	}
	// mallory has a key, which the worker does not know, and is on no policy.
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "mallory"); err == nil || !strings.Contains(out, "mallory is not an approver") {
		t.Errorf("mallory: %v\n%s", err, out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Fatalf("the leader moved before the quorum: %q", l)
	}

	// 4. carol's signed approval completes the quorum: the switchover runs.
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "carol", "--comment", "second pair of eyes"); err != nil || !strings.Contains(out, "approved by bob, carol") {
		t.Fatalf("carol's approval: %v\n%s", err, out)
	}
	if out := wait(t, run); !strings.Contains(out, "exit: <nil>") || !strings.Contains(out, "request signed by alice") {
		t.Fatalf("the verified switchover:\n%s", out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-2" {
		t.Errorf("leader after the switchover = %q", l)
	}
	var res workflows.SwitchoverResult
	if err := c.C.GetWorkflow(ctx, "switchover/pg-test", "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	ap := res.Approval
	// Only the bare signal is in the record: the Updates refused by the validator (alice, bob's
	// second, mallory) never entered the run; their senders got the refusal.
	if ap.Approver != "bob, carol" || ap.RequestedBy != "alice" || len(ap.Votes) != 2 || len(ap.Ignored) != 1 {
		t.Errorf("the run's approval record: %+v", ap)
	}
	for _, v := range ap.Votes {
		if !strings.Contains(v.Via, v.Approver+"'s key SHA256:") {
			t.Errorf("vote %+v does not name the key that proved it", v)
		}
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, "switchover/pg-test")
	}
}
