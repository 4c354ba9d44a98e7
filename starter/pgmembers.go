package starter

import (
	"fmt"
	"strings"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/internal/human"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// PgMembersRequest is what the command line asks of pg-reinit, pg-member-remove or
// pg-cluster-remove.
type PgMembersRequest struct {
	Member string // pg-reinit, pg-member-remove: the member (nodename or address)
	Purge  bool   // pg-cluster-remove: delete the moved-aside data after a second approval
	DryRun bool
	Reason string
	// ApprovalTimeout: the removals' gates wait this long (0: pigwf_approval_timeout or the default).
	ApprovalTimeout time.Duration
}

// pgMembersTarget resolves the cluster the three runbooks work on: its DCS, its members' agents
// and nodes, its layout.
func pgMembersTarget(inv *inventory.Inventory, cluster *inventory.Cluster, r PgMembersRequest, requester, runbook string) (workflows.PgMembersTarget, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgMembersTarget{}, err
	}
	if len(inv.Etcd) == 0 {
		return workflows.PgMembersTarget{}, fmt.Errorf("%s has no etcd group: %s works through the HA agents and the DCS, which need etcd", inv.File, runbook)
	}
	t := workflows.PgMembersTarget{Cluster: cluster.Name, DCS: dcsOf(inv, cluster), Members: MemberAPIs(inv, cluster), Spec: pgSpec(inv, cluster, ""),
		DryRun: r.DryRun, Reason: r.Reason, RequestedBy: requester}
	for _, h := range cluster.Hosts {
		t.Nodes = append(t.Nodes, NodeOf(h))
	}
	return t, nil
}

// member is the --member a command line names, as a nodename; refused when the inventory does not
// hold it, before anything starts.
func member(cluster *inventory.Cluster, t workflows.PgMembersTarget, nameOrAddr string) (string, error) {
	if nameOrAddr == "" {
		return "", fmt.Errorf("give --member: the member of %s (a nodename or its address)", cluster.Name)
	}
	name, ok := memberName(cluster, nameOrAddr)
	if !ok {
		var names []string
		for _, n := range t.Nodes {
			names = append(names, n.Name)
		}
		return "", fmt.Errorf("--member %s is not a member of %s: give one of %s (a nodename or its address)", nameOrAddr, cluster.Name, strings.Join(names, ", "))
	}
	return name, nil
}

// PgReinitInput resolves a PgReinit from the inventory.
func PgReinitInput(inv *inventory.Inventory, cluster *inventory.Cluster, r PgMembersRequest, requester string) (workflows.PgReinitInput, error) {
	t, err := pgMembersTarget(inv, cluster, r, requester, workflows.PgReinitRunbook)
	if err != nil {
		return workflows.PgReinitInput{}, err
	}
	m, err := member(cluster, t, r.Member)
	return workflows.PgReinitInput{PgMembersTarget: t, Member: m}, err
}

// PgMemberRemoveInput resolves a PgMemberRemove from the inventory.
func PgMemberRemoveInput(inv *inventory.Inventory, cluster *inventory.Cluster, r PgMembersRequest, requester string) (workflows.PgMemberRemoveInput, error) {
	t, err := pgMembersTarget(inv, cluster, r, requester, workflows.PgMemberRemoveRunbook)
	if err != nil {
		return workflows.PgMemberRemoveInput{}, err
	}
	m, err := member(cluster, t, r.Member)
	return workflows.PgMemberRemoveInput{PgMembersTarget: t, Member: m, Approval: approvalPolicy(cluster, r.ApprovalTimeout)}, err
}

// PgClusterRemoveInput resolves a PgClusterRemove from the inventory.
func PgClusterRemoveInput(inv *inventory.Inventory, cluster *inventory.Cluster, r PgMembersRequest, requester string) (workflows.PgClusterRemoveInput, error) {
	t, err := pgMembersTarget(inv, cluster, r, requester, workflows.PgClusterRemoveRunbook)
	if err != nil {
		return workflows.PgClusterRemoveInput{}, err
	}
	return workflows.PgClusterRemoveInput{PgMembersTarget: t, Purge: r.Purge, Approval: approvalPolicy(cluster, r.ApprovalTimeout)}, nil
}

// asideName is how a data directory moved aside is named, for people.
func asideName(dataDir, why string) string {
	return activities.AsidePath(dataDir, why, "<run start, UTC>")
}

// PgReinitMeta: "pg-reinit pg-test: re-create pg-test-3 from the leader, requested by alice".
func PgReinitMeta(in workflows.PgReinitInput, req Request) RunMeta {
	var d details
	d.header(workflows.PgReinitRunbook, in.Cluster, req)
	d.fact("Member", in.Member)
	d.fact("Reason", in.Reason)
	steps := []string{
		"Refused, with nothing changed, while another pigwf run is open on the cluster.",
		"Plan from the leader's agent: refused, with nothing changed, for the leader (switch over first), a cluster without a leader that takes writes, or in maintenance mode.",
	}
	if in.DryRun {
		steps = append(steps, "Dry run: the plan is reported; nothing is changed.")
	} else {
		steps = append(steps,
			"Stop the member's HA agent, which stops its PostgreSQL (refused if it leads by then).",
			"Move its data directory aside to "+asideName(in.Spec.DataDir, activities.AsideReinit)+" (kept, never deleted), leaving an empty one.",
			"Start its agent, which clones the leader into the empty directory with pg_basebackup.",
			"Wait until it streams from the leader (at most "+human.Duration(workflows.PgReinitStreamingWithin)+").")
	}
	d.plan(steps...)
	return RunMeta{Summary: summaryLine(workflows.PgReinitRunbook, in.Cluster, "re-create "+in.Member+" from the leader", req), Details: d.String()}
}

// PgMemberRemoveMeta: "pg-member-remove pg-test: remove pg-test-3, requested by alice".
func PgMemberRemoveMeta(in workflows.PgMemberRemoveInput, req Request) RunMeta {
	var d details
	d.header(workflows.PgMemberRemoveRunbook, in.Cluster, req)
	d.fact("Member", in.Member)
	d.fact("Reason", in.Reason)
	steps := []string{
		"Refused, with nothing changed, while another pigwf run is open on the cluster.",
		"Plan from the leader's agent: refused, with nothing changed, for the leader (switch over first), a cluster without a leader that takes writes, or in maintenance mode.",
	}
	if in.DryRun {
		steps = append(steps, "Dry run: the plan is reported; nothing is changed, and no approval is asked.")
	} else {
		steps = append(steps,
			upperFirst(approvalStep(in.Approval))+".",
			"Stop the member's HA agent, which stops its PostgreSQL, and keep it from starting at the host's next start.",
			"Make sure no DCS key names the member: its member key gone, the sync key moved on to another standby (or none), the leader's view without it.",
			"Drop its replication slot on the leader.",
			"Move its data directory aside to "+asideName(in.Spec.DataDir, activities.AsideRemoved)+" (kept, never deleted).")
	}
	d.plan(steps...)
	if !in.DryRun {
		d.approve(workflows.PgMemberRemoveRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.PgMemberRemoveRunbook, in.Cluster, "remove "+in.Member, req), Details: d.String()}
}

// PgClusterRemoveMeta: "pg-cluster-remove pg-test: remove the cluster, requested by alice".
func PgClusterRemoveMeta(in workflows.PgClusterRemoveInput, req Request) RunMeta {
	var d details
	d.header(workflows.PgClusterRemoveRunbook, in.Cluster, req)
	d.fact("Reason", in.Reason)
	what := "remove the cluster (data kept aside)"
	if in.Purge {
		what = "remove the cluster and purge its data (two approvals)"
	}
	steps := []string{
		"Refused, with nothing changed, while another pigwf run is open on the cluster.",
		"Plan from the DCS: refused, with nothing changed, when it names a member the inventory does not.",
	}
	if in.DryRun {
		steps = append(steps, "Dry run: the plan is reported; nothing is changed, and no approval is asked.")
	} else {
		steps = append(steps,
			upperFirst(approvalStep(in.Approval))+".",
			"Stop every member's HA agent and PostgreSQL, replicas first and the leader last, and keep them from starting at the hosts' next start.",
			"Delete the cluster's keys in the DCS.",
			"Move every member's data directory aside to "+asideName(in.Spec.DataDir, activities.AsideRemoved)+" (kept, never deleted).")
		if in.Purge {
			steps = append(steps, "A second, separate approval; then delete those moved-aside directories for good. pgBackRest's repository and its backups are left alone.")
		}
	}
	d.plan(steps...)
	if !in.DryRun {
		d.approve(workflows.PgClusterRemoveRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.PgClusterRemoveRunbook, in.Cluster, what, req), Details: d.String()}
}
