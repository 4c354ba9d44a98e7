package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/internal/workerid"
)

func TestParseVersioning(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want Versioning
		bad  bool
	}{
		{in: "", want: VersioningAutoUpgrade},
		{in: "auto-upgrade", want: VersioningAutoUpgrade},
		{in: "pinned", want: VersioningPinned},
		{in: "off", want: VersioningOff},
		{in: "Pinned", bad: true},
		{in: "autoupgrade", bad: true},
	} {
		got, err := ParseVersioning(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadVersioning) {
				t.Errorf("%d: ParseVersioning(%q) = %v, %v; want ErrBadVersioning", i+1, tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%d: ParseVersioning(%q) = %v, %v; want %v", i+1, tc.in, got, err, tc.want)
		}
	}
}

func TestValidBuildID(t *testing.T) {
	for _, ok := range []string{DefaultBuildID(), "504f741a2b3c", "504f741a2b3c+modified", "v1.2.3"} {
		if err := validBuildID(ok); err != nil {
			t.Errorf("validBuildID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", `a"b`} {
		if validBuildID(bad) == nil {
			t.Errorf("validBuildID(%q) accepted", bad)
		}
	}
}

// stepBuilds reads from the run's history which builds ran its first and last workflow steps:
// the worker identity Temporal recorded (Identity names the build), as `temporal workflow show`
// prints it.
func stepBuilds(ctx context.Context, t *testing.T, c client.Client, id string) string {
	t.Helper()
	var builds []string
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetWorkflowTaskStartedEventAttributes(); a != nil {
			_, _, build, _ := workerid.Parse(a.GetIdentity())
			builds = append(builds, build)
		}
	}
	if len(builds) == 0 {
		t.Fatalf("run %s has no workflow step", id)
	}
	return builds[0] + "→" + builds[len(builds)-1]
}

func TestCurrentDecision(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		current  string
		lastPoll time.Time
		force    bool
		set      bool
		why      string
	}{
		{"b1", now, false, false, "this build is the current version"},
		{"b1", time.Time{}, true, false, "this build is the current version"},
		{"", time.Time{}, false, true, "the worker deployment had no current version"},
		{"b0", now.Add(-time.Second), true, true, "--make-current: this build replaces build b0"},
		{"b0", now.Add(-3 * time.Minute), false, true, "no worker of the current build b0 has polled for 2m0s"},
		{"b0", time.Time{}, false, true, "no worker of the current build b0 has polled for 2m0s"},
		{"b0", now.Add(-90 * time.Second), false, false, "build b0 is current and its workers poll: this worker gets no tasks until its build is promoted (pigwf worker promote --build-id b1)"},
	} {
		set, why := currentDecision("b1", tc.current, tc.lastPoll, now, tc.force)
		if set != tc.set || why != tc.why {
			t.Errorf("%d: currentDecision = %v, %q; want %v, %q", i+1, set, why, tc.set, tc.why)
		}
	}
}

// versionProbe answers which build ran its first step (once it ran), then waits for a signal.
// (The last step's build is read from the history: GetCurrentBuildID after a replay on another
// worker names the replayed step's build.)
func versionProbe(ctx workflow.Context) error {
	first := workflow.GetInfo(ctx).GetCurrentBuildID()
	if err := workflow.SetQueryHandler(ctx, "first", func() (string, error) { return first, nil }); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// A worker fleet upgraded from build A to build B on a real server: the first worker makes its
// build current, a second build's worker does not take over until promoted, new runs then go
// to B; a run in flight finishes on A when pinned, and moves to B with auto-upgrade once A's
// workers are stopped.
func TestUpgradeMovesRunsAsTheVersioningSays(t *testing.T) {
	for _, tc := range []struct {
		v        Versioning
		stopOld  bool   // build A's worker stops after the promotion, as in a rolling upgrade
		inFlight string // what the run started on A returns
	}{
		// Pinned: the run started on A ends on A even though B is current.
		{VersioningPinned, false, "build-a→build-a"},
		// Auto-upgrade: with A's workers gone, the run's next step runs on B. (While A still
		// runs, the server may keep the run's steps on A's sticky queue: never back from B to A.)
		{VersioningAutoUpgrade, true, "build-a→build-b"},
	} {
		t.Run(string(tc.v), func(t *testing.T) {
			c := testenv.Server(t).Dial(t).C
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const queue = "versioning-test"
			startWorker := func(build string) sdkworker.Worker {
				w := sdkworker.New(c, queue, sdkworker.Options{Identity: Identity(build), DeploymentOptions: tc.v.deploymentOptions(build)})
				w.RegisterWorkflowWithOptions(versionProbe, workflow.RegisterOptions{Name: "VersionProbe"})
				if err := w.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(w.Stop)
				return w
			}
			start := func(id string) client.WorkflowRun {
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "VersionProbe")
				if err != nil {
					t.Fatal(err)
				}
				return run
			}
			firstBuild := func(id string) string {
				for ctx.Err() == nil {
					v, err := c.QueryWorkflow(ctx, id, "", "first")
					var s string
					if err == nil && v.Get(&s) == nil && s != "" {
						return s
					}
					time.Sleep(100 * time.Millisecond)
				}
				t.Fatalf("run %s never ran its first step", id)
				return ""
			}

			wa := startWorker("build-a")
			cur, changed, why, err := ensureCurrent(ctx, c, queue, "build-a", false)
			if err != nil || !changed || cur != "build-a" {
				t.Fatalf("first worker's ensureCurrent = %q, %v (%s), %v; want build-a made current", cur, changed, why, err)
			}
			old := start("in-flight")
			if got := firstBuild("in-flight"); got != "build-a" {
				t.Fatalf("the first run started on %q, want build-a", got)
			}

			startWorker("build-b")
			cur, changed, why, err = ensureCurrent(ctx, c, queue, "build-b", false)
			if err != nil || changed || cur != "build-a" {
				t.Fatalf("a second build's ensureCurrent = %q, %v (%s), %v; want build-a left current while its worker polls", cur, changed, why, err)
			}
			if prev, err := Promote(ctx, c, "build-b"); err != nil || prev != "build-a" {
				t.Fatalf("Promote(build-b) = %q, %v; want previous build-a", prev, err)
			}
			newer := start("after-upgrade")
			if got := firstBuild("after-upgrade"); got != "build-b" {
				t.Errorf("a run started after the promotion ran on %q, want build-b", got)
			}
			if tc.stopOld {
				wa.Stop()
			}
			for _, id := range []string{"in-flight", "after-upgrade"} {
				if err := c.SignalWorkflow(ctx, id, "", "go", nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range []struct {
				run  client.WorkflowRun
				want string
			}{{old, tc.inFlight}, {newer, "build-b→build-b"}} {
				if err := r.run.Get(ctx, nil); err != nil {
					t.Fatalf("run %s: %v", r.run.GetID(), err)
				}
				if got := stepBuilds(ctx, t, c, r.run.GetID()); got != r.want {
					t.Errorf("run %s ran its first and last steps on %s, want %s", r.run.GetID(), got, r.want)
				}
			}
		})
	}
}
