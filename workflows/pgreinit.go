package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgReinit re-creates a broken or diverged replica from the leader (Patroni's `patronictl
// reinit`): its HA agent stops (and its PostgreSQL with it), its data directory is moved aside
// (never deleted), and the agent, started again, finds the directory empty and clones the leader
// with pg_basebackup; the run ends once the member streams. The leader is refused.
const (
	PgReinitName    = "PgReinit"
	PgReinitRunbook = "pg-reinit"
)

// PgReinitInput is resolved from the inventory and the command line.
type PgReinitInput struct {
	PgMembersTarget
	Member string `json:"member"` // the replica to re-create (a nodename)
}

// PgReinitStreamingWithin is how long the re-created member may take to clone and stream.
const PgReinitStreamingWithin = 2 * time.Hour

func pgReinitStreamingStep(member string) step {
	s := memberStep(member, "streaming", within(PgReinitStreamingWithin+time.Minute, 2))
	s.what = "wait until it is cloned and streams"
	return s
}

// PgReinitCommand is the command that re-creates member of cluster.
func PgReinitCommand(cluster, member string) string {
	return "pigwf start " + PgReinitRunbook + " --cluster " + cluster + " --member " + member
}

// PgReinit: the cluster to itself; the plan (refusing the leader, an unknown member, a cluster
// without a leader that takes writes or in maintenance mode); stop, move aside, start, stream.
func PgReinit(ctx workflow.Context, in PgReinitInput) (PgMemberResult, error) {
	res := PgMemberResult{Cluster: in.Cluster, Member: in.Member}
	if err := setSearchAttributes(ctx, PgReinitRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, PgReinitRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	w := &memberRun{ctx: ctx, t: in.PgMembersTarget, runbook: PgReinitRunbook, member: in.Member, track: track, res: &res, key: runKey(ctx)}
	track.plan(exclusiveStep, membersPlanStep)
	if _, err := claimCluster(ctx, track, in.Cluster); err != nil {
		return res, w.refuse(err.Error())
	}
	st, err := w.readState()
	if err != nil {
		return res, err
	}
	if problems := planReinit(in, st); len(problems) > 0 {
		return res, w.refuse(strings.Join(problems, "; "))
	}
	aside := activities.AsidePath(in.Spec.DataDir, activities.AsideReinit, w.key)
	res.Leader = st.Leader
	res.Plan = []string{
		"stop " + in.Member + "'s HA agent, which stops its PostgreSQL",
		"move its data directory " + in.Spec.DataDir + " aside to " + aside + " (kept, not deleted), leaving an empty one",
		"start its agent, which clones the leader " + st.Leader + " into it with pg_basebackup",
		"wait until " + in.Member + " streams from " + st.Leader + " (at most " + PgReinitStreamingWithin.String() + ")",
	}
	steps := []step{agentStopStep(in.Member), dataAsideStep(in.Member), agentStartStep(in.Member), pgReinitStreamingStep(in.Member)}
	track.plan(steps...)
	track.set(membersPlanStep, StateUnchanged, st.Leader+" leads: "+st.View)
	if in.DryRun {
		return res, w.dryRun(steps)
	}

	var a *activities.Activities
	node := in.memberNodeInput(in.Member, w.key)
	if err := w.do(agentStopStep(in.Member), a.AgentStop, activities.AgentStopInput{MemberNodeInput: node, DCS: in.DCS}); err != nil {
		return res, err
	}
	if err := w.do(dataAsideStep(in.Member), a.DataAside, activities.DataAsideInput{MemberNodeInput: node, Why: activities.AsideReinit}); err != nil {
		return res, err
	}
	if err := w.do(agentStartStep(in.Member), a.AgentStart, node); err != nil {
		return res, err
	}
	if err := w.do(pgReinitStreamingStep(in.Member), a.WaitMembers, activities.WaitMembersInput{
		DCS: in.DCS, Members: in.Members, Targets: []string{in.Member}, Until: activities.UntilStreaming, Timeout: PgReinitStreamingWithin}); err != nil {
		return res, err
	}
	res.Outcome = "reinitialized"
	track.setPhase(PhaseDone)
	return res, nil
}

// planReinit is why the run is refused ("" each with its fix), from the inventory and the
// leader's view.
func planReinit(in PgReinitInput, st activities.ClusterState) []string {
	return replicaTargetProblems(in.PgMembersTarget, in.Member, st, replicaTargetWords{
		runbook:   "pg-reinit",
		needsLead: "clones the member from a leader that takes writes",
		pausedWhy: "no clone either",
		leaderFix: "pg-reinit re-creates replicas only; switch over first (`pigwf start switchover --cluster {cluster}`), then reinit it as a replica",
	})
}

// memberRun is one pg-reinit or pg-member-remove run: the steps on one member.
type memberRun struct {
	ctx     workflow.Context
	t       PgMembersTarget
	runbook string
	member  string
	key     string
	track   *tracker
	res     *PgMemberResult
}

// readState reads the cluster through its agents for the plan; a failure refuses the run.
func (w *memberRun) readState() (activities.ClusterState, error) {
	var a *activities.Activities
	st, err := runStep(w.ctx, w.track, membersPlanStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.t.DCS, Members: w.t.Members})
	if err != nil {
		return st, w.refuse("the cluster's state: " + err.Error())
	}
	return st, nil
}

// do runs one step of the member, recording its result; a failure ends the run.
func (w *memberRun) do(s step, activity any, in any) error {
	sr, err := runStep(w.ctx, w.track, s, stepOutcome, activity, in)
	if err != nil {
		return w.fail(fmt.Sprintf("%s: %s failed: %v", w.member, s.name, err))
	}
	if p := sr.Facts["aside"]; p != "" {
		w.res.Aside = p
	}
	w.res.Steps = append(w.res.Steps, sr)
	return nil
}

// dryRun ends a dry run: the plan, every step skipped.
func (w *memberRun) dryRun(steps []step) error {
	dryRunSteps(w.track, steps, w.res.Plan)
	w.res.Outcome = "dry run"
	w.track.setPhase(PhaseDone)
	return nil
}

// refuse ends a run that changed nothing.
func (w *memberRun) refuse(why string) error {
	msg := fmt.Sprintf("%s of %s in %s refused: %s; nothing was changed", w.runbook, w.member, w.t.Cluster, why)
	w.track.set(membersPlanStep, StateFailed, msg)
	w.track.skipPending()
	w.res.Outcome = "refused"
	return w.track.fail(msg, PgMembersRefusedType, *w.res)
}

// fail ends a run whose step failed, saying what was done before.
func (w *memberRun) fail(msg string) error {
	w.track.skipPending()
	w.res.Outcome = "failed"
	var done []string
	for _, sr := range w.res.Steps {
		done = append(done, sr.Changes...)
	}
	did := "nothing"
	if len(done) > 0 {
		did = strings.Join(done, "; ")
	}
	if w.res.Aside != "" {
		did += "; the old data directory is kept at " + w.res.Aside
	}
	return w.track.fail(fmt.Sprintf("%s of %s in %s: %s; done before that: %s", w.runbook, w.member, w.t.Cluster, msg, did), PgMembersFailedType, *w.res)
}
