package integration

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// Two different runbooks started on one cluster in the same instant, straight through Temporal
// (no CLI, so no check through visibility before them): exactly one runs, the other is refused
// (ClusterBusy) naming it, by the lock lock/<cluster> on the real server. Terminating the holder
// ends the lock (ParentClosePolicy TERMINATE) and the cluster can be taken again. No lab: the
// runs never reach a node (pg-restart waits for its --at; pg-reload's agent is a closed port,
// retried).
func TestClusterLockRace(t *testing.T) {
	requireIntegration(t)
	home := t.TempDir()
	if _, err := (pki.CA{Dir: pki.HomeDir(home)}).Ensure(); err != nil {
		t.Fatal(err)
	}
	startWorker(t, home)
	c := dial(t)
	const cluster = "pg-lock"
	members := []activities.MemberAPI{{Name: "pg-lock-1", APIURL: "https://127.0.0.1:1"}}
	restart := workflows.WorkflowID(workflows.PgRestartRunbook, cluster)
	reload := workflows.WorkflowID(workflows.PgReloadRunbook, cluster)
	type start struct {
		id, wf string
		in     any
	}
	restartIn := workflows.PgRestartInput{Cluster: cluster, Members: members, RequestedBy: "carol", At: time.Now().Add(time.Hour)}
	starts := []start{
		{restart, workflows.PgRestartName, restartIn},
		{reload, workflows.PgReloadName, workflows.PgReloadInput{Cluster: cluster, Members: members}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runs := make([]client.WorkflowRun, len(starts))
	var wg sync.WaitGroup
	for i, s := range starts {
		wg.Go(func() {
			r, err := c.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.id, TaskQueue: c.TaskQueue}, s.wf, s.in)
			if err != nil {
				t.Errorf("start %s: %v", s.id, err)
			}
			runs[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defer func() {
		for _, s := range starts {
			_ = c.C.TerminateWorkflow(context.Background(), s.id, "", "test over")
		}
	}()

	// The loser ends at once; the winner runs on (pg-restart sleeps, pg-reload retries its agent).
	type ended struct {
		i   int
		err error
	}
	done := make(chan ended, len(runs))
	for i, r := range runs {
		go func() { done <- ended{i, r.Get(ctx, nil)} }()
	}
	var first ended
	select {
	case first = <-done:
	case <-ctx.Done():
		t.Fatal("neither run ended: both hold the cluster?")
	}
	loser, winner := starts[first.i], starts[1-first.i]
	var app *temporal.ApplicationError
	if !errors.As(first.err, &app) || app.Type() != workflows.ClusterBusyType {
		t.Fatalf("%s ended first with %v, want a ClusterBusy refusal", loser.id, first.err)
	}
	if !strings.Contains(app.Message(), "cluster "+cluster+" is busy: "+winner.id+" (run ") || !strings.Contains(app.Message(), "changed nothing") {
		t.Errorf("%s's refusal does not name %s: %s", loser.id, winner.id, app.Message())
	}
	t.Logf("%s refused: %s", loser.id, app.Message())

	// The lock is the winner's child, open.
	holder, err := c.LockHolder(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if holder.WorkflowID != winner.id || holder.Released {
		t.Errorf("lock holder %+v, want %s holding it", holder, winner.id)
	}
	// The winner went past the lock.
	if p, err := c.Progress(ctx, winner.id, ""); err != nil {
		t.Error(err)
	} else if len(p.Steps) == 0 || p.Steps[0].Step != "exclusive" || !strings.Contains(p.Steps[0].Detail, "held by this run") {
		t.Errorf("%s's progress: %+v", winner.id, p.Steps)
	}

	// The holder ends (terminated, as by an operator): so does the lock; the cluster is free.
	if err := c.C.TerminateWorkflow(ctx, winner.id, "", "the lock must go with it"); err != nil {
		t.Fatal(err)
	}
	waitLockReleased(ctx, t, c, cluster)
	again, err := c.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: restart, TaskQueue: c.TaskQueue}, workflows.PgRestartName, restartIn)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := c.Progress(ctx, restart, again.GetRunID())
		if err == nil && len(p.Steps) > 0 && strings.Contains(p.Steps[0].Detail, "held by this run") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a run after the holder ended did not take the lock: %+v, %v", p, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := c.C.TerminateWorkflow(ctx, restart, again.GetRunID(), "test over"); err != nil {
		t.Fatal(err)
	}
	waitLockReleased(ctx, t, c, cluster)
}

// waitLockReleased waits until the cluster's lock workflow has ended.
func waitLockReleased(ctx context.Context, t *testing.T, c *starter.Client, cluster string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := c.C.DescribeWorkflowExecution(ctx, workflows.ClusterLockID(cluster), "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s still open after its holder ended: %v", workflows.ClusterLockID(cluster), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
