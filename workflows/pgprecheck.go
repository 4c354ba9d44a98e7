package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgClusterCreate's prechecks: the DCS and every node, in parallel, all problems reported
// together before anything changes; and, with --force, moving another system's data aside.

var dcsStatusStep = controlStep("dcs-status", within(time.Minute, 3))

func precheckStep(m PgMember) step {
	return memberStep(m.Name, activities.StepPrecheck, within(time.Minute, 3))
}

// checkDCS reads what the DCS knows of the cluster. An unreachable DCS is a problem; a failed
// activity ends the run.
func (w *pgClusterCreate) checkDCS() (problems []string, err error) {
	var a *activities.Activities
	w.track.plan(dcsStatusStep)
	w.dcs, err = runStep(w.ctx, w.track, dcsStatusStep, dcsOutcome, a.DCSStatus, w.in.DCS)
	if err != nil {
		return nil, w.fail("precheck failed: " + err.Error())
	}
	if !w.dcs.Reachable {
		problems = append(problems, "etcd: "+w.dcs.Unreachable)
	}
	return problems, nil
}

func dcsOutcome(d activities.DCSState) (string, string) {
	switch {
	case !d.Reachable:
		return StateFailed, d.Unreachable
	case d.Sysid != "":
		return StateUnchanged, fmt.Sprintf("cluster registered with system %s, leader %q", d.Sysid, d.Leader)
	}
	return StateUnchanged, "no keys yet"
}

// followCurrentLeader: after a failover the cluster's leader is no longer the inventory's primary
// (which only names who bootstraps): steps that belong on the primary run on the current leader.
func (w *pgClusterCreate) followCurrentLeader() {
	if workflow.GetVersion(w.ctx, "pgcc-current-leader", workflow.DefaultVersion, 1) == 1 && w.dcs.Leader != "" && w.dcs.Leader != w.primary.Name {
		for i, m := range w.in.Members {
			if m.Name == w.dcs.Leader {
				rest := append(append([]PgMember{}, w.in.Members[:i]...), w.in.Members[i+1:]...)
				w.primary, w.replicas = m, rest
				w.res.Primary = m.Name
				break
			}
		}
	}
}

// checkNodes runs the precheck on every member in parallel and returns every problem found.
func (w *pgClusterCreate) checkNodes() []string {
	var problems []string
	sysids := map[string]string{} // member -> system identifier of its data directory
	errs := make([]error, len(w.in.Members))
	// The parallel wait fails only when the run is canceled; the next step then fails as canceled.
	_ = parallel(w.ctx, len(w.in.Members), func(ctx workflow.Context, i int) {
		errs[i] = w.checkNode(ctx, w.in.Members[i], sysids)
	})
	for i, err := range errs {
		if err != nil {
			problems = append(problems, w.in.Members[i].Node.String()+": "+err.Error())
		}
	}
	// A replica with data but no registered cluster, or data different from the primary's, is
	// not this cluster's: refuse rather than guess.
	if w.dcs.Sysid == "" {
		for _, m := range w.replicas {
			if s := sysids[m.Name]; s != "" && s != sysids[w.primary.Name] && w.foreign[m.Name] == "" {
				w.foreign[m.Name] = s
				if !w.in.Force {
					problems = append(problems, fmt.Sprintf("%s: %s holds system %s, which is not the primary's (%q): move it away if it is not needed, or run with --force to have it moved aside after an approval", m.Node, w.in.Spec.DataDir, s, sysids[w.primary.Name]))
				}
			}
		}
	}
	return problems
}

// checkNode runs the precheck on one member; its findings fail the step.
func (w *pgClusterCreate) checkNode(ctx workflow.Context, m PgMember, sysids map[string]string) error {
	var a *activities.Activities
	var findings []string
	_, err := runStep(ctx, w.track, precheckStep(m), func(sr activities.StepResult) (string, string) {
		findings = w.findings(m, sr, sysids)
		if len(findings) > 0 {
			return StateFailed, strings.Join(findings, "; ")
		}
		return StateUnchanged, sr.Summary()
	}, a.PgPrecheck, activities.PgNodeInput{Node: m.Node, Spec: w.in.Spec, Etcd: w.in.DCS.Endpoints})
	if err != nil {
		return fmt.Errorf("%s: %w", m.Node, err)
	}
	if len(findings) > 0 {
		return errors.New(strings.Join(findings, "; "))
	}
	return nil
}

// findings are the problems a member's precheck reported, and data directories of another
// system (recorded in w.foreign; refused unless forced).
func (w *pgClusterCreate) findings(m PgMember, sr activities.StepResult, sysids map[string]string) []string {
	var mine []string
	for _, k := range sortedFactKeys(sr.Facts) {
		if strings.HasPrefix(k, "problem.") {
			mine = append(mine, sr.Facts[k])
		}
	}
	s := sr.Facts["sysid"]
	if s == "" {
		return mine
	}
	sysids[m.Name] = s
	// Before the DCS knows the cluster, only data pigwf created for it (the marker) is ours.
	if w.dcs.Sysid == "" && sr.Facts["marker"] != activities.ClusterMarker(w.in.Cluster, s) {
		w.foreign[m.Name] = s
		if !w.in.Force {
			mine = append(mine, fmt.Sprintf("%s holds system %s, which pigwf did not create for %s: move the data directory away if it is not needed, or run with --force to have it moved aside after an approval", w.in.Spec.DataDir, s, w.in.Cluster))
		}
	}
	if w.dcs.Sysid != "" && s != w.dcs.Sysid {
		w.foreign[m.Name] = s
		if !w.in.Force {
			mine = append(mine, fmt.Sprintf("%s holds system %s but cluster %s is system %s: move the data directory away if it is not needed, or run with --force to have it moved aside after an approval", w.in.Spec.DataDir, s, w.in.Cluster, w.dcs.Sysid))
		}
	}
	return mine
}

func sortedFactKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// moveAsideForeignData: with --force, another system's data directories are moved aside
// (renamed, never deleted), but only after a person agrees.
func (w *pgClusterCreate) moveAsideForeignData() error {
	if len(w.foreign) == 0 {
		return nil
	}
	var a *activities.Activities
	var moves []string
	var targets []PgMember
	for _, m := range w.in.Members {
		if s, ok := w.foreign[m.Name]; ok {
			moves = append(moves, fmt.Sprintf("%s: %s (system %s)", m.Name, w.in.Spec.DataDir, s))
			targets = append(targets, m)
		}
	}
	w.track.plan(approvalStep)
	plan := fmt.Sprintf("move aside (rename, not delete) the data directories of another system, then build %s: %s", w.in.Cluster, strings.Join(moves, "; "))
	st, err := w.gate.decide(w.ctx, w.track, approvalStep, plan, w.in.Approval, nil)
	if err != nil {
		return err
	}
	if !st.Approved() {
		return w.fail(fmt.Sprintf("pg-cluster-create %s: forcing was %s: nothing was changed", w.in.Cluster, st.Summary()))
	}
	for _, m := range targets {
		s := onMember(m, "move-aside", within(2*time.Minute, 3), a.PgMoveAside, func() any {
			ni := w.nodeInput(m)
			ni.ClusterSysid = w.foreign[m.Name]
			return ni
		})
		w.track.plan(s.step)
		if err := w.execute(w.ctx, s); err != nil {
			return w.fail(err.Error())
		}
	}
	return nil
}
