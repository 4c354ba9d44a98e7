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

	"github.com/pigwf/pigwf/activities"
)

// runPgReload runs PgReload on pg-test's three members; answer is each member's reload.
func runPgReload(t *testing.T, answer func(member string) (activities.StepResult, error)) (PgReloadResult, []string, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{}
	env.RegisterActivity(a)
	var mu sync.Mutex // the members' reloads run at once
	var reloaded []string
	env.OnActivity(a.MemberReload, mockAny, mockAny).Return(func(_ context.Context, in activities.MemberReloadInput) (activities.StepResult, error) {
		mu.Lock()
		reloaded = append(reloaded, in.Member.Name)
		mu.Unlock()
		return answer(in.Member.Name)
	})
	env.ExecuteWorkflow(PgReloadName, PgReloadInput{Cluster: "pg-test", Members: pgRestartInput().Members})
	res, err := runOutcome[PgReloadResult](t, env)
	slices.Sort(reloaded)
	return res, reloaded, err
}

// Every member is reloaded; the result says per member what changed and what waits for a
// restart, and the command that restarts exactly those.
func TestPgReload(t *testing.T) {
	res, reloaded, err := runPgReload(t, func(m string) (activities.StepResult, error) {
		sr := activities.StepResult{Node: m, Step: activities.StepMemberReload, Changed: m != "pg-test-3", Facts: map[string]string{"pending_restart": ""}}
		if m == "pg-test-2" {
			sr.Facts["pending_restart"] = "max_connections,shared_buffers"
		}
		return sr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reloaded, []string{"pg-test-1", "pg-test-2", "pg-test-3"}) {
		t.Errorf("reloaded %v", reloaded)
	}
	if len(res.Members) != 3 || !res.Members[0].Changed || res.Members[2].Changed || res.Members[1].Node != "pg-test-2" {
		t.Errorf("members %+v", res.Members)
	}
	if len(res.PendingRestart) != 1 || !slices.Equal(res.PendingRestart["pg-test-2"], []string{"max_connections", "shared_buffers"}) ||
		res.Next != "pigwf start pg-restart --cluster pg-test --pending" {
		t.Errorf("pending %v, next %q", res.PendingRestart, res.Next)
	}
}

func TestPgReloadNothingPending(t *testing.T) {
	res, _, err := runPgReload(t, func(m string) (activities.StepResult, error) {
		return activities.StepResult{Node: m, Facts: map[string]string{"pending_restart": ""}}, nil
	})
	if err != nil || res.Next != "" || res.PendingRestart != nil {
		t.Errorf("result %+v, err %v; want no restart asked for", res, err)
	}
}

// A member whose agent refuses fails the run, naming it; the others are still reloaded.
func TestPgReloadOneMemberFails(t *testing.T) {
	res, reloaded, err := runPgReload(t, func(m string) (activities.StepResult, error) {
		if m == "pg-test-2" {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError("reload of pg-test-2 refused: upgrade the agent", activities.ErrAgentRefused, nil)
		}
		return activities.StepResult{Node: m, Changed: true, Facts: map[string]string{"pending_restart": ""}}, nil
	})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgReloadFailedType || !strings.Contains(err.Error(), "reload failed on pg-test-2: reload of pg-test-2 refused") {
		t.Fatalf("error %v", err)
	}
	if len(reloaded) != 3 || !res.Members[0].Changed || !res.Members[2].Changed {
		t.Errorf("reloaded %v, result %+v", reloaded, res)
	}
}
