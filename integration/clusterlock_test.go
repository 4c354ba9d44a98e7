package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
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
	began := time.Now()
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
	// Released by its signal (a holder done with the cluster early), the lock completes.
	if err := c.C.SignalWorkflow(ctx, workflows.ClusterLockID(cluster), "", workflows.ClusterLockReleaseSignal, nil); err != nil {
		t.Fatal(err)
	}
	waitLockReleased(ctx, t, c, cluster)
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, workflows.ClusterLockID(cluster))
	}
	if err := c.C.TerminateWorkflow(ctx, restart, again.GetRunID(), "test over"); err != nil {
		t.Fatal(err)
	}

	// pigwf audit: this test's three runs (visibility may lag a moment behind the last one's close).
	var runs3 []starter.AuditRun
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := pigwf(t, home, "audit", "--cluster", cluster, "--since", began.UTC().Format(time.RFC3339Nano), "--json")
		if err != nil {
			t.Fatalf("pigwf audit: %v\n%s", err, out)
		}
		runs3 = nil
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r starter.AuditRun
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			runs3 = append(runs3, r)
		}
		if len(runs3) == 3 && !slices.ContainsFunc(runs3, func(r starter.AuditRun) bool { return r.Status == "running" }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var refused, terminated int
	for _, r := range runs3 {
		switch {
		case r.WorkflowID == loser.id && r.Status == "failed":
			refused++
			if r.Error == nil || r.Error.Type != workflows.ClusterBusyType || len(r.Children) != 1 || r.Children[0].Status != "not started" {
				t.Errorf("the refused run's audit: %+v", r)
			}
		case r.Status == "terminated":
			terminated++
			// The lock: still started in the history of a holder terminated (Temporal ended the lock
			// after), completed in the last one's (released by its signal first).
			if len(r.Children) != 1 || r.Children[0].WorkflowID != workflows.ClusterLockID(cluster) || (r.Children[0].Status != "started" && r.Children[0].Status != "completed") {
				t.Errorf("a holder's audit: %+v", r)
			}
		}
	}
	if len(runs3) != 3 || refused != 1 || terminated != 2 {
		t.Errorf("audit: %+v", runs3)
	}
	if out, err := pigwf(t, home, "audit", "--cluster", cluster, "--since", began.UTC().Format(time.RFC3339Nano)); err != nil || !strings.Contains(out, loser.id) {
		t.Errorf("pigwf audit (text): %v\n%s", err, out)
	} else {
		t.Logf("pigwf audit:\n%s", out)
	}
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
