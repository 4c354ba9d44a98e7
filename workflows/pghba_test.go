package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities"
)

func hbaInput() PgHBAInput {
	in := PgHBAInput{Cluster: "pg-test", Spec: activities.PGSpec{Cluster: "pg-test", Port: 5432, HBA: []string{"local   all          postgres                       peer"}}}
	for _, n := range []string{"pg-test-1", "pg-test-2", "pg-test-3"} {
		in.Members = append(in.Members, PgMember{Name: n, Role: "replica", Node: activities.Node{Addr: n, Name: n, SSHHost: n}})
	}
	return in
}

// runPgHBA runs PgHBA; answer is each member's step.
func runPgHBA(t *testing.T, in PgHBAInput, answer func(activities.PgHBAInput) (activities.StepResult, error)) (PgHBAResult, []string, *testsuite.TestWorkflowEnvironment, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	Register(env)
	a := &activities.Activities{}
	env.RegisterActivity(a)
	var order []string
	env.OnActivity(a.PgHBA, mockAny, mockAny).Return(func(_ context.Context, in activities.PgHBAInput) (activities.StepResult, error) {
		order = append(order, in.Node.Name)
		return answer(in)
	})
	env.ExecuteWorkflow(PgHBAName, in)
	res, err := runOutcome[PgHBAResult](t, env)
	return res, order, env, err
}

// Every member gets the rendered rules, one at a time in order; a dry run asks each what would
// change and shows it as skipped.
func TestPgHBAEveryMember(t *testing.T) {
	res, order, env, err := runPgHBA(t, hbaInput(), func(in activities.PgHBAInput) (activities.StepResult, error) {
		if in.DryRun || !slices.Equal(in.Spec.HBA, hbaInput().Spec.HBA) {
			t.Errorf("input %+v", in)
		}
		return activities.StepResult{Node: in.Node.Name, Changed: in.Node.Name != "pg-test-3", Changes: []string{"wrote pg_hba.conf", "reloaded PostgreSQL"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"pg-test-1", "pg-test-2", "pg-test-3"}) || len(res.Members) != 3 || len(res.Lines) != 1 {
		t.Errorf("order %v, result %+v", order, res)
	}
	if got := progressOf(t, env); got != "-/exclusive=unchanged pg-test-1/pg_hba=changed pg-test-2/pg_hba=changed pg-test-3/pg_hba=unchanged" {
		t.Errorf("progress %s", got)
	}

	in := hbaInput()
	in.DryRun = true
	_, _, env, err = runPgHBA(t, in, func(in activities.PgHBAInput) (activities.StepResult, error) {
		if !in.DryRun {
			t.Errorf("a dry run's step without DryRun")
		}
		sr := activities.StepResult{Node: in.Node.Name}
		if in.Node.Name == "pg-test-2" {
			sr.Facts = map[string]string{activities.FactDiffers: "1"}
			sr.Notes = []string{"would add to pg_hba.conf: host all app 10.0.0.0/8 scram-sha-256"}
		}
		return sr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := progressOf(t, env); got != "-/exclusive=unchanged pg-test-1/pg_hba=unchanged pg-test-2/pg_hba=skipped pg-test-3/pg_hba=unchanged" {
		t.Errorf("dry run's progress %s", got)
	}
}

// A member whose PostgreSQL refuses the file stops the run: the next members keep their rules,
// and the error names who has the new ones.
func TestPgHBAStopsAtAFailure(t *testing.T) {
	_, order, env, err := runPgHBA(t, hbaInput(), func(in activities.PgHBAInput) (activities.StepResult, error) {
		if in.Node.Name == "pg-test-2" {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError("PostgreSQL refuses the new pg_hba.conf (line 3: invalid IP mask)", activities.ErrConflict, nil)
		}
		return activities.StepResult{Node: in.Node.Name, Changed: true}, nil
	})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgHBAFailedType || !strings.Contains(err.Error(), "pg_hba.conf on pg-test-2: PostgreSQL refuses") ||
		!strings.Contains(err.Error(), "members with the new rules: pg-test-1") {
		t.Fatalf("error %v", err)
	}
	if !slices.Equal(order, []string{"pg-test-1", "pg-test-2"}) || !strings.Contains(progressOf(t, env), "pg-test-3/pg_hba=skipped") {
		t.Errorf("order %v, progress %s", order, progressOf(t, env))
	}
}
