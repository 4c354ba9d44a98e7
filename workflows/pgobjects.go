package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgUsers and PgDatabases apply the inventory's pg_users and pg_databases to a running cluster
// (Pigsty's pgsql-user and pgsql-db), on its leader: created, altered (only the attributes that
// differ), dropped when marked state: absent, and otherwise left alone, each object reported on
// its own. A database is dropped only after an approval. Two runbooks with one body (pgObjects):
// each has its own ID, so a run is named, followed and approved by what it does
// (`pigwf approve pg-databases/pg-test`), and the two differ only in the objects they carry and
// in the gate.
const (
	PgUsersName        = "PgUsers"
	PgUsersRunbook     = "pg-users"
	PgDatabasesName    = "PgDatabases"
	PgDatabasesRunbook = "pg-databases"
)

// PgObjectsTarget is what pg-users and pg-databases take from the inventory and the command line
// alike: the cluster, how its leader is found (through the agents) and reached (SSH), and the
// run's options.
type PgObjectsTarget struct {
	Cluster string                 `json:"cluster"`
	DCS     activities.DCSInput    `json:"dcs"`
	Members []activities.MemberAPI `json:"members"`
	Nodes   []activities.Node      `json:"nodes"` // the members' nodes, by Name the member
	Port    int                    `json:"port"`
	// InventoryFile is where the worker reads the users' passwords.
	InventoryFile string `json:"inventory_file"`
	// Name: only this user or database (--name); "" for every one.
	Name        string `json:"name,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// PgUsersInput is resolved from the inventory's pg_users.
type PgUsersInput struct {
	PgObjectsTarget
	Users []activities.RoleSpec `json:"users"`
}

// PgDatabasesInput is resolved from the inventory's pg_databases.
type PgDatabasesInput struct {
	PgObjectsTarget
	Databases []activities.DatabaseSpec `json:"databases"`
	// Approval: how long a drop waits for its approval.
	Approval ApprovalPolicy `json:"approval"`
}

// PgObjectsResult is a run's record.
type PgObjectsResult struct {
	Cluster string `json:"cluster"`
	Leader  string `json:"leader,omitempty"`
	// Plan: every object the run was about, what it took when the run planned.
	Plan []activities.ObjectChange `json:"plan,omitempty"`
	// Steps: the steps of the objects that were not as specified, in the order run.
	Steps    []activities.StepResult `json:"steps,omitempty"`
	Approval *ApprovalState          `json:"approval,omitempty"`
	Outcome  string                  `json:"outcome"` // applied | unchanged | dry run
}

// Error types of a pg-users or pg-databases run that did not finish.
const (
	PgObjectsRefusedType = "PgObjectsRefused" // refused before any change (the plan, the approval)
	PgObjectsFailedType  = "PgObjectsFailed"  // an object's step failed; the message says what was done
)

// The runs' control steps.
var (
	pgObjectsLeaderStep = controlStep("leader", within(time.Minute, 3))
	pgObjectsPlanStep   = controlStep("plan", within(2*time.Minute, 3))
)

// pgObjectStep is one object's step, on the leader: "pg-test-1: user app".
func pgObjectStep(leader string, c activities.ObjectChange) step {
	s := memberStep(leader, c.Kind+" "+c.Name, within(5*time.Minute, 3))
	s.what = c.String()
	return s
}

// Selected are the users the run is about: every one, or the one --name names.
func (in PgUsersInput) Selected() []activities.RoleSpec {
	return selected(in.Users, in.Name, func(u activities.RoleSpec) string { return u.Name })
}

// Selected are the databases the run is about: every one, or the one --name names.
func (in PgDatabasesInput) Selected() []activities.DatabaseSpec {
	return selected(in.Databases, in.Name, func(d activities.DatabaseSpec) string { return d.Name })
}

func selected[T any](all []T, name string, nameOf func(T) string) []T {
	var out []T
	for _, o := range all {
		if name == "" || nameOf(o) == name {
			out = append(out, o)
		}
	}
	return out
}

// PgUsers applies pg_users.
func PgUsers(ctx workflow.Context, in PgUsersInput) (PgObjectsResult, error) {
	users := in.Selected()
	w := &pgObjects{runbook: PgUsersRunbook, kind: activities.KindUser, t: in.PgObjectsTarget, objects: activities.PgObjectsInput{Users: users}, count: len(users)}
	return w.run(ctx)
}

// PgDatabases applies pg_databases; a drop waits for an approval.
func PgDatabases(ctx workflow.Context, in PgDatabasesInput) (PgObjectsResult, error) {
	dbs := in.Selected()
	w := &pgObjects{runbook: PgDatabasesRunbook, kind: activities.KindDatabase, t: in.PgObjectsTarget, objects: activities.PgObjectsInput{Databases: dbs},
		count: len(dbs), approval: &in.Approval}
	return w.run(ctx)
}

// pgObjects is one pg-users or pg-databases run.
type pgObjects struct {
	ctx      workflow.Context
	runbook  string
	kind     string // activities.KindUser or KindDatabase
	t        PgObjectsTarget
	objects  activities.PgObjectsInput // the objects of the run (--name applied); the rest is filled from the leader
	count    int
	approval *ApprovalPolicy // pg-databases: drops are approved
	track    *tracker
	gate     *approvalGate
	res      PgObjectsResult
}

// run: the leader from its agent, the plan from its catalog (refused as a whole, with nothing
// changed, when any object cannot be done as asked), a dry run's report, an approval of the
// databases' drops, then one step per object that is not as specified: creations and
// alterations first, drops last.
func (w *pgObjects) run(ctx workflow.Context) (PgObjectsResult, error) {
	w.ctx, w.res = ctx, PgObjectsResult{Cluster: w.t.Cluster}
	if err := setSearchAttributes(ctx, w.runbook, w.t.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, w.runbook, w.t.Cluster); err != nil {
		return w.res, err
	}
	if _, err := lockCluster(ctx, w.track, w.t.Cluster, false); err != nil {
		return w.res, err
	}
	if w.approval != nil {
		if w.gate, err = newApprovalGate(ctx, w.t.RequestedBy); err != nil {
			return w.res, err
		}
	}
	w.track.plan(pgObjectsLeaderStep, pgObjectsPlanStep)
	if w.count == 0 {
		what := "no " + w.kind + " in the input"
		if w.t.Name != "" {
			what = fmt.Sprintf("no %s %s in the input (--name)", w.kind, w.t.Name)
		}
		return w.res, w.refuse(pgObjectsLeaderStep, what)
	}
	leader, err := w.leader()
	if err != nil {
		return w.res, err
	}
	if err := w.plan(leader); err != nil {
		return w.res, err
	}
	changes := w.ordered()
	if len(changes) == 0 {
		w.res.Outcome = "unchanged"
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	if w.t.DryRun {
		for _, c := range changes {
			detail := "dry run: would " + c.String()
			if w.approval != nil && c.Action == activities.ActionDrop {
				detail += ", after an approval"
			}
			w.track.set(pgObjectStep(leader.Name, c.ObjectChange), StateSkipped, detail)
		}
		w.res.Outcome = "dry run"
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	allowDrop, err := w.approveDrops(changes)
	if err != nil {
		return w.res, err
	}
	var a *activities.Activities
	for i, c := range changes {
		in := activities.PgObjectsInput{Leader: leader, Cluster: w.t.Cluster, Port: w.t.Port, InventoryFile: w.t.InventoryFile, AllowDrop: allowDrop}
		if w.kind == activities.KindDatabase {
			in.Databases = []activities.DatabaseSpec{w.objects.Databases[c.i]}
		} else {
			in.Users = []activities.RoleSpec{w.objects.Users[c.i]}
		}
		sr, err := runStep(ctx, w.track, pgObjectStep(leader.Name, c.ObjectChange), stepOutcome, a.PgObjectsApply, in)
		if err != nil {
			for _, rest := range changes[i+1:] {
				w.track.set(pgObjectStep(leader.Name, rest.ObjectChange), StateSkipped, "not reached")
			}
			return w.res, w.track.fail(fmt.Sprintf("%s of %s: %s %s: %v; done before that: %s", w.runbook, w.t.Cluster, c.Kind, c.Name, err, w.done()),
				PgObjectsFailedType, w.res)
		}
		w.res.Steps = append(w.res.Steps, sr)
	}
	w.res.Outcome = "applied"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// leader is the member that leads and takes writes now, as its own agent says, and its node.
func (w *pgObjects) leader() (activities.Node, error) {
	var a *activities.Activities
	st, err := runStep(w.ctx, w.track, pgObjectsLeaderStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.t.DCS, Members: w.t.Members})
	if err != nil {
		return activities.Node{}, w.refuse(pgObjectsLeaderStep, "the cluster's state: "+err.Error())
	}
	if why := st.Unhealthy(); why != "" {
		return activities.Node{}, w.refuse(pgObjectsLeaderStep, why+" (`pigwf ha list --cluster "+w.t.Cluster+"`)")
	}
	i := slices.IndexFunc(w.t.Nodes, func(n activities.Node) bool { return n.Name == st.Leader })
	if i < 0 {
		return activities.Node{}, w.refuse(pgObjectsLeaderStep, fmt.Sprintf("its leader %s is not a member the inventory names", st.Leader))
	}
	w.res.Leader = st.Leader
	w.track.set(pgObjectsLeaderStep, StateUnchanged, st.Leader+" leads: "+st.View)
	return w.t.Nodes[i], nil
}

// plan plans every object on the leader and lists a row per object; a refusal of any object
// refuses the run before anything changes.
func (w *pgObjects) plan(leader activities.Node) error {
	var a *activities.Activities
	in := w.objects
	in.Leader, in.Cluster, in.Port, in.InventoryFile = leader, w.t.Cluster, w.t.Port, w.t.InventoryFile
	plan, err := runStep(w.ctx, w.track, pgObjectsPlanStep, func(p activities.ObjectsPlan) (string, string) {
		return StateUnchanged, "on " + leader.Name + ": " + activities.ObjectsSummary(p.Changes)
	}, a.PgObjectsPlan, in)
	if err != nil {
		return w.refuse(pgObjectsPlanStep, "the plan: "+err.Error())
	}
	if len(plan.Changes) != w.count {
		return w.refuse(pgObjectsPlanStep, fmt.Sprintf("the plan has %d objects for the input's %d", len(plan.Changes), w.count))
	}
	w.res.Plan = plan.Changes
	var refused []string
	var rows []step
	for _, c := range plan.Changes {
		if c.Refused != "" {
			refused = append(refused, c.String())
		}
		rows = append(rows, pgObjectStep(leader.Name, c))
	}
	if len(refused) > 0 {
		return w.refuse(pgObjectsPlanStep, strings.Join(refused, "; "))
	}
	if w.needsApproval() {
		w.track.plan(approvalStep)
	}
	w.track.plan(rows...)
	for _, c := range plan.Changes {
		if !c.Changes() {
			w.track.set(pgObjectStep(leader.Name, c), StateUnchanged, c.String())
		}
	}
	return nil
}

// change is a planned change and its object's index in the run's objects (the plan's order).
type change struct {
	activities.ObjectChange
	i int
}

// ordered are the plan's changes to make: creations and alterations in the input's order, then
// the drops (the riskier changes once the others went through).
func (w *pgObjects) ordered() []change {
	var out, drops []change
	for i, c := range w.res.Plan {
		switch {
		case !c.Changes():
		case c.Action == activities.ActionDrop:
			drops = append(drops, change{c, i})
		default:
			out = append(out, change{c, i})
		}
	}
	return append(out, drops...)
}

// needsApproval: the plan drops a database (pg-databases only: a user is dropped only when it
// owns nothing, which the plan checked).
func (w *pgObjects) needsApproval() bool {
	if w.approval == nil || w.t.DryRun {
		return false
	}
	return slices.ContainsFunc(w.res.Plan, func(c activities.ObjectChange) bool {
		return c.Kind == activities.KindDatabase && c.Action == activities.ActionDrop
	})
}

// approveDrops waits for the approval of a plan that drops databases; without it the run ends
// with nothing changed. It reports whether drops are approved.
func (w *pgObjects) approveDrops(changes []change) (bool, error) {
	if !w.needsApproval() {
		return false, nil
	}
	var lines, drops []string
	for _, c := range changes {
		lines = append(lines, c.String())
		if c.Action == activities.ActionDrop {
			drops = append(drops, c.Name)
		}
	}
	plan := fmt.Sprintf("on %s's leader %s: %s (dropping a database deletes its data for good; a restore is pitr-restore of the whole cluster)",
		w.t.Cluster, w.res.Leader, strings.Join(lines, "; "))
	note := &activities.Notification{Event: "approval-requested", Runbook: w.runbook, Cluster: w.t.Cluster, Text: "waiting for approval: " + plan}
	st, err := w.gate.decide(w.ctx, w.track, approvalStep, plan, *w.approval, note)
	if err != nil {
		return false, err
	}
	w.res.Approval = &st
	if !st.Approved() {
		for _, c := range changes {
			w.track.set(pgObjectStep(w.res.Leader, c.ObjectChange), StateSkipped, "not approved: nothing changed")
		}
		return false, w.track.fail(fmt.Sprintf("%s of %s: dropping database %s was %s: nothing was changed", w.runbook, w.t.Cluster, strings.Join(drops, ", "), st.Summary()),
			PgObjectsRefusedType, w.res)
	}
	return true, nil
}

// refuse ends the run before any change, the step s failed with why.
func (w *pgObjects) refuse(s step, why string) error {
	msg := fmt.Sprintf("%s of %s refused: %s; nothing was changed", w.runbook, w.t.Cluster, why)
	w.track.set(s, StateFailed, msg)
	return w.track.fail(msg, PgObjectsRefusedType, w.res)
}

// done names the objects changed so far.
func (w *pgObjects) done() string {
	var out []string
	for _, sr := range w.res.Steps {
		out = append(out, sr.Changes...)
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}
