package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/haproxy"
)

// PgService puts the cluster's access layer in place (Pigsty's pgsql-svc): HAProxy on every
// member with the cluster's services, routing by the HA agents' health checks.
const (
	PgServiceName    = "PgService"
	PgServiceRunbook = "pg-service"
)

// PgServiceInput is resolved from the inventory.
type PgServiceInput struct {
	Cluster string                 `json:"cluster"`
	Nodes   []activities.Node      `json:"nodes"` // the members, in pg_seq order
	Service haproxy.Cluster        `json:"service"`
	Members []activities.MemberAPI `json:"members"`
	DryRun  bool                   `json:"dry_run,omitempty"`
	// ClusterLocked: the parent run that starts this one as its child holds the cluster's lock
	// for it (workflows.ClusterLock); honoured only in a child run. Never set by hand.
	ClusterLocked bool `json:"cluster_locked,omitempty"`
}

// PgServiceResult is the run's record: the configuration each member got and what each
// member's HAProxy routes at the end.
type PgServiceResult struct {
	Cluster string                        `json:"cluster"`
	Config  string                        `json:"config,omitempty"` // the first member's haproxy.cfg (the others differ in the stats address)
	Steps   []activities.StepResult       `json:"steps"`
	Routing activities.ServiceCheckResult `json:"routing"`
}

// PgServiceFailedType: a member's HAProxy could not be configured, or the routing check failed.
const PgServiceFailedType = "PgServiceFailed"

// pgServiceRouting waits up to this long for every HAProxy to route the primary service to the
// leader: the checks of a just-started HAProxy need a few intervals.
const pgServiceRouting = 30 * time.Second

var pgServiceCheck = controlStep("routing", within(2*time.Minute, 3))

func pgServiceStep(member string) step {
	return memberStep(member, "haproxy", within(2*time.Minute, 3))
}

// PgService renders the configuration (a dry run stops there), then configures one member at a
// time, each HAProxy started or reloaded and listening before the next, and finally checks from
// every HAProxy's own stats that the primary service goes to the leader and to no one else.
func PgService(ctx workflow.Context, in PgServiceInput) (PgServiceResult, error) {
	res := PgServiceResult{Cluster: in.Cluster}
	if err := setSearchAttributes(ctx, PgServiceRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, PgServiceRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	if _, err := lockCluster(ctx, track, in.Cluster, in.ClusterLocked); err != nil {
		return res, err
	}
	var steps []step
	for _, n := range in.Nodes {
		steps = append(steps, pgServiceStep(n.Name))
	}
	steps = append(steps, pgServiceCheck)
	track.plan(steps...)
	if len(in.Nodes) == 0 {
		return res, track.fail("the cluster has no member to run HAProxy on", PgServiceFailedType, res)
	}
	// The configuration is rendered on the worker (a side effect: rendering is code the
	// worker may change, and its result must not change on replay).
	var rendered struct{ Text, Problem string }
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		text, _, err := activities.ServiceConfig(activities.ServiceInput{Node: in.Nodes[0], Cluster: in.Service})
		if err != nil {
			return struct{ Text, Problem string }{Problem: err.Error()}
		}
		return struct{ Text, Problem string }{Text: text}
	}).Get(&rendered); err != nil {
		return res, err
	}
	if rendered.Problem != "" {
		return res, track.fail("the services cannot be written: "+rendered.Problem, PgServiceFailedType, res)
	}
	res.Config = rendered.Text
	if in.DryRun {
		track.setPhase(PhaseDone)
		return res, nil
	}
	var a *activities.Activities
	for _, n := range in.Nodes {
		sr, err := runStep(ctx, track, pgServiceStep(n.Name), stepOutcome, a.PGService, activities.ServiceInput{Node: n, Cluster: in.Service})
		res.Steps = append(res.Steps, sr)
		if err != nil {
			return res, track.fail(fmt.Sprintf("HAProxy on %s: %v", n.Name, err), PgServiceFailedType, res)
		}
	}
	routing, err := runStep(ctx, track, pgServiceCheck, func(r activities.ServiceCheckResult) (string, string) {
		return StateUnchanged, fmt.Sprintf("every HAProxy sends %s-primary to the leader %s", in.Cluster, r.Leader)
	}, a.PGServiceCheck, activities.ServiceCheckInput{Nodes: in.Nodes, Cluster: in.Cluster, StatsPort: in.Service.StatsPort, Members: in.Members, Within: pgServiceRouting})
	res.Routing = routing
	if err != nil {
		return res, track.fail(err.Error(), PgServiceFailedType, res)
	}
	track.setPhase(PhaseDone)
	return res, nil
}
