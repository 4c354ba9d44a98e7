package starter

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// PgMemberAddInput resolves a PgMemberAdd from the inventory, which lists the new hosts (nodes,
// by address or nodename) under the cluster already: every host of the cluster, the spec rendered
// with all of them (so pg_hba.conf lets the new addresses replicate), and node-init's input for the
// new hosts. A new host must join as a replica (pg_role replica or offline).
func PgMemberAddInput(inv *inventory.Inventory, cluster *inventory.Cluster, nodes []string, inventoryFile string) (workflows.PgMemberAddInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgMemberAddInput{}, err
	}
	if len(inv.Etcd) == 0 {
		return workflows.PgMemberAddInput{}, fmt.Errorf("%s has no etcd group: pigwf's HA agents need etcd as the DCS", inv.File)
	}
	if len(nodes) == 0 {
		return workflows.PgMemberAddInput{}, errors.New("--nodes is required: the new hosts (address or nodename), which the inventory lists under the cluster")
	}
	hosts, err := cluster.SelectHosts(nodes)
	if err != nil {
		return workflows.PgMemberAddInput{}, fmt.Errorf("%w: add the new hosts to the inventory under %s first", err, cluster.Group)
	}
	abs, err := filepath.Abs(inventoryFile)
	if err != nil {
		return workflows.PgMemberAddInput{}, err
	}
	in := workflows.PgMemberAddInput{Cluster: cluster.Name, Spec: pgSpec(inv, cluster, abs), DCS: dcsOf(inv, cluster), APIPort: AgentAPIPort}
	for _, h := range cluster.Hosts {
		in.Hosts = append(in.Hosts, workflows.PgMember{Name: h.Node.Nodename, Role: h.Role, Node: NodeOf(h), Tags: h.Tags})
	}
	var addrs []string
	for _, h := range hosts {
		if h.Role == inventory.RolePrimary {
			return in, fmt.Errorf("%s has pg_role: primary in the inventory: a new member joins as a replica (pg_role: replica, or offline); the cluster's leader stays as it is", h.Addr)
		}
		in.New = append(in.New, h.Node.Nodename)
		addrs = append(addrs, h.Addr)
	}
	if in.NodeInit, err = NodeInitInput(cluster, addrs); err != nil {
		return in, err
	}
	return in, nil
}

// PgMemberAddMeta: "pg-member-add pg-test: pg-test-4, requested by alice".
func PgMemberAddMeta(in workflows.PgMemberAddInput, req Request) RunMeta {
	what := strings.Join(in.New, ", ")
	var d details
	d.header(workflows.PgMemberAddRunbook, in.Cluster, req)
	d.fact("New members", what)
	if in.DryRun {
		what += ", dry run"
		d.fact("Dry run", "`--dry-run`: the prechecks, then the plan below is reported; nothing is changed")
	}
	d.plan(
		"Refuse, with nothing changed, when another run is open on the cluster, it has no leader that takes writes, it is in maintenance mode, or a new host is not ready (node-init's problems apart). New hosts that stream already are left alone.",
		"node-init as a child run on the new hosts that lack it; their precheck again.",
		"pg_hba.conf (rendered from the inventory, which lists the new addresses) on every member, one at a time, each reloaded: nothing restarts.",
		"Read the leader again; on each new host in parallel: replication credentials, clone from that leader (never from a member in recovery), start its HA agent, pgBackRest's configuration.",
		"Wait until every new member streams from the leader. The cluster takes writes throughout.",
	)
	return RunMeta{Summary: summaryLine(workflows.PgMemberAddRunbook, in.Cluster, what, req), Details: d.String()}
}
