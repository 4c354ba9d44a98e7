package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgMemberAdd's changes, once its prechecks passed: pg_hba.conf on the members, then the new
// members, each built by PgClusterCreate's own replica steps.

// hba writes the inventory's pg_hba.conf (which lists the new addresses) on every member, one at
// a time, as pg-hba does: the leader's lets the clones in, the others' keep replication working
// after a failover. A reload, never a restart.
func (w *pgMemberAdd) hba(members []PgMember) error {
	var a *activities.Activities
	for _, m := range members {
		sr, err := runStep(w.ctx, w.track, pgHBAStep(m.Name), stepOutcome, a.PgHBA,
			activities.PgHBAInput{PgNodeInput: activities.PgNodeInput{Node: m.Node, Spec: w.in.Spec}})
		if err != nil {
			return w.fail(fmt.Sprintf("pg_hba.conf on %s: %v", m.Name, err))
		}
		w.record(sr)
	}
	return nil
}

// build reads the leader again, right before the clones, and builds the new members in parallel
// from it; then waits until every new member streams.
func (w *pgMemberAdd) build() error {
	var a *activities.Activities
	st, err := runStep(w.ctx, w.track, memberAddSourceStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.in.DCS, Members: w.memberAPIs()})
	if err != nil {
		return w.fail("the cluster's state before the clones: " + err.Error())
	}
	leader, ok := w.host(st.Leader)
	switch {
	case st.Unhealthy() != "":
		err = fmt.Errorf("%s: no leader to clone from", st.Unhealthy())
	case !ok:
		err = fmt.Errorf("the leader %s is not a host of %s in the inventory", st.Leader, w.in.Cluster)
	case slices.ContainsFunc(w.todo, func(m PgMember) bool { return m.Name == leader.Name }):
		err = fmt.Errorf("%s leads the cluster: it is not added again", leader.Name)
	}
	if err != nil {
		w.track.set(memberAddSourceStep, StateFailed, err.Error())
		return w.fail(err.Error())
	}
	w.res.Leader = leader.Name
	w.track.set(memberAddSourceStep, StateUnchanged, "clone from the leader "+leader.Name+": "+st.View)

	errs := make([]error, len(w.todo))
	_ = parallel(w.ctx, len(w.todo), func(ctx workflow.Context, i int) {
		for _, s := range w.lane(w.todo[i], leader) {
			sr, err := runStep(ctx, w.track, s.step, stepOutcome, s.activity, s.input())
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				return
			}
			w.record(sr)
		}
	})
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", w.todo[i].Name, err))
		}
	}
	if len(failed) > 0 {
		return w.fail(strings.Join(failed, "; "))
	}

	sr, err := runStep(w.ctx, w.track, memberAddStreamingStep, checkOutcome, a.WaitMembers, activities.WaitMembersInput{
		DCS: w.in.DCS, Members: w.memberAPIs(), Targets: w.names(w.todo), Until: activities.UntilStreaming, Timeout: PgMemberAddStreamingWithin})
	if err != nil {
		return w.fail(fmt.Sprintf("the new members run but do not stream: %v", err))
	}
	w.res.Steps = append(w.res.Steps, sr)
	w.res.Added = w.names(w.todo)
	return nil
}

// lane is new member m's steps, PgClusterCreate's for a replica: the replication credentials, the
// clone from leader (PgClone, which refuses a source in recovery), its HA agent (which starts it
// as a standby of the leader), pgBackRest's configuration. The leader's agent makes m's
// replication slot once m's agent registers in the DCS.
func (w *pgMemberAdd) lane(m, leader PgMember) []pgStep {
	b := &pgClusterCreate{
		in:      PgClusterCreateInput{Cluster: w.in.Cluster, Spec: w.in.Spec, DCS: w.in.DCS, APIPort: w.in.APIPort},
		primary: leader, res: PgClusterCreateResult{Sysid: w.dcs.Sysid}, apiTLS: true,
	}
	return slices.Concat([]pgStep{b.credentialsOf(m)}, b.replica(m), []pgStep{b.backupConfig(m)})
}

// record keeps a step's result.
func (w *pgMemberAdd) record(sr activities.StepResult) {
	if sr.Changed {
		w.res.Changed++
	}
	w.res.Steps = append(w.res.Steps, sr)
}

// memberAPIs are the agents of every host of the cluster in the inventory.
func (w *pgMemberAdd) memberAPIs() []activities.MemberAPI {
	out := make([]activities.MemberAPI, len(w.in.Hosts))
	for i, h := range w.in.Hosts {
		out[i] = activities.MemberAPI{Name: h.Name, APIURL: activities.AgentAPIURL(h.Node.SSHHost, w.in.APIPort, w.in.DCS.Plaintext)}
	}
	return out
}

// host is the inventory's host of member name.
func (w *pgMemberAdd) host(name string) (PgMember, bool) {
	i := slices.IndexFunc(w.in.Hosts, func(h PgMember) bool { return h.Name == name })
	if i < 0 {
		return PgMember{}, false
	}
	return w.in.Hosts[i], true
}

func (w *pgMemberAdd) names(ms []PgMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// refuse ends a run that changed nothing.
func (w *pgMemberAdd) refuse(msg string) error {
	w.track.skipPending()
	return w.track.fail(fmt.Sprintf("pg-member-add %s refused: %s; nothing was changed", w.in.Cluster, msg), PgMemberAddRefusedType, w.res)
}

// fail ends a run that failed on its way; a rerun does what is left.
func (w *pgMemberAdd) fail(msg string) error {
	w.track.skipPending()
	return w.track.fail(fmt.Sprintf("pg-member-add %s: %s; run it again to finish (its steps are idempotent)", w.in.Cluster, msg), PgMemberAddFailedType, w.res)
}
