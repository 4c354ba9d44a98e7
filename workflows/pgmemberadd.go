package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgMemberAdd adds hosts of the inventory to a running cluster as replicas (Pigsty's pgsql-add:
// pgsql.yml on the new hosts): node-init where a host lacks it, pg_hba.conf on the members so the
// new addresses may replicate, then each new host cloned from the current leader, started by its
// own HA agent and streaming. The cluster keeps taking writes throughout: nothing restarts, the
// members only reload pg_hba.conf. The member steps are PgClusterCreate's (credentials, clone,
// agent, backup configuration), so a new member is built exactly as the first replicas were.
const (
	PgMemberAddName    = "PgMemberAdd"
	PgMemberAddRunbook = "pg-member-add"
)

// PgMemberAddInput is resolved from the inventory, which already lists the new hosts under the
// cluster (a DBA adds them there first, as for Pigsty).
type PgMemberAddInput struct {
	Cluster string `json:"cluster"`
	// Hosts are every host of the cluster in the inventory, the new ones among them.
	Hosts []PgMember `json:"hosts"`
	// New are the members to add: nodenames of Hosts.
	New []string `json:"new"`
	// Spec is rendered from the inventory with every host: its pg_hba.conf lets the new
	// addresses replicate.
	Spec    activities.PGSpec   `json:"spec"`
	DCS     activities.DCSInput `json:"dcs"`
	APIPort int                 `json:"api_port"`
	// NodeInit is the node-init runbook's input for the new hosts: run as a child, on the new
	// hosts that lack it, before anything else changes.
	NodeInit NodeInitInput `json:"node_init"`
	DryRun   bool          `json:"dry_run,omitempty"`
}

// PgMemberAddResult is the run's record.
type PgMemberAddResult struct {
	Cluster string `json:"cluster"`
	// Leader is the member the new ones were cloned from: the leader as the DCS and its agent had
	// it just before the clones.
	Leader string `json:"leader,omitempty"`
	// Added are the new members, streaming now; Streaming those that streamed already (left alone).
	Added     []string `json:"added,omitempty"`
	Streaming []string `json:"streaming,omitempty"`
	// NodeInit are the new hosts the node-init child prepared.
	NodeInit []string                `json:"node_init,omitempty"`
	Steps    []activities.StepResult `json:"steps,omitempty"`
	Changed  int                     `json:"changed"`
	Plan     []string                `json:"plan,omitempty"`  // a dry run: what would run
	Notes    []string                `json:"notes,omitempty"` // what is left to the user
}

// Error types of a PgMemberAdd that did not finish.
const (
	PgMemberAddRefusedType = "PgMemberAddRefused" // refused by the prechecks: nothing changed
	PgMemberAddFailedType  = "PgMemberAddFailed"  // a step failed; the message says how far it got
)

// PgMemberAddStreamingWithin is how long a new member may take, once its agent runs, to stream.
const PgMemberAddStreamingWithin = 10 * time.Minute

var (
	memberAddPlanStep      = controlStep("plan", within(time.Minute, 3))
	memberAddSourceStep    = controlStep("clone-source", within(time.Minute, 3))
	memberAddStreamingStep = controlStep("streaming", within(PgMemberAddStreamingWithin+time.Minute, 2))
	// memberAddNodeInitStep is the NodeInit child run: tracked here, run there.
	memberAddNodeInitStep = step{name: "node-init"}
)

func memberAddRecheckStep(m PgMember) step {
	return memberStep(m.Name, "recheck", within(time.Minute, 3))
}

// nodeInitFixes are the precheck's problems node-init resolves: a host it never prepared, its
// certificate, the PostgreSQL packages.
var nodeInitFixes = []string{"problem.managed", "problem.tls", "problem.binaries"}

// pgMemberAdd is one PgMemberAdd run.
type pgMemberAdd struct {
	ctx   workflow.Context
	in    PgMemberAddInput
	track *tracker
	res   PgMemberAddResult
	dcs   activities.DCSState
	// members are the cluster's members as its leader listed them; todo the new members this
	// run builds (those already streaming left out).
	members []string
	todo    []PgMember
	// locked: the run holds the cluster's lock, and its node-init (a child run) runs under it.
	locked bool
}

// PgMemberAdd: the cluster to itself; its state (a leader that takes writes, the new hosts not
// streaming members yet); the new hosts' prechecks, node-init as a child run where they need it;
// pg_hba.conf on the members; the leader read again; the new members in parallel (credentials,
// clone from that leader, agent, pgBackRest configuration); every new member streaming.
func PgMemberAdd(ctx workflow.Context, in PgMemberAddInput) (PgMemberAddResult, error) {
	w := &pgMemberAdd{ctx: ctx, in: in, res: PgMemberAddResult{Cluster: in.Cluster}}
	if err := setSearchAttributes(ctx, PgMemberAddRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PgMemberAddRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	w.track.plan(exclusiveStep, dcsStatusStep, memberAddPlanStep)
	if err := w.prechecks(); err != nil {
		return w.res, err
	}
	if len(w.todo) == 0 {
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	existing := w.existing()
	for _, m := range existing {
		w.track.plan(pgHBAStep(m.Name))
	}
	w.track.plan(memberAddSourceStep)
	for _, m := range w.todo {
		for _, s := range w.lane(m, PgMember{}) {
			w.track.plan(s.step)
		}
	}
	w.track.plan(memberAddStreamingStep)
	if in.DryRun {
		for _, m := range existing {
			w.res.Plan = append(w.res.Plan, m.Name+": write pg_hba.conf (the new addresses may replicate) and reload")
			w.track.set(pgHBAStep(m.Name), StateSkipped, "dry run")
		}
		w.res.Plan = append(w.res.Plan, "control: read the leader again, to clone from")
		for _, m := range w.todo {
			for _, s := range w.lane(m, PgMember{Name: "the leader"}) {
				w.res.Plan = append(w.res.Plan, m.Name+": "+orDefault(s.what, s.name))
			}
		}
		w.res.Plan = append(w.res.Plan, "control: wait until "+strings.Join(w.names(w.todo), ", ")+" stream from the leader")
		w.track.skipPending()
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	if err := w.hba(existing); err != nil {
		return w.res, err
	}
	if err := w.build(); err != nil {
		return w.res, err
	}
	w.res.Notes = append(w.res.Notes, fmt.Sprintf(
		"if %s runs HAProxy (pg-service), run `pigwf start %s --cluster %s` so that it routes to the new members too", in.Cluster, PgServiceRunbook, in.Cluster))
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// prechecks: nothing changes before they pass, apart from node-init on new hosts that lack it.
func (w *pgMemberAdd) prechecks() error {
	var err error
	if w.locked, err = claimCluster(w.ctx, w.track, w.in.Cluster); err != nil {
		return w.refuse(err.Error())
	}
	var a *activities.Activities
	if w.dcs, err = runStep(w.ctx, w.track, dcsStatusStep, dcsOutcome, a.DCSStatus, w.in.DCS); err != nil {
		return w.refuse("the DCS: " + err.Error())
	}
	switch {
	case !w.dcs.Reachable:
		return w.refuse("etcd: " + w.dcs.Unreachable)
	case w.dcs.Sysid == "":
		return w.refuse(fmt.Sprintf("the DCS knows no cluster %s: build it with `pigwf start %s` first", w.in.Cluster, PgClusterCreateRunbook))
	}
	st, err := runStep(w.ctx, w.track, memberAddPlanStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.in.DCS, Members: w.memberAPIs()})
	if err != nil {
		return w.refuse("the cluster's state: " + err.Error())
	}
	if problems := w.planMembers(st); len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		w.track.set(memberAddPlanStep, StateFailed, msg)
		return w.refuse(msg)
	}
	if len(w.todo) == 0 {
		w.track.set(memberAddPlanStep, StateUnchanged, "every new member streams already: "+strings.Join(w.res.Streaming, ", "))
		return nil
	}
	return w.checkNewHosts()
}

// planMembers decides which new hosts to build from the cluster's state, and what refuses the run.
// A new host that streams already is left alone; one the DCS lists that does not stream (a run
// that stopped half-way) is built again: every step is idempotent.
func (w *pgMemberAdd) planMembers(st activities.ClusterState) []string {
	var problems []string
	if why := st.Unhealthy(); why != "" {
		problems = append(problems, why+": members are added to a cluster whose leader takes writes, to clone from it")
	}
	if st.Paused {
		problems = append(problems, "the cluster is in maintenance mode (`pigwf ha pause`), where the agents change nothing: resume it first")
	}
	w.members = append([]string{st.Leader}, st.Replicas...)
	for _, name := range w.in.New {
		m, ok := w.host(name)
		switch {
		case !ok:
			problems = append(problems, name+" is not a host of "+w.in.Cluster+" in the inventory")
		case name == st.Leader:
			problems = append(problems, name+" leads the cluster: it is a member already")
		case slices.Contains(st.Streaming, name):
			w.res.Streaming = append(w.res.Streaming, name)
		default:
			w.todo = append(w.todo, m)
		}
	}
	for _, name := range w.members {
		if _, ok := w.host(name); name != "" && !ok {
			problems = append(problems, fmt.Sprintf("member %s is not a host of %s in the inventory: its pg_hba.conf could not let the new members replicate (add it back to the inventory, or remove the member first)", name, w.in.Cluster))
		}
	}
	return problems
}

// checkNewHosts runs the precheck on the new hosts; node-init as a child run on those that need
// it, and the precheck again there. Any other problem refuses the run.
func (w *pgMemberAdd) checkNewHosts() error {
	var a *activities.Activities
	for _, m := range w.todo {
		w.track.plan(precheckStep(m))
	}
	results := make([]activities.StepResult, len(w.todo))
	errs := make([]error, len(w.todo))
	_ = parallel(w.ctx, len(w.todo), func(ctx workflow.Context, i int) {
		results[i], errs[i] = runStep(ctx, w.track, precheckStep(w.todo[i]), checkOutcome, a.PgPrecheck, w.precheckInput(w.todo[i]))
	})
	var problems []string
	var needInit []PgMember
	for i, m := range w.todo {
		if errs[i] != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", m.Node, errs[i]))
			continue
		}
		fixes, others := w.findings(results[i])
		if len(fixes) > 0 {
			needInit = append(needInit, m)
			w.track.set(precheckStep(m), StateUnchanged, "node-init first: "+strings.Join(fixes, "; "))
		}
		if len(others) > 0 {
			w.track.set(precheckStep(m), StateFailed, strings.Join(others, "; "))
			problems = append(problems, m.Node.String()+": "+strings.Join(others, "; "))
		}
	}
	if len(problems) > 0 {
		return w.refuse(strings.Join(problems, "\n  "))
	}
	if len(needInit) == 0 {
		return nil
	}
	if w.in.DryRun {
		w.res.Plan = append(w.res.Plan, "node-init (a child run) on "+strings.Join(w.names(needInit), ", "))
		return nil
	}
	if err := w.nodeInit(needInit); err != nil {
		return err
	}
	for _, m := range needInit {
		w.track.plan(memberAddRecheckStep(m))
	}
	for _, m := range needInit {
		sr, err := runStep(w.ctx, w.track, memberAddRecheckStep(m), checkOutcome, a.PgPrecheck, w.precheckInput(m))
		if err != nil {
			return w.fail(fmt.Sprintf("precheck of %s after node-init: %v", m.Name, err))
		}
		if fixes, others := w.findings(sr); len(fixes)+len(others) > 0 {
			msg := strings.Join(append(fixes, others...), "; ")
			w.track.set(memberAddRecheckStep(m), StateFailed, msg)
			return w.fail(fmt.Sprintf("%s after node-init: %s", m.Node, msg))
		}
	}
	return nil
}

func (w *pgMemberAdd) precheckInput(m PgMember) activities.PgNodeInput {
	return activities.PgNodeInput{Node: m.Node, Spec: w.in.Spec, Etcd: w.in.DCS.Endpoints}
}

// findings are a new host's precheck problems: those node-init fixes, and the others. Data of
// another system is one of the others (pg-member-add never moves data aside); data of this
// cluster is what an earlier run's clone left, which the clone finishes or redoes.
func (w *pgMemberAdd) findings(sr activities.StepResult) (fixes, others []string) {
	for _, k := range sortedFactKeys(sr.Facts) {
		if !strings.HasPrefix(k, "problem.") {
			continue
		}
		if slices.Contains(nodeInitFixes, k) {
			fixes = append(fixes, sr.Facts[k])
		} else {
			others = append(others, sr.Facts[k])
		}
	}
	if s := sr.Facts["sysid"]; s != "" && s != w.dcs.Sysid {
		others = append(others, fmt.Sprintf("%s holds system %s but cluster %s is system %s: move the data directory away if it is not needed (pigwf never deletes one)",
			w.in.Spec.DataDir, s, w.in.Cluster, w.dcs.Sysid))
	}
	return fixes, others
}

// nodeInit runs the node-init runbook on hosts as a child run, "<this run's ID>/node-init".
func (w *pgMemberAdd) nodeInit(hosts []PgMember) error {
	in := w.in.NodeInit
	in.Nodes, in.ClusterLocked = nil, w.locked
	for _, n := range w.in.NodeInit.Nodes {
		if slices.ContainsFunc(hosts, func(m PgMember) bool { return m.Node.Addr == n.Node.Addr }) {
			in.Nodes = append(in.Nodes, n)
		}
	}
	if len(in.Nodes) != len(hosts) {
		return w.refuse("the run's node-init input does not cover " + strings.Join(w.names(hosts), ", ") + ": start it with `pigwf start " + PgMemberAddRunbook + "`")
	}
	w.track.plan(memberAddNodeInitStep)
	id := WorkflowID(PgMemberAddRunbook, w.in.Cluster) + "/" + NodeInitRunbook
	summary := fmt.Sprintf("%s %s: prepare %s for pg-member-add", NodeInitRunbook, w.in.Cluster, strings.Join(w.names(hosts), ", "))
	w.track.set(memberAddNodeInitStep, StateRunning, "child run "+id)
	cctx := workflow.WithChildOptions(w.ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		StaticSummary:         summary,
		TypedSearchAttributes: temporal.NewSearchAttributes(SummaryAttr(summary)),
	})
	var res NodeInitResult
	if err := workflow.ExecuteChildWorkflow(cctx, NodeInitName, in).Get(w.ctx, &res); err != nil {
		w.track.set(memberAddNodeInitStep, StateFailed, failureMessage(err))
		return w.fail(fmt.Sprintf("node-init of %s (child run %s): %s", strings.Join(w.names(hosts), ", "), id, failureMessage(err)))
	}
	w.res.NodeInit = w.names(hosts)
	w.res.Changed += res.Changed
	w.track.set(memberAddNodeInitStep, map[bool]string{true: StateChanged, false: StateUnchanged}[res.Changed > 0],
		fmt.Sprintf("child run %s: %d steps changed, %d unchanged", id, res.Changed, res.Unchanged))
	return nil
}

// existing are the hosts that are members now (not ones this run builds), in inventory order: their
// pg_hba.conf must let the new addresses replicate, since any of them may lead after a failover.
func (w *pgMemberAdd) existing() []PgMember {
	var out []PgMember
	for _, h := range w.in.Hosts {
		if slices.Contains(w.members, h.Name) && !slices.ContainsFunc(w.todo, func(m PgMember) bool { return m.Name == h.Name }) {
			out = append(out, h)
		}
	}
	return out
}
