package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
)

func pgBackupInput(source string) PgBackupInput {
	in := PgBackupInput{Cluster: "pg-test", Type: "incr", Source: source, Members: pgRestartInput().Members,
		Spec: activities.PGSpec{Cluster: "pg-test", BackupRetention: 2}, RequestedBy: "carol"}
	for _, m := range in.Members {
		in.Nodes = append(in.Nodes, activities.Node{Addr: "10.0.0." + m.Name[len(m.Name)-1:], Name: m.Name})
	}
	return in
}

// backupFake answers PgBackup's activities and records what was asked.
type backupFake struct {
	mu   sync.Mutex
	busy error // ClusterExclusive's answer, in a run recorded before the cluster's lock
	// beforeLock: the run replays as one recorded before the cluster's lock (the check
	// through visibility, ClusterExclusive); otherwise it takes the lock (a child workflow).
	beforeLock bool
	states     []activities.ClusterState
	reads      int
	backup     func(in activities.BackupInput) (activities.StepResult, error)
	calls      []string
	backupIn   *activities.BackupInput
}

func (f *backupFake) record(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }

func runPgBackup(t *testing.T, in PgBackupInput, f *backupFake) (PgBackupResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{}
	env.RegisterActivity(a)
	if f.beforeLock {
		env.OnGetVersion(clusterLockChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
	env.OnActivity(a.ClusterExclusive, mockAny, mockAny).Return(func(_ context.Context, e activities.ExclusiveInput) (activities.StepResult, error) {
		f.record("exclusive " + e.Cluster + " " + e.WorkflowID)
		return activities.StepResult{}, f.busy
	})
	env.OnActivity(a.ReadClusterState, mockAny, mockAny).Return(func(context.Context, activities.ClusterStateInput) (activities.ClusterState, error) {
		f.mu.Lock()
		st := f.states[min(f.reads, len(f.states)-1)]
		f.reads++
		f.mu.Unlock()
		f.record("read")
		return st, nil
	})
	env.OnActivity(a.BackupServer, mockAny, mockAny).Return(func(_ context.Context, n activities.PgNodeInput) (activities.StepResult, error) {
		f.record("server " + n.Node.Name)
		return activities.StepResult{Changed: true}, nil
	})
	env.OnActivity(a.Backup, mockAny, mockAny).Return(func(_ context.Context, b activities.BackupInput) (activities.StepResult, error) {
		f.record("backup " + b.Node.Name + " leader=" + b.Leader)
		f.mu.Lock()
		f.backupIn = &b
		f.mu.Unlock()
		if f.backup != nil {
			return f.backup(b)
		}
		return activities.StepResult{Changed: true, Facts: map[string]string{"label": "20261130-100000F_20261130-110000I", "type": b.Type}}, nil
	})
	env.OnActivity(a.BackupExpire, mockAny, mockAny).Return(func(_ context.Context, n activities.PgNodeInput) (activities.StepResult, error) {
		f.record("expire " + n.Node.Name)
		return activities.StepResult{Changed: true, Facts: map[string]string{"expired": "A,B"}}, nil
	})
	env.ExecuteWorkflow(PgBackupName, in)
	return runOutcome[PgBackupResult](t, env)
}

// From the leader by default: the cluster's lock, the plan, the backup there with the run's ID
// as its key, the expiry.
func TestPgBackupOnTheLeader(t *testing.T) {
	f := &backupFake{states: []activities.ClusterState{threeMemberState()}}
	res, err := runPgBackup(t, pgBackupInput(inventory.BackupSourceLeader), f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "backup pg-test-1 leader=", "expire pg-test-1"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if f.backupIn.Key != "default-test-run-id" || f.backupIn.Type != "incr" || f.backupIn.Node.Addr != "10.0.0.1" {
		t.Errorf("backup input %+v", f.backupIn)
	}
	if res.Outcome != "backed up" || res.Source != "pg-test-1" || res.Backup != "20261130-100000F_20261130-110000I" || !slices.Equal(res.Expired, []string{"A", "B"}) {
		t.Errorf("result %+v", res)
	}
}

// pg_backup_source: replica takes it on an asynchronous streaming replica, after the leader's
// pgBackRest server, naming the leader; with no replica streaming, on the leader, saying so.
func TestPgBackupOnAReplica(t *testing.T) {
	f := &backupFake{states: []activities.ClusterState{threeMemberState()}}
	res, err := runPgBackup(t, pgBackupInput(inventory.BackupSourceReplica), f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "server pg-test-1", "backup pg-test-3 leader=pg-test-1", "expire pg-test-3"}
	if !slices.Equal(f.calls, want) || res.Source != "pg-test-3" || len(res.Notes) != 0 {
		t.Errorf("calls %v, want %v; result %+v", f.calls, want, res)
	}

	lone := threeMemberState()
	lone.Streaming, lone.SyncStandbys = nil, nil
	f = &backupFake{states: []activities.ClusterState{lone}}
	res, err = runPgBackup(t, pgBackupInput(inventory.BackupSourceReplica), f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "pg-test-1" || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "no replica streams from the leader: the backup was taken on the leader pg-test-1") ||
		slices.Contains(f.calls, "server pg-test-1") {
		t.Errorf("calls %v; result %+v", f.calls, res)
	}
}

// Another run on the cluster, or no leader that takes writes: refused, nothing backed up.
func TestPgBackupRefused(t *testing.T) {
	busy := temporal.NewNonRetryableApplicationError("cluster pg-test is busy: pitr-restore/pg-test (run r0) is running", activities.ErrClusterBusy, nil)
	noLeader := activities.ClusterState{View: "pg-test-2 replica/stopped"}
	for name, f := range map[string]*backupFake{
		"busy":      {busy: busy, beforeLock: true, states: []activities.ClusterState{threeMemberState()}},
		"no leader": {states: []activities.ClusterState{noLeader}},
	} {
		res, err := runPgBackup(t, pgBackupInput(inventory.BackupSourceLeader), f)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != PgBackupRefusedType || !strings.HasSuffix(app.Message(), "; nothing was changed") || res.Outcome != "refused" {
			t.Errorf("%s: err %v, result %+v", name, err, res)
		}
		if slices.ContainsFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, "backup ") }) {
			t.Errorf("%s: a backup was taken: %v", name, f.calls)
		}
		if name == "busy" && !strings.Contains(app.Message(), "pitr-restore/pg-test (run r0) is running") {
			t.Errorf("the refusal does not name the run holding the cluster: %s", app.Message())
		}
	}
}

// A failover during the backup: the run fails with pgBackRest's words, says the leader moved,
// that nothing was recorded and how to take it again; nothing expires.
func TestPgBackupFailoverMidBackup(t *testing.T) {
	after := threeMemberState()
	after.Leader = "pg-test-2"
	f := &backupFake{states: []activities.ClusterState{threeMemberState(), after},
		backup: func(activities.BackupInput) (activities.StepResult, error) {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError(
				"pgBackRest's incr backup of pg-test on pg-test-1 failed: ERROR: [056]: unable to find primary cluster - cannot proceed", activities.ErrBackupFailed, nil)
		}}
	res, err := runPgBackup(t, pgBackupInput(inventory.BackupSourceLeader), f)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgBackupFailedType || res.Outcome != "failed" {
		t.Fatalf("err %v, result %+v", err, res)
	}
	for _, want := range []string{"unable to find primary cluster", "the leader changed during the backup (pg-test-1 → pg-test-2)",
		"no backup was recorded", "`pigwf start pg-backup --cluster pg-test --type incr` again"} {
		if !strings.Contains(app.Message(), want) {
			t.Errorf("message lacks %q: %s", want, app.Message())
		}
	}
	if slices.Contains(f.calls, "expire pg-test-1") {
		t.Errorf("expired after a failed backup: %v", f.calls)
	}
}
