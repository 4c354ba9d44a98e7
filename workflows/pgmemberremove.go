package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgMemberRemove takes a replica out of its cluster for good, after an approval: its HA agent
// stops (and its PostgreSQL with it) and stays stopped across the host's restarts, no DCS key
// names it any more (its member key is gone and the sync key moved on), its replication slot is
// dropped on the leader, and its data directory is moved aside, not deleted. The leader is never
// removed: switch over first.
const (
	PgMemberRemoveName    = "PgMemberRemove"
	PgMemberRemoveRunbook = "pg-member-remove"
)

// PgMemberRemoveInput is resolved from the inventory and the command line.
type PgMemberRemoveInput struct {
	PgMembersTarget
	Member   string         `json:"member"` // the replica to remove (a nodename)
	Approval ApprovalPolicy `json:"approval"`
}

// PgMemberForgetWithin is how long the DCS may take to be done with the removed member: the sync
// key moved on, the leader's view without it.
const PgMemberForgetWithin = 2 * time.Minute

func memberForgetStep(member string) step {
	s := controlStep("forget "+member, within(PgMemberForgetWithin+time.Minute, 3))
	s.what = "no DCS key names " + member
	return s
}

func slotDropStep(member string) step {
	s := controlStep("slot "+member, within(2*time.Minute, 5))
	s.what = "drop " + member + "'s replication slot on the leader"
	return s
}

// PgMemberRemove: the cluster to itself; the plan (refusing the leader, an unknown member, a
// cluster without a leader that takes writes or in maintenance mode); the approval; stop the
// agent for good, forget the member, drop its slot, move its data aside.
func PgMemberRemove(ctx workflow.Context, in PgMemberRemoveInput) (PgMemberResult, error) {
	res := PgMemberResult{Cluster: in.Cluster, Member: in.Member}
	if err := setSearchAttributes(ctx, PgMemberRemoveRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, PgMemberRemoveRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	gate, err := newApprovalGate(ctx, in.RequestedBy)
	if err != nil {
		return res, err
	}
	w := &memberRun{ctx: ctx, t: in.PgMembersTarget, runbook: PgMemberRemoveRunbook, member: in.Member, track: track, res: &res, key: runKey(ctx)}
	track.plan(exclusiveStep, membersPlanStep)
	if _, err := claimCluster(ctx, track, in.Cluster); err != nil {
		return res, w.refuse(err.Error())
	}
	st, err := w.readState()
	if err != nil {
		return res, err
	}
	problems, notes := planMemberRemove(in, st)
	if len(problems) > 0 {
		return res, w.refuse(strings.Join(problems, "; "))
	}
	res.Leader, res.Notes = st.Leader, notes
	aside := activities.AsidePath(in.Spec.DataDir, activities.AsideRemoved, w.key)
	res.Plan = []string{
		"stop " + in.Member + "'s HA agent, which stops its PostgreSQL, and keep it from starting at the host's next start",
		"make sure no DCS key names " + in.Member + " (its member key gone, the sync key moved on, the leader's view without it)",
		"drop its replication slot on the leader " + st.Leader,
		"move its data directory " + in.Spec.DataDir + " aside to " + aside + " (kept, not deleted)",
	}
	steps := []step{agentStopStep(in.Member), memberForgetStep(in.Member), slotDropStep(in.Member), dataAsideStep(in.Member)}
	if !in.DryRun {
		track.plan(approvalStep)
	}
	track.plan(steps...)
	track.set(membersPlanStep, StateUnchanged, st.Leader+" leads: "+st.View)
	if in.DryRun {
		return res, w.dryRun(steps)
	}

	plan := fmt.Sprintf("remove %s from %s (leader %s): %s", in.Member, in.Cluster, st.Leader, strings.Join(res.Plan, "; "))
	if len(notes) > 0 {
		plan += ". Note: " + strings.Join(notes, "; ")
	}
	note := &activities.Notification{Event: "approval-requested", Runbook: PgMemberRemoveRunbook, Cluster: in.Cluster, Text: "waiting for approval: " + plan}
	ast, err := gate.decide(ctx, track, approvalStep, plan, in.Approval, note)
	if err != nil {
		return res, err
	}
	res.Approval = &ast
	if !ast.Approved() {
		track.skipPending()
		res.Outcome = notApproved(ast)
		return res, track.fail(fmt.Sprintf("%s of %s in %s was %s: nothing was changed", PgMemberRemoveRunbook, in.Member, in.Cluster, ast.Summary()), PgMembersRefusedType, res)
	}

	var a *activities.Activities
	node := in.memberNodeInput(in.Member, w.key)
	if err := w.do(agentStopStep(in.Member), a.AgentStop, activities.AgentStopInput{MemberNodeInput: node, DCS: in.DCS, Disable: true}); err != nil {
		return res, err
	}
	if err := w.do(memberForgetStep(in.Member), a.MemberForget, activities.MemberForgetInput{
		DCS: in.DCS, Member: in.Member, Members: in.Members, Timeout: PgMemberForgetWithin}); err != nil {
		return res, err
	}
	if err := w.do(slotDropStep(in.Member), a.MemberSlotDrop, activities.SlotDropInput{
		Member: in.Member, Members: in.Members, Nodes: in.Nodes, Port: in.Spec.Port}); err != nil {
		return res, err
	}
	if err := w.do(dataAsideStep(in.Member), a.DataAside, activities.DataAsideInput{MemberNodeInput: node, Why: activities.AsideRemoved}); err != nil {
		return res, err
	}
	res.Outcome = "removed"
	track.setPhase(PhaseDone)
	return res, nil
}

// planMemberRemove is why the run is refused (each with its fix) and what it should say
// otherwise, from the inventory and the leader's view.
func planMemberRemove(in PgMemberRemoveInput, st activities.ClusterState) (problems, notes []string) {
	problems = replicaTargetProblems(in.PgMembersTarget, in.Member, st, replicaTargetWords{
		runbook:   "pg-member-remove",
		needsLead: "drops the member's slot on a leader that takes writes",
		pausedWhy: "the sync key would not move on",
		leaderFix: "pigwf never removes the leader; switch over first (`pigwf start switchover --cluster {cluster}`), then remove it as a replica",
	})
	if len(problems) > 0 {
		return problems, nil
	}
	if !slices.Contains(st.Replicas, in.Member) {
		notes = append(notes, in.Member+" is not in the leader's view (its agent does not run): its key, slot and data are handled all the same")
	}
	if slices.Contains(st.SyncStandbys, in.Member) {
		notes = append(notes, in.Member+" is a synchronous standby: the leader's agent picks another (or none) once it is gone; in strict synchronous mode commits wait until then")
	}
	if others := slices.DeleteFunc(slices.Clone(st.Replicas), func(r string) bool { return r == in.Member }); len(others) == 0 {
		notes = append(notes, in.Cluster+" is left with its leader alone: no failover is possible until a replica is added")
	}
	notes = append(notes, "remove "+in.Member+" from the inventory afterwards, or a later pg-cluster-create adds it back")
	return nil, notes
}
