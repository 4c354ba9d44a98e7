package starter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// Verified approvals through a real Temporal server, the real gate and its real activities, with
// only the switchover's cluster steps faked: what the CLI sends (a signed request after the start,
// signed decisions as Update and signal) and what anyone else can send (a bare signal).
func TestVerifiedApprovalsEndToEnd(t *testing.T) {
	c := temporalServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir := t.TempDir()
	keys := map[string]approval.Key{}
	text := "keys:\n"
	for _, n := range []string{"alice", "bob", "carol"} {
		pub, _, err := approval.CreateKey(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		if keys[n], err = approval.LoadKey(n, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf("  %s: [%q]\n", n, pub)
	}
	text += "policies:\n  - { cluster: pg-e2e, runbook: switchover, approvers: [alice, bob, carol], four_eyes: true, quorum: 2 }\n"
	file := filepath.Join(dir, "approvals.yml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	const queue = "verified-e2e"
	w := worker.New(c.C, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Approvals: activities.ApprovalTrust{File: file}})
	var switched atomic.Int32
	fake := func(name string, fn any) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name, DisableAlreadyRegisteredCheck: true})
	}
	fake("SwitchoverPrecheck", func(context.Context, activities.SwitchoverCheckInput) (activities.SwitchoverPlan, error) {
		return activities.SwitchoverPlan{Leader: "pg-e2e-1", Candidate: "pg-e2e-2", Why: "streaming"}, nil
	})
	fake("SwitchoverExecute", func(context.Context, activities.SwitchoverExecInput) (activities.SwitchoverReport, error) {
		switched.Add(1)
		return activities.SwitchoverReport{NewLeader: "pg-e2e-2"}, nil
	})
	fake("Verify", func(context.Context, activities.VerifyInput) (activities.StepResult, error) {
		return activities.StepResult{}, nil
	})
	fake("Notify", func(context.Context, activities.Notification) (string, error) { return "off", nil })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	c.TaskQueue = queue
	in := workflows.SwitchoverInput{Cluster: "pg-e2e", RequestedBy: "alice", Members: []activities.MemberAPI{{Name: "pg-e2e-1"}, {Name: "pg-e2e-2"}},
		Approval: workflows.ApprovalPolicy{Approvers: []string{"mallory"}, Timeout: 5 * time.Minute}} // the input's approvers count for nothing
	run, err := c.Start(ctx, workflows.SwitchoverRunbook, workflows.SwitchoverName, "pg-e2e", in, starter.RunMeta{Summary: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	id := run.GetID()
	if err := c.SignRequest(ctx, id, run.GetRunID(), keys["alice"]); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, ok func(workflows.ApprovalState) bool) workflows.ApprovalState {
		t.Helper()
		var st workflows.ApprovalState
		for range 200 {
			if v, err := c.C.QueryWorkflow(ctx, id, "", workflows.ApprovalQuery); err == nil && v.Get(&st) == nil && ok(st) {
				return st
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("never %s: %+v", what, st)
		return st
	}
	waitFor("waiting with alice proven as the requester", func(s workflows.ApprovalState) bool { return s.Waiting && s.RequestedBy == "alice" })

	// A bare name, as the Web UI or `temporal workflow signal` sends it: recorded, not acted on.
	if err := c.C.SignalWorkflow(ctx, id, "", workflows.ApproveSignal, map[string]string{"decision": "approve", "approver": "bob"}); err != nil {
		t.Fatal(err)
	}
	waitFor("recording the bare decision", func(s workflows.ApprovalState) bool {
		return len(s.Ignored) == 1 && strings.Contains(s.Ignored[0].Reason, "not signed") && len(s.Votes) == 0
	})
	// An unsigned Update is refused at once; so is the requester's own approval.
	var refused *chatops.RefusedError
	if _, err := c.Decide(ctx, id, workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "bob"}, nil); !errors.As(err, &refused) || !strings.Contains(refused.Reason, "not signed") {
		t.Errorf("an unsigned Update: %v", err)
	}
	alice := keys["alice"]
	if _, err := c.Decide(ctx, id, workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "alice"}, &alice); !errors.As(err, &refused) || !strings.Contains(refused.Reason, "four eyes: alice requested this run") {
		t.Errorf("alice approving her own run: %v", err)
	}
	// A quorum of two: bob counts once, then carol completes it.
	bob := keys["bob"]
	dec, err := c.Decide(ctx, id, workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "bob", Comment: "looks fine"}, &bob)
	if err != nil || !dec.State.Waiting || !strings.Contains(dec.State.Summary(), "approved so far by bob (1 of 2)") {
		t.Fatalf("bob's approval: %v, %s", err, dec.State.Summary())
	}
	if _, err := c.Decide(ctx, id, workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "bob"}, &bob); !errors.As(err, &refused) || !strings.Contains(refused.Reason, "bob already approved") {
		t.Errorf("bob again: %v", err)
	}
	if switched.Load() != 0 {
		t.Fatal("switched before the quorum")
	}
	carol := keys["carol"]
	if err := c.SignalDecision(ctx, id, workflows.ApprovalDecision{Decision: workflows.DecisionApprove, Approver: "carol"}, &carol); err != nil {
		t.Fatal(err)
	}
	var res workflows.SwitchoverResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	ap := res.Approval
	if switched.Load() != 1 || res.Outcome != "switched" || ap.Approver != "bob, carol" || ap.RequestedBy != "alice" || len(ap.Votes) != 2 || len(ap.Ignored) != 1 {
		t.Errorf("switched %d, result %+v", switched.Load(), res)
	}
}
