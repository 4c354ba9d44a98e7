package workflows

import (
	"errors"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/metrics/prom"
)

// metricsEnv is a switchover's test environment whose metrics go to reg, with the worker's
// run-result interceptor, as `pigwf worker` wires them.
func metricsEnv(f *switchFake) (*testsuite.TestWorkflowEnvironment, *prom.Registry) {
	reg := prom.NewRegistry()
	s := &testsuite.WorkflowTestSuite{}
	s.SetMetricsHandler(reg.Handler())
	env := newSwitchEnvOn(s, f, testApprovals)
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&RunMetrics{}}})
	return env, reg
}

// series is the value of the series of family name with labels (a counter's or gauge's value, a
// histogram's count and sum); ok false when there is none.
func series(t *testing.T, reg *prom.Registry, name string, labels map[string]string) (count, sum float64, ok bool) {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), 0, true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), 0, true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum(), true
			}
		}
	}
	return 0, 0, false
}

func TestMetricsOfAnApprovedSwitchover(t *testing.T) {
	f := &switchFake{}
	env, reg := metricsEnv(f)
	signal(env, 5*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// (A real worker's handler adds the SDK's namespace, task_queue and workflow_type; the test
	// environment's adds none.)
	run := map[string]string{metrics.LabelRunbook: SwitchoverRunbook, metrics.LabelCluster: "pg-test"}
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Counter, metrics.RunsStarted), run); n != 1 {
		t.Errorf("runs started: %g, want 1", n)
	}
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Counter, metrics.RunsFinished), with(run, metrics.LabelResult, metrics.ResultCompleted)); n != 1 {
		t.Errorf("runs finished completed: %g, want 1", n)
	}
	if _, _, ok := series(t, reg, metrics.Exposed(metrics.Counter, metrics.RunsFinished), with(run, metrics.LabelResult, metrics.ResultFailed)); ok {
		t.Error("a completed run was also counted as failed")
	}
	steps := metrics.Exposed(metrics.Timer, metrics.StepDuration)
	for _, st := range []step{switchoverPrecheck, switchoverSwitch, switchoverVerify} {
		want := StateUnchanged
		if st == switchoverSwitch {
			want = StateChanged
		}
		if n, _, _ := series(t, reg, steps, with(with(run, metrics.LabelStep, st.name), metrics.LabelState, want)); n != 1 {
			t.Errorf("step %s %s: %g ended, want 1", st.name, want, n)
		}
	}
	n, sum, _ := series(t, reg, metrics.Exposed(metrics.Timer, metrics.ApprovalWait), with(run, metrics.LabelDecision, DecisionApprove))
	if n != 1 || sum != (5*time.Minute).Seconds() {
		t.Errorf("approval wait: %g waits, %g s in all; want 1 of 300 s (the approval came after 5 minutes)", n, sum)
	}
}

func TestMetricsOfARejectedSwitchover(t *testing.T) {
	f := &switchFake{}
	env, reg := metricsEnv(f)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if env.GetWorkflowError() == nil {
		t.Fatal("a rejected switchover succeeded")
	}
	run := map[string]string{metrics.LabelRunbook: SwitchoverRunbook, metrics.LabelCluster: "pg-test"}
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Counter, metrics.RunsFinished), with(run, metrics.LabelResult, metrics.ResultNotApproved)); n != 1 {
		t.Errorf("runs finished not_approved: %g, want 1", n)
	}
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Timer, metrics.ApprovalWait), with(run, metrics.LabelDecision, DecisionReject)); n != 1 {
		t.Errorf("approval waits ended in reject: %g, want 1", n)
	}
	if _, _, ok := series(t, reg, metrics.Exposed(metrics.Timer, metrics.StepDuration), with(run, metrics.LabelStep, switchoverSwitch.name)); ok {
		t.Error("the switch step of a rejected run was counted")
	}
}

func TestMetricsOfAFailedStep(t *testing.T) {
	f := &switchFake{refuse: temporal.NewNonRetryableApplicationError("no healthy candidate", "Refused", nil)}
	env, reg := metricsEnv(f)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	if env.GetWorkflowError() == nil {
		t.Fatal("the run succeeded")
	}
	run := map[string]string{metrics.LabelRunbook: SwitchoverRunbook, metrics.LabelCluster: "pg-test"}
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Timer, metrics.StepDuration), with(with(run, metrics.LabelStep, "precheck"), metrics.LabelState, StateFailed)); n != 1 {
		t.Errorf("failed prechecks: %g, want 1", n)
	}
	// A precheck's refusal is SwitchoverNotApproved: nothing changed.
	if n, _, _ := series(t, reg, metrics.Exposed(metrics.Counter, metrics.RunsFinished), with(run, metrics.LabelResult, metrics.ResultNotApproved)); n != 1 {
		t.Errorf("runs finished not_approved: %g, want 1", n)
	}
}

func TestRunResult(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, metrics.ResultCompleted},
		{errors.New("boom"), metrics.ResultFailed},
		{temporal.NewCanceledError(), metrics.ResultCanceled},
		{fmt.Errorf("while waiting: %w", temporal.NewCanceledError()), metrics.ResultCanceled},
		{temporal.NewNonRetryableApplicationError("x", PITRRestoreRolledBackType, nil), metrics.ResultRolledBack},
		{temporal.NewNonRetryableApplicationError("x", PITRRestoreRejectedType, nil), metrics.ResultNotApproved},
		{temporal.NewNonRetryableApplicationError("x", SwitchoverFailedType, nil), metrics.ResultFailed},
		{&workflow.ContinueAsNewError{}, metrics.ResultContinued},
	} {
		if got := RunResult(tc.err); got != tc.want {
			t.Errorf("RunResult(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}
