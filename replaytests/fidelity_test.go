package replaytests

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The replayer matches only the kind, ID and type of each command against the history: an
// activity scheduled with another timeout, retry policy or input, or a run that returns another
// result, replays cleanly. So this test records what the current code asks for while it replays
// the newest history of each workflow and compares it with that history: a restructuring must
// keep all of it. A deliberate change of options, inputs or results needs a newer history
// (`make replay-refresh`); older histories only have to replay.

// scheduled is one ExecuteActivity call the workflow made during the replay.
type scheduled struct {
	activityType string
	opts         workflow.ActivityOptions
	args         []any
}

type recorder struct {
	interceptor.WorkerInterceptorBase
	activities []scheduled
	returned   bool
	result     any
	err        error
}

func (r *recorder) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &recordingInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, rec: r}
}

type recordingInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	rec *recorder
}

func (i *recordingInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&recordingOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, rec: i.rec})
}

func (i *recordingInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	i.rec.returned, i.rec.result, i.rec.err = true, res, err
	return res, err
}

type recordingOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	rec *recorder
}

func (o *recordingOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.rec.activities = append(o.rec.activities, scheduled{activityType: activityType, opts: workflow.GetActivityOptions(ctx), args: args})
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func TestNewestHistoriesReproduced(t *testing.T) {
	for _, file := range newestHistories(t) {
		t.Run(historyName(file), func(t *testing.T) {
			hist := loadHistory(t, file)
			rec := &recorder{}
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{Interceptors: []interceptor.WorkerInterceptor{rec}})
			if err != nil {
				t.Fatal(err)
			}
			workflows.Register(replayer)
			// the run's own IDs: activities that carry them (the approval gate's signed
			// decisions name the run) get the inputs they got then
			if err := replayer.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{OriginalExecution: originalExecution(t, file, hist)}); err != nil {
				t.Fatalf("replay: %v", err)
			}
			compareActivities(t, hist, rec.activities)
			compareOutcome(t, hist, rec)
		})
	}
}

// originalExecution is the recorded run's workflow ID (pigwf's rule: <runbook>/<cluster>, the
// runbook being the history's directory and the cluster its input's) and run ID.
func originalExecution(t *testing.T, file string, hist *historypb.History) workflow.Execution {
	t.Helper()
	started := hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if started == nil || len(started.GetInput().GetPayloads()) == 0 {
		t.Fatalf("%s: the first event is not a start with an input", file)
	}
	var in struct {
		Cluster string `json:"cluster"`
	}
	if err := json.Unmarshal(started.GetInput().GetPayloads()[0].GetData(), &in); err != nil || in.Cluster == "" {
		t.Fatalf("%s: no cluster in the input: %v", file, err)
	}
	runbook := filepath.Base(filepath.Dir(file))
	return workflow.Execution{ID: starter.WorkflowID(runbook, in.Cluster), RunID: started.GetOriginalExecutionRunId()}
}

// newestHistories is, per workflow, the history of the run that started last.
func newestHistories(t *testing.T) []string {
	t.Helper()
	newest := map[string]string{}
	started := map[string]time.Time{}
	for _, file := range histories(t) {
		wfType, at, err := describe(loadHistory(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if at.After(started[wfType]) {
			newest[wfType], started[wfType] = file, at
		}
	}
	var files []string
	for _, f := range newest {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}

func compareActivities(t *testing.T, hist *historypb.History, got []scheduled) {
	t.Helper()
	var want []*historypb.ActivityTaskScheduledEventAttributes
	for _, e := range hist.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			want = append(want, a)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("the replay scheduled %d activities, the history %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		id := w.GetActivityId()
		if g.opts.ActivityID != "" && g.opts.ActivityID != id {
			t.Errorf("activity %d: ID %q, history %q", i, g.opts.ActivityID, id)
		}
		if g.activityType != w.GetActivityType().GetName() {
			t.Errorf("%s: type %s, history %s", id, g.activityType, w.GetActivityType().GetName())
		}
		if g.opts.StartToCloseTimeout != w.GetStartToCloseTimeout().AsDuration() {
			t.Errorf("%s: start-to-close %v, history %v", id, g.opts.StartToCloseTimeout, w.GetStartToCloseTimeout().AsDuration())
		}
		if g.opts.HeartbeatTimeout != w.GetHeartbeatTimeout().AsDuration() {
			t.Errorf("%s: heartbeat %v, history %v", id, g.opts.HeartbeatTimeout, w.GetHeartbeatTimeout().AsDuration())
		}
		// The server fills in what a retry policy leaves unset; compare what the code sets.
		rp, wrp := g.opts.RetryPolicy, w.GetRetryPolicy()
		switch {
		case rp == nil:
			t.Errorf("%s: no retry policy, history %v", id, wrp)
		case rp.InitialInterval != wrp.GetInitialInterval().AsDuration(),
			rp.BackoffCoefficient != 0 && rp.BackoffCoefficient != wrp.GetBackoffCoefficient(),
			rp.MaximumInterval != 0 && rp.MaximumInterval != wrp.GetMaximumInterval().AsDuration(),
			rp.MaximumAttempts != wrp.GetMaximumAttempts():
			t.Errorf("%s: retry policy %+v, history %v", id, *rp, wrp)
		}
		if msg := samePayloads(g.args, w.GetInput()); msg != "" {
			t.Errorf("%s: input %s", id, msg)
		}
	}
}

func compareOutcome(t *testing.T, hist *historypb.History, rec *recorder) {
	t.Helper()
	events := hist.GetEvents()
	last := events[len(events)-1]
	if !rec.returned {
		t.Fatalf("the replayed workflow did not return; the history ends with %s", last.GetEventType())
	}
	done := last.GetWorkflowExecutionCompletedEventAttributes()
	if done == nil {
		t.Skipf("the history ends with %s: only completed runs' results are compared", last.GetEventType())
	}
	if rec.err != nil {
		t.Fatalf("the replayed workflow failed (%v); the history completed", rec.err)
	}
	if rec.result == nil && len(done.GetResult().GetPayloads()) == 0 {
		return // a workflow that returns only an error (ClusterLock) records no result
	}
	if msg := samePayloads([]any{rec.result}, done.GetResult()); msg != "" {
		t.Errorf("result %s", msg)
	}
}

// samePayloads compares values with recorded payloads as JSON documents, so field order and
// encoding details do not matter, nor fields that one side leaves out and the other has at their
// zero value (a field added since the recording, an omitempty); "" means equal.
func samePayloads(values []any, recorded *commonpb.Payloads) string {
	dc := converter.GetDefaultDataConverter()
	ps, err := dc.ToPayloads(values...)
	if err != nil {
		return "cannot be encoded: " + err.Error()
	}
	gotPs, wantPs := ps.GetPayloads(), recorded.GetPayloads()
	if len(gotPs) != len(wantPs) {
		return fmt.Sprintf("has %d payloads, history %d", len(gotPs), len(wantPs))
	}
	for i := range gotPs {
		var g, w any
		if err := json.Unmarshal(gotPs[i].GetData(), &g); err != nil {
			return err.Error()
		}
		if err := json.Unmarshal(wantPs[i].GetData(), &w); err != nil {
			return err.Error()
		}
		if !sameJSON(g, w) {
			return fmt.Sprintf("%d differs:\n  now:     %s\n  history: %s", i, gotPs[i].GetData(), wantPs[i].GetData())
		}
	}
	return ""
}

func sameJSON(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, av := range am {
			if !sameJSON(av, bm[k]) {
				return false
			}
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok && !isZeroJSON(bv) {
				return false
			}
		}
		return true
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if !sameJSON(as[i], bs[i]) {
				return false
			}
		}
		return true
	}
	if isZeroJSON(a) && isZeroJSON(b) {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// isZeroJSON: null, false, 0, "", [] or {}.
func isZeroJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case float64:
		return v == 0
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}
