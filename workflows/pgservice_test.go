package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/haproxy"
)

func pgServiceInput() PgServiceInput {
	in := PgServiceInput{Cluster: "pg-test", Service: haproxy.Cluster{Name: "pg-test", Services: haproxy.PigstyServices(), Timing: haproxy.FastTiming(), StatsPort: 9101, CAFile: "/etc/pki/ca.crt"}}
	for i, addr := range []string{"10.213.0.11", "10.213.0.12", "10.213.0.13"} {
		name := "pg-test-" + string(rune('1'+i))
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		in.Nodes = append(in.Nodes, activities.Node{Addr: addr, Name: name, SSHHost: addr, SSHPort: 22, SSHUser: "root"})
		in.Members = append(in.Members, activities.MemberAPI{Name: name, APIURL: "https://" + addr + ":8008"})
		in.Service.Members = append(in.Service.Members, haproxy.Member{Name: name, Addr: addr, Role: role, PGPort: 5432, APIPort: 8008, VerifyHost: name})
	}
	return in
}

// runPgService runs PgService with fake activities: the HAProxy step records the order of the
// members and fails where failOn says.
func runPgService(t *testing.T, in PgServiceInput, failOn string) (PgServiceResult, []string, bool, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PgService, workflowOpts(PgServiceName))
	env.RegisterWorkflowWithOptions(ClusterLock, workflowOpts(ClusterLockName))
	a := &activities.Activities{}
	env.RegisterActivity(a)
	var mu sync.Mutex
	var order []string
	checked := false
	env.OnActivity(a.PGService, mockAny, mockAny).Return(func(_ context.Context, si activities.ServiceInput) (activities.StepResult, error) {
		mu.Lock()
		order = append(order, si.Node.Name)
		mu.Unlock()
		if si.Node.Name == failOn {
			return activities.StepResult{}, temporal.NewNonRetryableApplicationError("haproxy is not installed on this host", "Config", nil)
		}
		return activities.StepResult{Node: si.Node.Addr, Step: activities.StepService, Changed: true, Changes: []string{"wrote /etc/haproxy/haproxy.cfg"}}, nil
	})
	env.OnActivity(a.PGServiceCheck, mockAny, mockAny).Return(func(_ context.Context, ci activities.ServiceCheckInput) (activities.ServiceCheckResult, error) {
		checked = true
		return activities.ServiceCheckResult{Leader: "pg-test-1"}, nil
	})
	env.ExecuteWorkflow(PgServiceName, in)
	var res PgServiceResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, order, checked, err
}

func TestPgServiceOneMemberAtATime(t *testing.T) {
	res, order, checked, err := runPgService(t, pgServiceInput(), "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "pg-test-1,pg-test-2,pg-test-3" || !checked {
		t.Errorf("order %v, checked %v; want every member in pg_seq order, then the routing check", order, checked)
	}
	if !strings.Contains(res.Config, "listen pg-test-primary") || res.Routing.Leader != "pg-test-1" {
		t.Errorf("result %+v", res)
	}
}

func TestPgServiceDryRunChangesNothing(t *testing.T) {
	in := pgServiceInput()
	in.DryRun = true
	res, order, checked, err := runPgService(t, in, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 || checked || !strings.Contains(res.Config, "bind *:5433") {
		t.Errorf("dry run: order %v checked %v config %q; want no activity and the configuration", order, checked, res.Config)
	}
}

// TestPgServiceStopsAtFailedMember: the members after a failed one keep their HAProxy as it
// was, and the run says which member failed and why.
func TestPgServiceStopsAtFailedMember(t *testing.T) {
	_, order, checked, err := runPgService(t, pgServiceInput(), "pg-test-2")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != PgServiceFailedType || !strings.Contains(err.Error(), "HAProxy on pg-test-2: haproxy is not installed") {
		t.Fatalf("error %v; want %s naming pg-test-2", err, PgServiceFailedType)
	}
	if strings.Join(order, ",") != "pg-test-1,pg-test-2" || checked {
		t.Errorf("order %v checked %v; want a stop at pg-test-2", order, checked)
	}
}

func TestPgServiceRefusesBadServices(t *testing.T) {
	in := pgServiceInput()
	in.Service.Services[1].Port = 5433
	_, order, _, err := runPgService(t, in, "")
	if err == nil || !strings.Contains(err.Error(), "port 5433 is also used") || len(order) != 0 {
		t.Fatalf("error %v order %v; want a refusal before any member", err, order)
	}
}
