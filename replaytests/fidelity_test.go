package replaytests

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/workflows"
)

// The replayer matches only the kind, ID and type of each command against the history: an
// activity scheduled with another timeout, retry policy or input, or a run that returns another
// result, replays cleanly. Those are part of a workflow's contract with its running executions too
// (a resumed run schedules its remaining activities with the new code's options), so this test
// records what the current code asks for while it replays and compares it with the history.

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

func TestReplayedCommandsMatchHistories(t *testing.T) {
	for _, file := range histories(t) {
		t.Run(historyName(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{Interceptors: []interceptor.WorkerInterceptor{rec}})
			if err != nil {
				t.Fatal(err)
			}
			workflows.Register(replayer)
			if err := replayer.ReplayWorkflowHistory(nil, hist); err != nil {
				t.Fatalf("replay: %v", err)
			}
			compareActivities(t, hist, rec.activities)
			compareOutcome(t, hist, rec)
		})
	}
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
	if msg := samePayloads([]any{rec.result}, done.GetResult()); msg != "" {
		t.Errorf("result %s", msg)
	}
}

// samePayloads compares values with recorded payloads as JSON documents, so field order and
// encoding details do not matter; "" means equal.
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
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("%d differs:\n  now:     %s\n  history: %s", i, gotPs[i].GetData(), wantPs[i].GetData())
		}
	}
	return ""
}
