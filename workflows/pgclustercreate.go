package workflows

import (
	"fmt"
	"strings"

	"github.com/pigwf/pigwf/inventory"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	haagent "github.com/pigwf/pigwf/ha-agent"
)

// PgClusterCreate builds an HA PostgreSQL cluster, the counterpart of Pigsty's pgsql.yml.
const (
	PgClusterCreateName    = "PgClusterCreate"
	PgClusterCreateRunbook = "pg-cluster-create"
)

// PgMember is one member of the cluster.
type PgMember struct {
	Name string          `json:"name"` // nodename: also the member and application name
	Role string          `json:"role"` // primary | replica | offline
	Node activities.Node `json:"node"`
	// Tags are the member's pg_tags (absent in runs started before them: no tags).
	Tags haagent.ClusterTags `json:"tags,omitzero"`
}

// PgClusterCreateInput is resolved from the inventory by the starter. No secrets: passwords are
// read by activities on the worker (from the inventory file or pigwf's secret store).
type PgClusterCreateInput struct {
	Cluster    string              `json:"cluster"`
	Members    []PgMember          `json:"members"` // primary first
	Spec       activities.PGSpec   `json:"spec"`
	DCS        activities.DCSInput `json:"dcs"`
	SyncMode   bool                `json:"sync_mode"`
	SyncStrict bool                `json:"sync_strict"`
	RPO        int64               `json:"rpo"`
	// LeaseMs is the agents' leader lease from pg_rto; 0 (and in runs started before it) is
	// the agents' default.
	LeaseMs   int                       `json:"lease_ms,omitempty"`
	Roles     []activities.RoleSpec     `json:"roles"` // replication, admin and default roles
	Users     []activities.RoleSpec     `json:"users"` // pg_users
	Databases []activities.DatabaseSpec `json:"databases"`
	APIPort   int                       `json:"api_port"`
	DryRun    bool                      `json:"dry_run,omitempty"`
	// Force: data directories of another system are moved aside (never deleted) once an
	// approver agrees; without it they are refused.
	Force    bool           `json:"force,omitempty"`
	Approval ApprovalPolicy `json:"approval"`
	// PgParameters are the inventory's pg_parameters as the user wrote them (Spec.Parameters adds
	// pigwf's defaults): they seed the DCS config's postgresql.parameters, which `pigwf config`
	// changes later. Absent in runs started before the seeding.
	PgParameters map[string]string `json:"pg_parameters,omitempty"`
	// ClusterLocked: the parent run that starts this one as its child holds the cluster's lock
	// for it (workflows.ClusterLock); honoured only in a child run. Never set by hand.
	ClusterLocked bool `json:"cluster_locked,omitempty"`
}

// PgClusterCreateResult reports what the run did.
type PgClusterCreateResult struct {
	Cluster string                  `json:"cluster"`
	Sysid   string                  `json:"sysid"`
	Primary string                  `json:"primary"`
	Steps   []activities.StepResult `json:"steps"`
	Changed int                     `json:"changed"`
	Plan    []string                `json:"plan,omitempty"`   // dry run: what would run
	Checks  []string                `json:"checks,omitempty"` // precheck findings
	// Followed: each leader change the build followed, "old -> new after: why the step failed".
	Followed []string `json:"followed,omitempty"`
}

// seedParametersChange is the GetVersion change ID of seeding the DCS config's
// postgresql.parameters from the inventory's pg_parameters.
const seedParametersChange = "dcs-seed-parameters"

// PgClusterCreateFailedType is the error type of a refused or failed run.
const PgClusterCreateFailedType = "PgClusterCreateFailed"

// pgClusterCreate is one PgClusterCreate run: its input, progress and result, and what the
// prechecks found out.
type pgClusterCreate struct {
	ctx   workflow.Context
	in    PgClusterCreateInput
	track *tracker
	gate  *approvalGate
	res   PgClusterCreateResult
	// primary gets the primary's steps: the inventory's primary, or the current leader on a rerun
	// after a failover; replicas are the other members.
	primary  PgMember
	replicas []PgMember
	dcs      activities.DCSState
	foreign  map[string]string // member -> system identifier of data that is not this cluster's
	// apiTLS: the agents' API URLs are https (runs started before the agents served TLS used
	// http; the version marker keeps their replay).
	apiTLS bool
	// seedParameters: the DCS registration seeds postgresql.parameters from PgParameters (runs
	// that started before, on their replay, register without them, as they did).
	seedParameters bool
}

// PgClusterCreate: prechecks on every node before any change; then the primary (initdb,
// configuration), the DCS registration, the HA agent on the primary (it starts PostgreSQL and
// takes the leader key), roles, replicas in parallel (clone, agent, streaming), users and
// databases, pgBackRest (stanza, first full backup) and a verification. Every step is idempotent,
// so a second run reports unchanged and a run resumed after any crash finishes the job.
func PgClusterCreate(ctx workflow.Context, in PgClusterCreateInput) (PgClusterCreateResult, error) {
	w := &pgClusterCreate{ctx: ctx, in: in, res: PgClusterCreateResult{Cluster: in.Cluster}, foreign: map[string]string{}}
	if err := setSearchAttributes(ctx, PgClusterCreateRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PgClusterCreateRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if _, err := lockCluster(ctx, w.track, in.Cluster, in.ClusterLocked); err != nil {
		return w.res, err
	}
	if len(in.Members) == 0 || in.Members[0].Role != inventory.RolePrimary {
		return w.res, temporal.NewNonRetryableApplicationError("the input must list the primary first", PgClusterCreateFailedType, nil)
	}
	w.primary, w.replicas = in.Members[0], in.Members[1:]
	w.apiTLS = workflow.GetVersion(ctx, "agent-api-tls", workflow.DefaultVersion, 1) == 1
	w.seedParameters = workflow.GetVersion(ctx, seedParametersChange, workflow.DefaultVersion, 1) == 1
	w.res.Primary = w.primary.Name
	if w.gate, err = newApprovalGate(ctx, ""); err != nil {
		return w.res, err
	}
	return w.run()
}

func (w *pgClusterCreate) run() (PgClusterCreateResult, error) {
	// The DCS first: after a failover its leader, not the inventory's primary, is the primary.
	problems, err := w.checkDCS()
	if err != nil {
		return w.res, err
	}
	w.followCurrentLeader()
	// The plan, visible in the progress query and the Web UI before anything runs.
	plan := w.plan()
	for _, m := range w.in.Members {
		w.track.plan(precheckStep(m))
	}
	w.track.plan(planSteps(plan)...)

	problems = append(problems, w.checkNodes()...)
	w.res.Checks = problems
	if len(problems) > 0 {
		return w.res, w.fail(fmt.Sprintf("pg-cluster-create %s refused before changing anything:\n  %s", w.in.Cluster, strings.Join(problems, "\n  ")))
	}
	if w.in.DryRun {
		for _, s := range planSteps(plan) {
			w.res.Plan = append(w.res.Plan, orControl(s.node)+": "+s.name)
			w.track.set(s, StateSkipped, "dry run")
		}
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	if err := w.moveAsideForeignData(); err != nil {
		return w.res, err
	}
	if err := w.build(plan); err != nil {
		return w.res, w.fail(err.Error())
	}
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// fail ends the run with msg; the error's details hold the result so far.
func (w *pgClusterCreate) fail(msg string) error {
	return w.track.fail(msg, PgClusterCreateFailedType, w.res)
}

// execute runs one step of the build; its result joins the run's record.
func (w *pgClusterCreate) execute(ctx workflow.Context, s pgStep) error {
	sr, err := runStep(ctx, w.track, s.step, stepOutcome, s.activity, s.input())
	if err != nil {
		return fmt.Errorf("%s on %s: %w", s.name, orControl(s.node), err)
	}
	sr.Node, sr.Step = orControl(s.node), s.name
	if sr.Changed {
		w.res.Changed++
	}
	w.res.Steps = append(w.res.Steps, sr)
	if s.then != nil {
		s.then(sr)
	}
	return nil
}

// runStage runs a stage's lanes, in parallel when the stage has one per member. A failed lane
// fails the stage once every lane has ended; the first failed lane, in member order, says why.
// (The parallel wait fails only when the run is canceled; the step after the stage then fails as
// canceled.)
func (w *pgClusterCreate) runStage(st pgStage) error {
	runLane := func(ctx workflow.Context, lane []pgStep) error {
		for _, s := range lane {
			if err := w.execute(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
	if !st.perMember {
		return runLane(w.ctx, st.lanes[0])
	}
	errs := make([]error, len(st.lanes))
	_ = parallel(w.ctx, len(st.lanes), func(ctx workflow.Context, i int) { errs[i] = runLane(ctx, st.lanes[i]) })
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf(st.failure, st.members[i].Name, err)
		}
	}
	return nil
}

// nodeInput is what a step on member m needs to know about the cluster.
func (w *pgClusterCreate) nodeInput(m PgMember) activities.PgNodeInput {
	return activities.PgNodeInput{Node: m.Node, Spec: w.in.Spec, Primary: w.primary.Node, Etcd: w.in.DCS.Endpoints}
}

func (w *pgClusterCreate) agentInput(m PgMember) activities.AgentInput {
	return activities.AgentInput{Node: m.Node, Member: m.Name, Spec: w.in.Spec, DCS: w.in.DCS, APIPort: w.in.APIPort,
		NoFailover: m.Role == inventory.RoleOffline, Tags: m.Tags}
}

func (w *pgClusterCreate) apiURL(m PgMember) string {
	return activities.AgentAPIURL(m.Node.SSHHost, w.in.APIPort, w.in.DCS.Plaintext || !w.apiTLS)
}

func (w *pgClusterCreate) replicaNames() []string {
	var names []string
	for _, m := range w.replicas {
		names = append(names, m.Name)
	}
	return names
}

func orControl(member string) string {
	if member == "" {
		return "control"
	}
	return member
}
