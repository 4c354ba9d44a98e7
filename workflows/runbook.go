package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/dsl"
)

// Runbook runs a custom runbook (dsl/, docs/runbooks.md): the one interpreter of the format. Its
// Runbook search attribute, its approval policies' runbook and its workflow ID's prefix are
// RunbookRunbook, never the file's own name: that name is the author's choice, and must not pick
// an approval policy or a metrics label. The name shows in the run's summary, details and
// progress (Progress.Name).
const (
	RunbookName    = "Runbook"
	RunbookRunbook = "runbook"
)

// RunbookInput is resolved from the inventory and a checked file (starter.RunbookInput).
type RunbookInput struct {
	Cluster     string                 `json:"cluster"`
	Runbook     dsl.Runbook            `json:"runbook"` // parsed and validated by the CLI
	RequestedBy string                 `json:"requested_by"`
	DCS         activities.DCSInput    `json:"dcs"`
	Members     []activities.MemberAPI `json:"members"` // every member's agent
	Nodes       []activities.Node      `json:"nodes"`   // every member's host, as Members
	Port        int                    `json:"port"`    // PostgreSQL's, for sql and password steps
	Approval    ApprovalPolicy         `json:"approval"`
	DryRun      bool                   `json:"dry_run,omitempty"`
	Children    RunbookChildren        `json:"children"`
}

// RunbookChildren are the inputs of the built-in runbooks the file's steps start, built from the
// inventory as their own `pigwf start` builds them; only those the file uses are set.
type RunbookChildren struct {
	NodeInit        *NodeInitInput        `json:"node_init,omitempty"`
	PgClusterCreate *PgClusterCreateInput `json:"pg_cluster_create,omitempty"`
	PgService       *PgServiceInput       `json:"pg_service,omitempty"`
	// Switchover's candidate, reason and requester come from each step and the run.
	Switchover *SwitchoverInput `json:"switchover,omitempty"`
}

// RunbookResult is the run's record.
type RunbookResult struct {
	Cluster   string              `json:"cluster"`
	Runbook   string              `json:"runbook"` // the file's name for itself
	File      string              `json:"file"`
	Plan      []string            `json:"plan,omitempty"` // a dry run's: each step and the members it would act on now
	Steps     []RunbookStepResult `json:"steps"`
	Approvals []ApprovalState     `json:"approvals,omitempty"`
	Outcome   string              `json:"outcome"` // done | dry run | failed | rejected | timed out
}

// RunbookStepResult is how one step ended on one member ("" for the step as a whole).
type RunbookStepResult struct {
	Step   string `json:"step"`
	Line   int    `json:"line"`
	Member string `json:"member,omitempty"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Error types of a Runbook that did not finish.
const (
	RunbookFailedType      = "RunbookFailed"      // a step failed, or the input is not one pigwf starts
	RunbookNotApprovedType = "RunbookNotApproved" // an approval (its own, or a child switchover's) was not given
)

// runbookRun is one Runbook run.
type runbookRun struct {
	in    RunbookInput
	rb    *dsl.Runbook
	track *tracker
	gate  *approvalGate
	res   RunbookResult
	nodes map[string]activities.Node
	apis  map[string]activities.MemberAPI
	// locked: the run holds the cluster's lock, and its child runs run under it.
	locked bool
}

// stopped says why a run stopped at a step; its type decides the run's error type.
type stopped struct {
	msg     string
	errType string
	outcome string
}

func (s *stopped) Error() string { return s.msg }

// Runbook checks the input, lists the file's steps, then runs them in order: each on the members
// its target selects now (the cluster's state read through the agents at the step; a loop reads
// it once, at its start), a loop's steps for each member in turn or all at once, a when: step
// only when the named step's result matches, approvals through the run's gate, switchovers and
// other built-in runbooks as child runs. The first step that fails ends the run (a parallel
// loop's other members finish first) and the later steps are skipped. A dry run reads the
// cluster's state and returns the plan, changing nothing.
func Runbook(ctx workflow.Context, in RunbookInput) (RunbookResult, error) {
	r := &runbookRun{in: in, rb: &in.Runbook, res: RunbookResult{Cluster: in.Cluster, Runbook: in.Runbook.Name, File: in.Runbook.File}}
	if err := setSearchAttributes(ctx, RunbookRunbook, in.Cluster); err != nil {
		return r.res, err
	}
	var err error
	if r.track, err = newTracker(ctx, RunbookRunbook, in.Cluster); err != nil {
		return r.res, err
	}
	if r.locked, err = lockCluster(ctx, r.track, in.Cluster, false); err != nil {
		return r.res, err
	}
	r.track.p.Name = in.Runbook.Name
	if r.gate, err = newApprovalGate(ctx, in.RequestedBy); err != nil {
		return r.res, err
	}
	var rows []step
	for _, s := range in.Runbook.Steps {
		rows = append(rows, r.row("", s))
	}
	r.track.plan(rows...)
	if why := r.check(ctx); why != "" {
		r.res.Outcome = "failed"
		return r.res, r.track.fail(why, RunbookFailedType, r.res)
	}
	if in.DryRun {
		r.dryRun(ctx)
		return r.res, nil
	}
	if err := r.steps(ctx, in.Runbook.Steps, newScope(nil, "", nil)); err != nil {
		var st *stopped
		if errors.As(err, &st) {
			r.res.Outcome = st.outcome
			return r.res, r.track.fail(st.msg, st.errType, r.res)
		}
		return r.res, err
	}
	r.res.Outcome = "done"
	r.track.setPhase(PhaseDone)
	return r.res, nil
}

// check refuses an input `pigwf start runbook` would not have sent ("" when it is one): a format
// this worker does not know, members without hosts, a file that breaks the format's rules. The
// CLI checked the file, but anyone who may start a workflow can send another input, and the
// rules (an approval before every risky step) are what keep a run safe. The rules are the
// worker's code, which may change while the run is open: their verdict is recorded once
// (SideEffect) and replayed as recorded.
func (r *runbookRun) check(ctx workflow.Context) string {
	if f := r.rb.Format; f < 1 || f > dsl.FormatVersion {
		return fmt.Sprintf("runbook %s is in format %d and this worker runs formats 1 to %d: upgrade the worker (or check the file with this pigwf)", r.rb.Name, f, dsl.FormatVersion)
	}
	if len(r.in.Nodes) != len(r.in.Members) || len(r.in.Members) == 0 {
		return fmt.Sprintf("the input has %d members and %d hosts: start runbooks with `pigwf start runbook`", len(r.in.Members), len(r.in.Nodes))
	}
	r.nodes, r.apis = map[string]activities.Node{}, map[string]activities.MemberAPI{}
	members := make([]dsl.Member, len(r.in.Members))
	for i, m := range r.in.Members {
		r.apis[m.Name], r.nodes[m.Name] = m, r.in.Nodes[i]
		members[i] = dsl.Member{Name: m.Name}
	}
	var problems string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		if err := dsl.Validate(r.rb, members); err != nil {
			return err.Error()
		}
		return ""
	}).Get(&problems); err != nil {
		return "checking the runbook: " + err.Error()
	}
	if problems != "" {
		return "the runbook breaks the format's rules, nothing was done (was the run started with a crafted input instead of `pigwf start runbook`?): " +
			strings.ReplaceAll(problems, "\n", "; ")
	}
	return ""
}

// dryRun reads the cluster's state (when a step acts on members) and returns the plan with the
// members each step would act on now; steps after a switchover may find other roles then.
func (r *runbookRun) dryRun(ctx workflow.Context) {
	var state *activities.ClusterState
	note := ""
	for _, s := range r.rb.Steps {
		if t := s.Target(); t != "" && t != dsl.TargetMember {
			st, err := r.readState(ctx, "dry-run")
			if err != nil {
				note = "the members each step acts on are not known: the cluster's state could not be read (" + failureMessage(err) + ")"
			} else {
				state = &st
			}
			break
		}
	}
	r.res.Plan = r.rb.Plan(func(s dsl.Step) string {
		t := s.Target()
		if state == nil || t == "" || t == dsl.TargetMember {
			return ""
		}
		names, err := selectMembers(t, *state)
		if err != nil {
			return err.Error()
		}
		return strings.Join(names, ", ") + " now"
	})
	if note != "" {
		r.res.Plan = append(r.res.Plan, note)
	}
	for _, s := range r.rb.Steps {
		r.track.set(r.row("", s), StateSkipped, "dry run: nothing was changed")
	}
	r.res.Outcome = "dry run"
	r.track.setPhase(PhaseDone)
}

// scope is what a list of steps runs in: the results of the steps before (for when:), and in a
// loop, its member and the cluster's state the loop read at its start.
type scope struct {
	parent  *scope
	results map[string]bool // step name -> changed
	any     bool            // a step of this scope changed something: a loop member's result
	member  string
	state   *activities.ClusterState
}

func newScope(parent *scope, member string, state *activities.ClusterState) *scope {
	return &scope{parent: parent, results: map[string]bool{}, member: member, state: state}
}

// changed is the result of the named step, here or in an enclosing scope.
func (sc *scope) changed(name string) bool {
	for s := sc; s != nil; s = s.parent {
		if c, ok := s.results[name]; ok {
			return c
		}
	}
	return false
}

// record is a step's result (a skipped step changed nothing).
func (sc *scope) record(name string, changed bool) {
	sc.results[name] = changed
	sc.any = sc.any || changed
}

// snapshot is the cluster's state of the enclosing loop, nil outside one.
func (sc *scope) snapshot() *activities.ClusterState {
	for s := sc; s != nil; s = s.parent {
		if s.state != nil {
			return s.state
		}
	}
	return nil
}

// selectMembers is the members t selects in state: the leader, the replicas, or both.
func selectMembers(t dsl.Target, st activities.ClusterState) ([]string, error) {
	var out []string
	switch t {
	case dsl.TargetLeader:
		if st.Leader != "" {
			out = []string{st.Leader}
		}
	case dsl.TargetReplicas:
		out = append(out, st.Replicas...)
	case dsl.TargetMembers:
		if st.Leader != "" {
			out = append(out, st.Leader)
		}
		out = append(out, st.Replicas...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no member is %s now (%s)", map[dsl.Target]string{dsl.TargetLeader: "the leader", dsl.TargetReplicas: "a replica", dsl.TargetMembers: "up"}[t], orDefault(st.View, "the agents report none"))
	}
	return out, nil
}
