package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// kill -9 of the worker in the middle of NodeInit on a 4-node lab, then a new worker: the run
// completes, and no step's effect is duplicated (each node's journal lists every change once).
// The kill lands at a different point in each round.
func TestNodeInitSurvivesWorkerKill(t *testing.T) {
	requireIntegration(t)
	conclusive := 0 // rounds in which the kill really hit the in-flight activity
	for round, killAfter := range []int{3, 14, 8} {
		st := testLab(t, "pwit2", "10.213.12", 4)
		home := labHome(t, st)
		// One activity at a time makes "in the middle" a wide, well-defined window.
		w1 := startWorker(t, home, "--max-concurrent-activities", "1")
		c := dial(t)
		inv, err := inventory.LoadInventory(st.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		cl, _ := inv.Cluster("pg-test")
		in, err := starter.NodeInitInput(cl, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		run, err := c.Start(ctx, workflows.NodeInitRunbook, workflows.NodeInitName, "pg-test", in, starter.NodeInitMeta(in, starter.NewRequest(st.Inventory)))
		if err != nil {
			t.Fatal(err)
		}

		// Wait until killAfter activities completed and another one is executing, then kill.
		var inFlight string
		deadline := time.Now().Add(60 * time.Second)
		for inFlight == "" {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: never saw %d completed activities with one in flight", round, killAfter)
			}
			d, err := c.C.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
			if err != nil {
				t.Fatal(err)
			}
			if d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("round %d: the run finished before the kill", round)
			}
			hist, err := historyOf(c, run.GetID())
			if err != nil {
				t.Fatal(err)
			}
			completed := completedActivities(hist)
			for _, pa := range d.PendingActivities {
				if completed >= killAfter && pa.State == enumspb.PENDING_ACTIVITY_STATE_STARTED {
					inFlight = pa.ActivityId
				}
			}
			if inFlight == "" {
				time.Sleep(10 * time.Millisecond)
			}
		}
		w1.kill()
		killedAt := time.Now()
		t.Logf("round %d: killed the worker (SIGKILL) with %s in flight", round, inFlight)

		w2 := startWorker(t, home, "--max-concurrent-activities", "1")
		var res workflows.NodeInitResult
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err = c.Wait(wctx, run.GetID(), run.GetRunID(), &res, nil)
		cancel()
		if err != nil {
			t.Fatalf("round %d: the run did not complete after the crash: %v", round, err)
		}

		// The in-flight activity was retried on the new worker (the kill really hit it).
		hist, _ := historyOf(c, run.GetID())
		activityOf := map[int64]string{}
		var retried int32
		var completedAt time.Time
		for _, ev := range hist.Events {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				activityOf[ev.EventId] = a.ActivityId
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && activityOf[a.ScheduledEventId] == inFlight {
				retried = a.Attempt
			}
			if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && activityOf[a.ScheduledEventId] == inFlight {
				completedAt = ev.GetEventTime().AsTime()
			}
		}
		switch {
		case retried >= 2:
			conclusive++
		case !completedAt.IsZero() && completedAt.Before(killedAt):
			// A short activity can report its completion between the look at the pending
			// activities and the kill: this round shows no retry, and proves nothing wrong.
			t.Logf("round %d: %s completed at %s, before the kill at %s landed; no retry to see in this round",
				round, inFlight, completedAt.Format("15:04:05.000000"), killedAt.Format("15:04:05.000000"))
		default:
			t.Errorf("round %d: %s finished on attempt %d after the kill; the kill should have forced a retry", round, inFlight, retried)
		}

		for i := 1; i <= 4; i++ {
			journal := nodeRun(t, st, i, "cat "+activities.JournalPath)
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(journal), "\n") {
				parts := strings.SplitN(line, " ", 2) // drop the timestamp
				if len(parts) < 2 {
					continue
				}
				if seen[parts[1]] {
					t.Errorf("round %d node %d: change made twice: %s", round, i, parts[1])
				}
				seen[parts[1]] = true
			}
			if got := nodeRun(t, st, i, "test -s /etc/pki/ca.crt && hostname"); strings.TrimSpace(got) != "pg-test-"+string(rune('0'+i)) {
				t.Errorf("round %d node %d not initialised: %q", round, i, got)
			}
		}
		if res.Failed != 0 {
			t.Errorf("round %d: result = %+v", round, res)
		}
		w2.kill() // the next round needs the task queue to itself
	}
	if conclusive == 0 {
		t.Error("in no round did the kill hit an activity in flight, so no retry after a worker crash was seen")
	}
}
