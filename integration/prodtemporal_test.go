package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The must-show of production Temporal (issue #15) on a lab: Temporal on PostgreSQL with 4
// history shards and mutual TLS (testenv.StartProd), two `pigwf worker` processes on pigwf's
// task queue. PgClusterCreate: the worker running the activity in flight is killed with SIGKILL
// and the run completes on the other; then the server is restarted (SIGTERM, start on the same
// database) mid-run and the run still completes. A Switchover waits for an approval across a
// server restart and completes once approved. After a last restart, both runs' histories are read
// through the Web UI's HTTP API, the same events as through gRPC.
func TestProdTemporalSurvivesWorkerKillAndServerRestarts(t *testing.T) {
	requireIntegration(t)
	prod, err := testenv.StartProd(testenv.ProdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Stop()
	t.Logf("production-style Temporal at %s (UI %s), %d shards:\n%s", prod.TemporalAddr, prod.UIURL, prod.Shards, prod.SetupOutput)

	st := testLab(t, "pwprod", "10.213.61", 3)
	home := labHome(t, st)
	setupApprovals(t, home, labPolicies)
	run := func(args ...string) string {
		t.Helper()
		out, err := prod.Pigwf(t, home, args...)
		if err != nil {
			t.Fatalf("pigwf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// One activity at a time per worker: the activity in flight has one owner to kill.
	workers := []*testenv.Worker{
		prod.StartWorker(t, home, "--max-concurrent-activities", "1"),
		prod.StartWorker(t, home, "--max-concurrent-activities", "1"),
	}
	c := prod.Dial(t)
	run("start", "node-init", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait")

	// PgClusterCreate: kill the worker that runs the activity in flight.
	run("start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory)
	createID := workflows.WorkflowID(workflows.PgClusterCreateRunbook, "pg-test")
	activity, owner := activityInFlight(t, c, createID, workers, 3)
	killed := workers[owner]
	survivor := workers[1-owner]
	killed.Kill()
	killedAt := time.Now()
	t.Logf("killed worker pid %d (SIGKILL) while it ran %s", killed.PID(), activity)

	// The server restarted while the run goes on (on the survivor).
	activityInFlight(t, c, createID, []*testenv.Worker{survivor}, 1)
	restart(t, prod)
	create := waitRun(t, c, createID, 10*time.Minute)

	// The activities that completed after the kill ran on the survivor.
	hist, err := testenv.HistoryOf(c, createID)
	if err != nil {
		t.Fatal(err)
	}
	var afterKill, onSurvivor int
	for _, ev := range hist.Events {
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && ev.GetEventTime().AsTime().After(killedAt) {
			afterKill++
			if survivor.RanAs(a.GetIdentity()) {
				onSurvivor++
			}
		}
	}
	if afterKill == 0 || onSurvivor != afterKill {
		t.Errorf("after the kill %d activities started, %d of them on the surviving worker (pid %d)", afterKill, onSurvivor, survivor.PID())
	}

	// Switchover with an approval, across a server restart while it waits.
	done := make(chan string, 1)
	go func() {
		out, err := prod.Pigwf(t, home, "start", "switchover", "--cluster", "pg-test", "--inventory", st.Inventory,
			"--as", "carol", "--candidate", "pg-test-2", "--reason", "test: production Temporal", "--wait")
		done <- fmt.Sprintf("%s\nexit: %v", out, err)
	}()
	waitPendingOrSay(t, prod, home, st.Inventory, c, done)
	restart(t, prod)
	waitPendingOrSay(t, prod, home, st.Inventory, c, done) // still waiting after the restart, as recorded in PostgreSQL
	run("approve", "switchover/pg-test", "--by", "alice", "--comment", "test: production Temporal")
	select {
	case out := <-done:
		if !strings.Contains(out, "exit: <nil>") {
			t.Fatalf("switchover:\n%s", out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the switchover did not end")
	}
	switchoverID := workflows.WorkflowID(workflows.SwitchoverRunbook, "pg-test")
	switchover := waitRun(t, c, switchoverID, time.Minute)

	// After a last restart: each run's history through the Web UI's HTTP API, as through gRPC.
	restart(t, prod)
	for _, r := range []doneRun{create, switchover} {
		grpcHist, err := testenv.HistoryOf(c, r.id)
		if err != nil {
			t.Fatal(err)
		}
		events, err := prod.UIHistory(r.id, r.runID)
		if err != nil {
			t.Fatalf("%s through the Web UI: %v", r.id, err)
		}
		if len(events) != len(grpcHist.Events) || !strings.Contains(string(events[len(events)-1]), "WORKFLOW_EXECUTION_COMPLETED") {
			t.Errorf("%s: the Web UI's API gives %d events, gRPC %d; the last: %.300s", r.id, len(events), len(grpcHist.Events), events[len(events)-1])
		}
	}

	// The audit export, read back from PostgreSQL after the restart: the switchover's approval
	// with its approver and what verified it, and its verified requester.
	out := run("audit", "--cluster", "pg-test", "--json")
	var approved bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r starter.AuditRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.WorkflowID != switchoverID {
			continue
		}
		if r.RequesterVerified != "carol" {
			t.Errorf("the switchover's audit: requester verified %q, want carol", r.RequesterVerified)
		}
		for _, a := range r.Approvals {
			if a.Kind == "decision" && a.Decision == "approve" && a.Approver == "alice" && a.Verified != nil && *a.Verified &&
				a.Identity == "alice" && strings.Contains(a.VerifyBy, "alice's key SHA256:") {
				approved = true
			}
		}
		if !approved {
			t.Errorf("the switchover's audit lists no verified approval by alice: %+v", r.Approvals)
		}
	}
	if !approved {
		t.Logf("pigwf audit --json:\n%s", out)
	}
}

// activityInFlight waits (at most 2 minutes) until run id has at least minCompleted activities
// completed and one started by one of workers, and returns that activity and its worker's index.
func activityInFlight(t *testing.T, c *starter.Client, id string, workers []*testenv.Worker, minCompleted int) (string, int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := c.C.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("%s ended (%v) before an activity was seen in flight", id, d.GetWorkflowExecutionInfo().GetStatus())
		}
		hist, err := testenv.HistoryOf(c, id)
		if err != nil {
			t.Fatal(err)
		}
		completed := completedActivities(hist)
		for _, pa := range d.GetPendingActivities() {
			if completed < minCompleted || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
				continue
			}
			for i, w := range workers {
				if w.RanAs(pa.GetLastWorkerIdentity()) {
					return pa.GetActivityId(), i
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no activity in flight on the workers after %d completed", id, minCompleted)
	return "", 0
}

// waitPendingOrSay waits (a minute) until the switchover waits for approval; if it does not, it
// fails with what the run printed if it ended, what the pending list saw, and where it stands.
func waitPendingOrSay(t *testing.T, prod *testenv.ProdEnv, home, inventory string, c *starter.Client, done <-chan string) {
	t.Helper()
	var runs []starter.Pending
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		runs, err = c.PendingApprovals(context.Background())
		if err == nil && len(runs) == 1 && runs[0].WorkflowID == "switchover/pg-test" {
			return
		}
		select {
		case out := <-done:
			t.Fatalf("the switchover ended before it waited for approval:\n%s", out)
		default:
		}
	}
	d, derr := c.C.DescribeWorkflowExecution(context.Background(), "switchover/pg-test", "")
	qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qstart := time.Now()
	val, qerr := c.C.QueryWorkflow(qctx, "switchover/pg-test", "", workflows.ApprovalQuery)
	var st workflows.ApprovalState
	if qerr == nil {
		qerr = val.Get(&st)
	}
	t.Logf("the approval query answered in %v: %v %+v", time.Since(qstart), qerr, st)
	if l, err := c.OpenRuns(context.Background()); err == nil {
		t.Logf("open runs: %+v", l)
	}
	// What visibility holds, as the temporal CLI lists it, and what the server failed to write.
	out, err := exec.Command(testenv.TemporalCLI(), append([]string{"workflow", "list"}, prod.TemporalCLIArgs()...)...).CombinedOutput()
	t.Logf("temporal workflow list: %v\n%s", err, out)
	out, err = exec.Command("sh", "-c", "grep '\"level\":\"error\"' "+prod.ServerLog()+" | grep -v 'context canceled' | tail -c 4000").CombinedOutput()
	t.Logf("server errors: %v\n%s", err, out)
	for _, args := range [][]string{{"status", "switchover/pg-test"}, {"ha", "list", "--cluster", "pg-test", "--inventory", inventory}} {
		out, err := prod.Pigwf(t, home, args...)
		t.Logf("pigwf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var last []string
	if h, err := testenv.HistoryOf(c, "switchover/pg-test"); err == nil {
		for _, ev := range h.Events[max(0, len(h.Events)-8):] {
			last = append(last, ev.GetEventType().String())
		}
	}
	t.Fatalf("switchover/pg-test never waited for approval: pending %+v, %v; the run: %v %v; pending activities %v; query: %v; last events %v",
		runs, err, d.GetWorkflowExecutionInfo().GetStatus(), derr, d.GetPendingActivities(), qerr, last)
}

// restart restarts the production server and logs how long it took.
func restart(t *testing.T, prod *testenv.ProdEnv) {
	t.Helper()
	start := time.Now()
	if err := prod.Restart(); err != nil {
		t.Fatalf("restarting the Temporal server: %v (its log: %s)", err, prod.ServerLog())
	}
	t.Logf("Temporal server restarted (SIGTERM, start, ready) in %v", time.Since(start).Round(time.Millisecond))
}

// doneRun is a run that completed.
type doneRun struct{ id, runID string }

// waitRun waits for run id to complete (failing the test on any other end) and returns it.
func waitRun(t *testing.T, c *starter.Client, id string, timeout time.Duration) doneRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := c.C.GetWorkflow(ctx, id, "")
	if err := r.Get(ctx, nil); err != nil {
		t.Fatalf("%s did not complete: %v", id, err)
	}
	return doneRun{id: id, runID: r.GetRunID()}
}
