package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/pitr"
)

// The plan the mocked precheck answers with: pg-test-1 leads on timeline 1 and restores.
func pitrTestPlan(t *testing.T) activities.PITRPlan {
	t.Helper()
	target := pitrTestTarget(t).WithTimeline(1)
	return activities.PITRPlan{Leader: "pg-test-1", LeaderTimeline: 1, LeaderLSN: "0/7000000", Sysid: "7300000000000000001",
		RestoreNode: "pg-test-1", Target: target, TargetText: target.String(), Backup: "20261130-062326F", NewTimeline: 2,
		Kept: []string{"pg-test-1: /pg/data.before-pitr-KEY", "pg-test-2: /pg/data.before-pitr-KEY", "pg-test-3: /pg/data.before-pitr-KEY"}}
}

func pitrTestTarget(t *testing.T) pitr.Target {
	t.Helper()
	target, err := pitr.Parse(pitr.Flags{Time: "2026-11-30T09:00:00+02:00"})
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func pitrTestInput(t *testing.T) PITRRestoreInput {
	in := PITRRestoreInput{Cluster: "pg-test", Target: pitrTestTarget(t), Reason: "orders dropped at 09:01", RequestedBy: "carol",
		Spec:     activities.PITRSpec{Cluster: "pg-test", DataDir: "/pg/data", BinDir: "/usr/pgsql/bin", Port: 5432, RepoPath: "/pg/backup"},
		DCS:      activities.DCSInput{Endpoints: []string{"http://10.0.0.11:2379"}, Namespace: "/pigwf", Cluster: "pg-test"},
		Approval: ApprovalPolicy{Approvers: []string{"alice"}, Timeout: time.Hour}}
	for _, n := range []string{"1", "2", "3"} {
		addr := "10.0.0.1" + n
		in.Members = append(in.Members, activities.PITRMember{Name: "pg-test-" + n, APIURL: "http://" + addr + ":8008",
			Node: activities.Node{Addr: addr, Name: "pg-test-" + n, SSHHost: addr}})
	}
	return in
}

// pitrFake records every activity call as "<member>/<step>" or "control/<step>", in the order
// the workflow made them, with its input; fail makes a call fail (non-retryable, so no test
// waits on retries).
type pitrFake struct {
	plan  activities.PITRPlan
	fail  map[string]error
	mu    sync.Mutex
	calls []string
	ins   map[string][]any
	notes []string
	// leftovers is what the cleanup's listing finds.
	leftovers []activities.PITRLeftover
}

func newPITRFake(t *testing.T) *pitrFake {
	return &pitrFake{plan: pitrTestPlan(t), fail: map[string]error{}, ins: map[string][]any{}}
}

func (f *pitrFake) call(name string, in any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.ins[name] = append(f.ins[name], in)
	return f.fail[name]
}

func (f *pitrFake) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *pitrFake) ran(name string) bool { return slices.Contains(f.snapshot(), name) }

// pitrOnly is the single input of a call that ran once.
func pitrOnly[I any](t *testing.T, f *pitrFake, name string) I {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ins[name]) != 1 {
		t.Fatalf("%s ran %d times, want once; calls: %v", name, len(f.ins[name]), f.calls)
	}
	return f.ins[name][0].(I)
}

func pitrFailNow(name string) error {
	return temporal.NewNonRetryableApplicationError(name+" failed (test)", "TestFailure", nil)
}

// What the mocked steps report that later steps read.
var pitrFacts = map[string]map[string]string{
	activities.StepPITRPromote:  {"timeline": "2"},
	activities.StepPITRFinalize: {"checkpoint_lsn": "0/9000028"},
	activities.StepPITRBackup:   {"backup": "20261130-101500F"},
}

// pitrStepMock is an activity reporting a StepResult, named from its input.
func pitrStepMock[I any](f *pitrFake, step string, node func(I) string) func(context.Context, I) (activities.StepResult, error) {
	return func(_ context.Context, in I) (activities.StepResult, error) {
		if err := f.call(node(in)+"/"+step, in); err != nil {
			return activities.StepResult{}, err
		}
		return activities.StepResult{Changed: true, Changes: []string{"did " + step}, Facts: pitrFacts[step]}, nil
	}
}

func pitrControl[I any](I) string                       { return "control" }
func pitrMemberName(in activities.PITRNodeInput) string { return in.Member }

func newPITREnv(f *pitrFake) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{Approvals: testApprovals}
	env.RegisterActivity(a)
	env.OnActivity(a.PITRPrecheck, mockAny, mockAny).Return(func(_ context.Context, in activities.PITRCheckInput) (activities.PITRPlan, error) {
		if err := f.call("control/precheck", in); err != nil {
			return activities.PITRPlan{}, err
		}
		return f.plan, nil
	})
	env.OnActivity(a.PITRPause, mockAny, mockAny).Return(pitrStepMock(f, "pause-ha", pitrControl[activities.PITRHAInput]))
	env.OnActivity(a.PITRStop, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRStop, func(in activities.PITRStopInput) string { return in.Member }))
	env.OnActivity(a.PITRKeepAside, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRAside, pitrMemberName))
	env.OnActivity(a.PITRRestore, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRRestore, func(in activities.PITRRestoreInput) string { return in.Member }))
	env.OnActivity(a.PITRStartRecovery, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRRecover, pitrMemberName))
	env.OnActivity(a.PITRReachTarget, mockAny, mockAny).Return(func(_ context.Context, in activities.PITRReachInput) (activities.RecoveryProof, error) {
		if err := f.call(in.Member+"/reach-target", in); err != nil {
			return activities.RecoveryProof{}, err
		}
		return activities.RecoveryProof{StopLine: "LOG:  recovery stopping before commit of transaction 745, time 2026-11-30 07:00:01.5+00",
			ReplayLSN: "0/8000100", Paused: true}, nil
	})
	env.OnActivity(a.PITRPromote, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRPromote, pitrMemberName))
	env.OnActivity(a.PITRFinalize, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRFinalize, func(in activities.PITRFinalizeInput) string { return in.Member }))
	env.OnActivity(a.PITRHandOver, mockAny, mockAny).Return(pitrStepMock(f, "hand-over", pitrControl[activities.PITRHandOverInput]))
	env.OnActivity(a.PITRResume, mockAny, mockAny).Return(pitrStepMock(f, "resume-ha", pitrControl[activities.PITRHAInput]))
	// The members coming back (wait-cluster) and the final check (verify: any leader) are one activity.
	env.OnActivity(a.PITRWaitCluster, mockAny, mockAny).Return(func(ctx context.Context, in activities.PITRWaitInput) (activities.StepResult, error) {
		step := "wait-cluster"
		if in.AnyLeader {
			step = "verify"
		}
		return pitrStepMock(f, step, pitrControl[activities.PITRWaitInput])(ctx, in)
	})
	env.OnActivity(a.PITRBackup, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRBackup, func(in activities.PITRBackupInput) string { return in.Member }))
	env.OnActivity(a.PITRCheck, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRCheck, func(in activities.PITRBackupInput) string { return in.Member }))
	env.OnActivity(a.PITRPutBack, mockAny, mockAny).Return(pitrStepMock(f, activities.StepPITRPutBack, pitrMemberName))
	env.OnActivity(a.PITRCleanupList, mockAny, mockAny).Return(func(_ context.Context, in activities.PITRCleanupInput) ([]activities.PITRLeftover, error) {
		if err := f.call("control/cleanup-list", in); err != nil {
			return nil, err
		}
		return f.leftovers, nil
	})
	env.OnActivity(a.PITRCleanupMember, mockAny, mockAny).Return(pitrStepMock(f, "cleanup", func(in activities.PITRCleanupInput) string { return in.Members[0].Name }))
	env.OnActivity(a.Notify, mockAny, mockAny).Return(func(_ context.Context, n activities.Notification) (string, error) {
		f.mu.Lock()
		f.notes = append(f.notes, n.Event)
		f.mu.Unlock()
		return "ok", nil
	})
	return env
}

// pitrCheckCalls asserts the calls ran group after group; the calls of one group (steps run on
// members in parallel) may run in any order among themselves.
func pitrCheckCalls(t *testing.T, f *pitrFake, groups ...[]string) {
	t.Helper()
	got := f.snapshot()
	var want []string
	i := 0
	for _, g := range groups {
		want = append(want, g...)
		if i+len(g) > len(got) {
			break
		}
		chunk := slices.Clone(got[i : i+len(g)])
		slices.Sort(chunk)
		w := slices.Sorted(slices.Values(g))
		if !slices.Equal(chunk, w) {
			break
		}
		i += len(g)
	}
	if len(got) != len(want) || i != len(got) {
		t.Errorf("calls:\n got  %v\n want %v (in this order; parallel steps in any order among themselves)", got, want)
	}
}

// pitrEach is one step's call on every member.
func pitrEach(step string, members ...string) []string {
	var out []string
	for _, m := range members {
		out = append(out, m+"/"+step)
	}
	return out
}

func pitrOne(call string) []string { return []string{call} }

var pitrAll = []string{"pg-test-1", "pg-test-2", "pg-test-3"}

// pitrFailure is the run's error type and the result it carries.
func pitrFailure(t *testing.T, env *testsuite.TestWorkflowEnvironment) (string, PITRRestoreResult) {
	t.Helper()
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("want the run to fail with an application error, got %v", err)
	}
	var res PITRRestoreResult
	if err := app.Details(&res); err != nil {
		t.Fatalf("error details: %v", err)
	}
	return app.Type(), res
}

func queryProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) Progress {
	t.Helper()
	val, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := val.Get(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pitrStateOf(p Progress, node, step string) string {
	for _, s := range p.Steps {
		if s.Node == node && s.Step == step {
			return s.State
		}
	}
	return "(not planned)"
}

func pitrDecide(env *testsuite.TestWorkflowEnvironment, after time.Duration, decision string) {
	signal(env, after, ApprovalDecision{Decision: decision, Approver: "alice"})
}

// Case 1: an approved run goes forward in order and reports the new timeline and backup.
func TestPITRRestoreApprovedRunsInOrder(t *testing.T) {
	f := newPITRFake(t)
	env := newPITREnv(f)
	pitrDecide(env, time.Minute, DecisionApprove)
	env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PITRRestoreResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	pitrCheckCalls(t, f,
		pitrOne("control/precheck"),
		pitrOne("control/pause-ha"),
		pitrOne("pg-test-1/stop"),
		pitrEach("stop", "pg-test-2", "pg-test-3"),
		pitrEach("keep-aside", pitrAll...),
		pitrOne("pg-test-1/restore"), pitrOne("pg-test-1/start-recovery"), pitrOne("pg-test-1/reach-target"),
		pitrOne("pg-test-1/promote"), pitrOne("pg-test-1/finalize"),
		pitrOne("control/hand-over"), pitrOne("control/resume-ha"), pitrOne("control/wait-cluster"),
		pitrOne("pg-test-1/full-backup"), pitrOne("pg-test-1/pgbackrest-check"), pitrOne("control/verify"))

	if res.Outcome != "restored" || res.NewTimeline != 2 || res.NewBackup != "20261130-101500F" {
		t.Errorf("outcome %q, new timeline %d, new backup %q", res.Outcome, res.NewTimeline, res.NewBackup)
	}
	if res.Approval.Approver != "alice" || !res.Approval.Approved() {
		t.Errorf("approval = %+v", res.Approval)
	}
	if stop := pitrOnly[activities.PITRStopInput](t, f, "pg-test-1/stop"); !stop.SwitchWAL || stop.Spec.Key != res.Key || res.Key == "" {
		t.Errorf("restore node's stop = %+v (run key %q): want SwitchWAL and the run's key", stop, res.Key)
	}
	for _, m := range []string{"pg-test-2", "pg-test-3"} {
		if stop := pitrOnly[activities.PITRStopInput](t, f, m+"/stop"); stop.SwitchWAL {
			t.Errorf("%s's stop switched WAL", m)
		}
	}
	if r := pitrOnly[activities.PITRRestoreInput](t, f, "pg-test-1/restore"); r.Backup != "20261130-062326F" || len(r.Args) == 0 || r.Latest {
		t.Errorf("restore input = %+v", r)
	}
	if fin := pitrOnly[activities.PITRFinalizeInput](t, f, "pg-test-1/finalize"); fin.Timeline != 2 {
		t.Errorf("finalize timeline = %d, want promote's 2", fin.Timeline)
	}
	ho := pitrOnly[activities.PITRHandOverInput](t, f, "control/hand-over")
	if ho.Holder != "pg-test-1" || ho.Timeline != 2 || ho.Optime != "0/9000028" || ho.IfPaused {
		t.Errorf("hand-over = holder %q timeline %d optime %q if-paused %v; want pg-test-1, 2, finalize's 0/9000028, false",
			ho.Holder, ho.Timeline, ho.Optime, ho.IfPaused)
	}
	if w := pitrOnly[activities.PITRWaitInput](t, f, "control/wait-cluster"); w.Leader != "pg-test-1" || w.Timeline != 2 {
		t.Errorf("wait-cluster = leader %q timeline %d", w.Leader, w.Timeline)
	}
	if b := pitrOnly[activities.PITRBackupInput](t, f, "pg-test-1/full-backup"); b.Timeline != 2 {
		t.Errorf("full backup timeline = %d", b.Timeline)
	}
	if v := pitrOnly[activities.PITRWaitInput](t, f, "control/verify"); !v.AnyLeader || v.Timeline != 2 || len(v.Members) != 3 {
		t.Errorf("verify = %+v, want any leader on timeline 2 or later, every member", v)
	}
	if b := pitrOnly[activities.PITRBackupInput](t, f, "pg-test-1/full-backup"); len(b.Members) != 3 || b.DCS.Cluster != "pg-test" {
		t.Errorf("full backup does not know the members and the DCS to find the leader: %+v", b)
	}
	p := queryProgress(t, env)
	if p.Phase != PhaseDone {
		t.Errorf("phase = %q", p.Phase)
	}
	for _, s := range p.Steps {
		if s.State != StateChanged && s.State != StateUnchanged {
			t.Errorf("step %s/%s ended %s", s.Node, s.Step, s.State)
		}
	}
}

// Case 2: a refused precheck changes nothing and asks nobody.
func TestPITRRestorePrecheckRefused(t *testing.T) {
	f := newPITRFake(t)
	f.fail["control/precheck"] = temporal.NewNonRetryableApplicationError("pitr-restore refused, nothing was changed: the target lies after the leader's present",
		activities.ErrPITRRefused, nil)
	env := newPITREnv(f)
	env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
	typ, res := pitrFailure(t, env)
	if typ != PITRRestoreRejectedType || res.Outcome != "refused" {
		t.Errorf("type %q outcome %q", typ, res.Outcome)
	}
	pitrCheckCalls(t, f, pitrOne("control/precheck"))
	if slices.Contains(f.notes, "approval-requested") {
		t.Error("a refused run asked for approval")
	}
}

// Case 3: a dry run only prechecks and shows every later step skipped.
func TestPITRRestoreDryRun(t *testing.T) {
	f := newPITRFake(t)
	env := newPITREnv(f)
	in := pitrTestInput(t)
	in.DryRun = true
	env.ExecuteWorkflow(PITRRestore, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PITRRestoreResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "dry run" || res.Plan.Backup != "20261130-062326F" {
		t.Errorf("outcome %q, plan %+v", res.Outcome, res.Plan)
	}
	pitrCheckCalls(t, f, pitrOne("control/precheck"))
	if len(f.notes) != 0 || res.Approval.Decision != "" {
		t.Errorf("a dry run waited for approval: notifications %v, approval %+v", f.notes, res.Approval)
	}
	p := queryProgress(t, env)
	if p.Phase != PhaseDone || len(p.Steps) < 10 {
		t.Fatalf("progress = %+v", p)
	}
	for _, s := range p.Steps {
		want := StateSkipped
		if s.Step == "precheck" || s.Step == exclusiveStep.name {
			want = StateUnchanged
		}
		if s.State != want {
			t.Errorf("step %s/%s is %s, want %s", s.Node, s.Step, s.State, want)
		}
	}
}

// Cases 4 and 5: no approval changes nothing.
func TestPITRRestoreNotApproved(t *testing.T) {
	for _, c := range []struct {
		name    string
		decide  func(env *testsuite.TestWorkflowEnvironment)
		outcome string
	}{
		{"4 rejected", func(env *testsuite.TestWorkflowEnvironment) { pitrDecide(env, time.Minute, DecisionReject) }, "rejected"},
		{"5 timed out", func(*testsuite.TestWorkflowEnvironment) {}, "timed out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPITRFake(t)
			env := newPITREnv(f)
			in := pitrTestInput(t)
			in.Approval.Timeout = 10 * time.Minute
			c.decide(env)
			env.ExecuteWorkflow(PITRRestore, in)
			typ, res := pitrFailure(t, env)
			if typ != PITRRestoreRejectedType || res.Outcome != c.outcome {
				t.Errorf("type %q outcome %q, want %q %q", typ, res.Outcome, PITRRestoreRejectedType, c.outcome)
			}
			pitrCheckCalls(t, f, pitrOne("control/precheck"))
			p := queryProgress(t, env)
			if got := pitrStateOf(p, "", "approval"); got != StateFailed {
				t.Errorf("approval step %s", got)
			}
			if got := pitrStateOf(p, "", "pause-ha"); got != StateSkipped {
				t.Errorf("pause-ha step %s", got)
			}
		})
	}
}

// pitrRolledBack is what a roll-back runs after the restore node's calls: every member's original
// data back, the leader key handed back to the original leader, HA resumed, the cluster awaited.
func pitrRolledBack() [][]string {
	return [][]string{pitrEach("put-back", pitrAll...), pitrOne("control/hand-over"), pitrOne("control/resume-ha"), pitrOne("control/wait-cluster")}
}

// pitrCheckHandBack asserts the roll-back named the original leader with its timeline and position.
func pitrCheckHandBack(t *testing.T, f *pitrFake) {
	t.Helper()
	ho := pitrOnly[activities.PITRHandOverInput](t, f, "control/hand-over")
	if !ho.IfPaused || ho.Holder != f.plan.Leader || ho.Timeline != f.plan.LeaderTimeline || ho.Optime != f.plan.LeaderLSN {
		t.Errorf("hand-back = holder %q timeline %d optime %q if-paused %v; want %s, %d, %s, true",
			ho.Holder, ho.Timeline, ho.Optime, ho.IfPaused, f.plan.Leader, f.plan.LeaderTimeline, f.plan.LeaderLSN)
	}
	if w := pitrOnly[activities.PITRWaitInput](t, f, "control/wait-cluster"); w.Leader != f.plan.Leader || w.Timeline != f.plan.LeaderTimeline {
		t.Errorf("wait-cluster = leader %q timeline %d; want %s, %d", w.Leader, w.Timeline, f.plan.Leader, f.plan.LeaderTimeline)
	}
}

// Case 6: a failure before the promotion puts the original data back and hands the cluster back
// to the member that led.
func TestPITRRestoreFailureBeforePromotionRollsBack(t *testing.T) {
	for _, c := range []struct {
		name        string
		restoreNode string
		fail        string
		upTo        [][]string // the calls up to and including the failed one
	}{
		{"6a reach-target fails", "pg-test-1", "pg-test-1/reach-target", [][]string{
			pitrOne("control/precheck"), pitrOne("control/pause-ha"), pitrOne("pg-test-1/stop"), pitrEach("stop", "pg-test-2", "pg-test-3"),
			pitrEach("keep-aside", pitrAll...), pitrOne("pg-test-1/restore"), pitrOne("pg-test-1/start-recovery"), pitrOne("pg-test-1/reach-target")}},
		// A plan whose restore node is not the leader: the hand-back still names the leader.
		{"6b restore fails on a restore node that did not lead", "pg-test-2", "pg-test-2/restore", [][]string{
			pitrOne("control/precheck"), pitrOne("control/pause-ha"), pitrOne("pg-test-2/stop"), pitrEach("stop", "pg-test-1", "pg-test-3"),
			pitrEach("keep-aside", pitrAll...), pitrOne("pg-test-2/restore")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPITRFake(t)
			f.plan.RestoreNode = c.restoreNode
			f.fail[c.fail] = pitrFailNow(c.fail)
			env := newPITREnv(f)
			pitrDecide(env, time.Minute, DecisionApprove)
			env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
			typ, res := pitrFailure(t, env)
			if typ != PITRRestoreRolledBackType || res.Outcome != "rolled back" {
				t.Errorf("type %q outcome %q, want %q, rolled back", typ, res.Outcome, PITRRestoreRolledBackType)
			}
			pitrCheckCalls(t, f, append(c.upTo, pitrRolledBack()...)...)
			pitrCheckHandBack(t, f)
			p := queryProgress(t, env)
			if got := pitrStateOf(p, c.restoreNode, activities.StepPITRPromote); got != StateSkipped {
				t.Errorf("promote step %s", got)
			}
			if got := pitrStateOf(p, "", "hand-back"); got != StateChanged {
				t.Errorf("hand-back step %s", got)
			}
		})
	}
}

// Case 6d: the run's progress lists the roll-back's steps in the order they ran, after the
// failed step: the roll-back resumes HA through a step of its own, not through the forward
// resume-ha step, which stays skipped among the forward steps that never ran.
func TestPITRRestoreRollBackProgressOrder(t *testing.T) {
	f := newPITRFake(t)
	f.fail["pg-test-1/reach-target"] = pitrFailNow("reach-target")
	env := newPITREnv(f)
	pitrDecide(env, time.Minute, DecisionApprove)
	env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
	if typ, _ := pitrFailure(t, env); typ != PITRRestoreRolledBackType {
		t.Fatalf("type %q", typ)
	}
	var after []string // steps listed after the failed one that ran
	failed := false
	for _, s := range queryProgress(t, env).Steps {
		switch {
		case s.State == StateFailed:
			failed = true
		case failed && s.State != StateSkipped:
			after = append(after, s.Step)
		}
	}
	if len(after) != 6 || !slices.Equal(after[:4], []string{"put-back", "put-back", "put-back", "hand-back"}) ||
		!strings.HasPrefix(after[4], "resume") || after[5] != "members-back" {
		t.Errorf("steps listed after the failure: %v; want put-back x3, hand-back, a resume step, members-back", after)
	}
}

// Case 6c: when putting the original data back fails, the run says so (failed, not rolled back)
// and does not resume HA around a member without its data.
func TestPITRRestoreFailedRollBack(t *testing.T) {
	f := newPITRFake(t)
	f.fail["pg-test-1/reach-target"] = pitrFailNow("reach-target")
	f.fail["pg-test-2/put-back"] = pitrFailNow("put-back")
	env := newPITREnv(f)
	pitrDecide(env, time.Minute, DecisionApprove)
	env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
	typ, res := pitrFailure(t, env)
	if typ != PITRRestoreFailedType || res.Outcome != "failed" {
		t.Errorf("type %q outcome %q", typ, res.Outcome)
	}
	for _, c := range []string{"control/hand-over", "control/resume-ha", "control/wait-cluster", "pg-test-1/promote"} {
		if f.ran(c) {
			t.Errorf("%s ran after a failed put-back", c)
		}
	}
}

// Case 7: --inspect waits at the target for a decision sent for it.
func TestPITRRestoreInspect(t *testing.T) {
	t.Run("7a a duplicate of the first approval does not approve the promotion", func(t *testing.T) {
		f := newPITRFake(t)
		env := newPITREnv(f)
		in := pitrTestInput(t)
		in.Inspect = true
		// Two approvals in a row: the first opens the gate, the second must not open the next one.
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(ApproveSignal, signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "go"}))
			env.SignalWorkflow(ApproveSignal, signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "go (again)"}))
		}, time.Minute)
		var waited Progress
		env.RegisterDelayedCallback(func() { waited = queryProgress(t, env) }, 5*time.Minute)
		var promotedEarly bool
		env.RegisterDelayedCallback(func() { promotedEarly = f.ran("pg-test-1/promote") }, 5*time.Minute)
		signal(env, 10*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "the orders are there"})
		env.ExecuteWorkflow(PITRRestore, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		var res PITRRestoreResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if waited.Phase != PhaseWaitingForApproval || pitrStateOf(waited, "", "inspect") != StateRunning || promotedEarly {
			t.Errorf("at 5 minutes: phase %q, inspect %s, promoted %v; want waiting for the inspection",
				waited.Phase, pitrStateOf(waited, "", "inspect"), promotedEarly)
		}
		if res.Outcome != "restored" || res.Inspection == nil || res.Inspection.Comment != "the orders are there" ||
			res.Inspection.DecidedAt.Sub(res.Approval.DecidedAt) != 9*time.Minute {
			t.Fatalf("outcome %q, approval %+v, inspection %+v", res.Outcome, res.Approval, res.Inspection)
		}
		if res.Approval.Comment != "go" {
			t.Errorf("first approval = %+v", res.Approval)
		}
		pitrCheckCalls(t, f,
			pitrOne("control/precheck"), pitrOne("control/pause-ha"), pitrOne("pg-test-1/stop"), pitrEach("stop", "pg-test-2", "pg-test-3"),
			pitrEach("keep-aside", pitrAll...), pitrOne("pg-test-1/restore"), pitrOne("pg-test-1/start-recovery"), pitrOne("pg-test-1/reach-target"),
			pitrOne("pg-test-1/promote"), pitrOne("pg-test-1/finalize"),
			pitrOne("control/hand-over"), pitrOne("control/resume-ha"), pitrOne("control/wait-cluster"),
			pitrOne("pg-test-1/full-backup"), pitrOne("pg-test-1/pgbackrest-check"), pitrOne("control/verify"))
	})

	// The duplicate decision dropped before the inspection is recorded as ignored in the
	// inspection's state (and so in the approval query while it waits), not lost.
	t.Run("7d the duplicate is recorded as ignored", func(t *testing.T) {
		f := newPITRFake(t)
		env := newPITREnv(f)
		in := pitrTestInput(t)
		in.Inspect = true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(ApproveSignal, signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "go"}))
			env.SignalWorkflow(ApproveSignal, signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "go (again)"}))
		}, time.Minute)
		pitrDecide(env, 10*time.Minute, DecisionApprove)
		env.ExecuteWorkflow(PITRRestore, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		var res PITRRestoreResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Inspection == nil {
			t.Fatal("no inspection")
		}
		ignored := append(slices.Clone(res.Approval.Ignored), res.Inspection.Ignored...)
		if len(ignored) != 1 || ignored[0].Comment != "go (again)" {
			t.Errorf("ignored decisions = %+v; want the duplicate approval", ignored)
		}
	})

	for _, c := range []struct {
		name    string
		decide  func(env *testsuite.TestWorkflowEnvironment)
		outcome string
	}{
		{"7b rejected at the target", func(env *testsuite.TestWorkflowEnvironment) { pitrDecide(env, 10*time.Minute, DecisionReject) }, "rejected, rolled back"},
		{"7c timed out at the target", func(*testsuite.TestWorkflowEnvironment) {}, "timed out, rolled back"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPITRFake(t)
			env := newPITREnv(f)
			in := pitrTestInput(t)
			in.Inspect = true
			in.Approval.Timeout = 30 * time.Minute
			pitrDecide(env, time.Minute, DecisionApprove)
			c.decide(env)
			env.ExecuteWorkflow(PITRRestore, in)
			typ, res := pitrFailure(t, env)
			if typ != PITRRestoreRolledBackType || res.Outcome != c.outcome {
				t.Errorf("type %q outcome %q, want %q %q", typ, res.Outcome, PITRRestoreRolledBackType, c.outcome)
			}
			pitrCheckCalls(t, f, append([][]string{
				pitrOne("control/precheck"), pitrOne("control/pause-ha"), pitrOne("pg-test-1/stop"), pitrEach("stop", "pg-test-2", "pg-test-3"),
				pitrEach("keep-aside", pitrAll...), pitrOne("pg-test-1/restore"), pitrOne("pg-test-1/start-recovery"), pitrOne("pg-test-1/reach-target")},
				pitrRolledBack()...)...)
			pitrCheckHandBack(t, f)
			if pitrStateOf(queryProgress(t, env), "", "inspect") != StateFailed {
				t.Error("the inspect step did not fail")
			}
		})
	}
}

// Case 8: after the promotion the run goes forward: a failure never puts the old data back.
func TestPITRRestoreFailureAfterPromotion(t *testing.T) {
	for _, c := range []struct {
		name string
		fail string
	}{
		{"8a members do not come back", "control/wait-cluster"},
		{"8b the new full backup fails", "pg-test-1/full-backup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newPITRFake(t)
			f.fail[c.fail] = pitrFailNow(c.fail)
			env := newPITREnv(f)
			pitrDecide(env, time.Minute, DecisionApprove)
			env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
			typ, res := pitrFailure(t, env)
			if typ != PITRRestoreFailedType || res.Outcome != "failed" || res.NewTimeline != 2 {
				t.Errorf("type %q outcome %q new timeline %d", typ, res.Outcome, res.NewTimeline)
			}
			calls := f.snapshot()
			if !f.ran("pg-test-1/promote") || calls[len(calls)-1] != c.fail {
				t.Errorf("calls = %v: want the promotion, and nothing after %s", calls, c.fail)
			}
			for _, call := range calls {
				if strings.HasSuffix(call, "/"+activities.StepPITRPutBack) {
					t.Errorf("%s ran after the promotion", call)
				}
			}
			if pitrStateOf(queryProgress(t, env), "", "hand-back") != "(not planned)" {
				t.Error("a roll-back was planned after the promotion")
			}
		})
	}
}

// Case 6e: the pause finds another member leading than the precheck did (a failover raced the
// approval). Nothing was stopped, so the roll-back only lifts the pause: no hand-back (it would
// name the old leader over the new one) and no wait for the old leader.
func TestPITRRestoreLeaderChangedAtPause(t *testing.T) {
	f := newPITRFake(t)
	f.fail["control/pause-ha"] = pitrFailNow("pause-ha")
	env := newPITREnv(f)
	pitrDecide(env, time.Minute, DecisionApprove)
	env.ExecuteWorkflow(PITRRestore, pitrTestInput(t))
	typ, res := pitrFailure(t, env)
	if typ != PITRRestoreRolledBackType || res.Outcome != "rolled back" {
		t.Errorf("type %q outcome %q", typ, res.Outcome)
	}
	pitrCheckCalls(t, f, pitrOne("control/precheck"), pitrOne("control/pause-ha"), pitrEach("put-back", pitrAll...), pitrOne("control/resume-ha"))
	if p := pitrOnly[activities.PITRHAInput](t, f, "control/pause-ha"); p.Leader != f.plan.Leader {
		t.Errorf("pause asked to check leader %q, want the precheck's %s", p.Leader, f.plan.Leader)
	}
	p := queryProgress(t, env)
	for _, s := range []string{"hand-back", "members-back"} {
		if got := pitrStateOf(p, "", s); got != StateSkipped {
			t.Errorf("%s step %s, want skipped", s, got)
		}
	}
	if got := pitrStateOf(p, "", "resume-ha-back"); got != StateChanged && got != StateUnchanged {
		t.Errorf("resume-ha-back step %s", got)
	}
}

// Case 9: --cleanup lists what earlier runs kept, deletes it on the members that have any only
// after an approval, and restores nothing; rejected, nothing is deleted; with nothing to delete,
// nobody is asked.
func TestPITRRestoreCleanup(t *testing.T) {
	left := []activities.PITRLeftover{
		{Member: "pg-test-1", Path: "/pg/data.before-pitr-20261130T062332Z", Size: "30M"},
		{Member: "pg-test-1", Path: "/pg/data.pitr-failed-20261130T062211Z", Size: "30M"},
		{Member: "pg-test-3", Path: "/pg/data.before-pitr-20261130T062332Z", Size: "30M"},
	}
	for i, c := range []struct {
		leftovers []activities.PITRLeftover
		decision  string // "" = nobody decides
		outcome   string
		calls     [][]string
	}{
		{left, DecisionApprove, "cleaned", [][]string{pitrOne("control/cleanup-list"), pitrEach("cleanup", "pg-test-1", "pg-test-3")}},
		{left, DecisionReject, "rejected", [][]string{pitrOne("control/cleanup-list")}},
		{nil, "", "nothing to clean", [][]string{pitrOne("control/cleanup-list")}},
	} {
		f := newPITRFake(t)
		f.leftovers = c.leftovers
		env := newPITREnv(f)
		if c.decision != "" {
			pitrDecide(env, time.Minute, c.decision)
		}
		in := pitrTestInput(t)
		in.Cleanup, in.Target = true, pitr.Target{}
		env.ExecuteWorkflow(PITRRestore, in)
		var res PITRRestoreResult
		if c.decision == DecisionReject {
			typ, r := pitrFailure(t, env)
			if typ != PITRRestoreRejectedType {
				t.Errorf("case %d: type %q", i+1, typ)
			}
			res = r
		} else if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("case %d: %v", i+1, err)
		} else if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Outcome != c.outcome {
			t.Errorf("case %d: outcome %q, want %q", i+1, res.Outcome, c.outcome)
		}
		pitrCheckCalls(t, f, c.calls...)
		if c.decision == DecisionApprove {
			in := pitrOnly[activities.PITRCleanupInput](t, f, "pg-test-1/cleanup")
			if len(in.Remove) != 3 || len(in.Members) != 1 || in.Members[0].Name != "pg-test-1" {
				t.Errorf("case %d: cleanup input %+v, want the approved list and one member", i+1, in)
			}
		}
	}
}
