package starter

import (
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// PgReloadInput resolves a PgReload from the inventory: every member's agent.
func PgReloadInput(inv *inventory.Inventory, cluster *inventory.Cluster) (workflows.PgReloadInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgReloadInput{}, err
	}
	return workflows.PgReloadInput{Cluster: cluster.Name, Members: MemberAPIs(inv, cluster)}, nil
}

// PgReloadMeta: "pg-reload pg-test: 3 members, requested by alice".
func PgReloadMeta(in workflows.PgReloadInput, req Request) RunMeta {
	var d details
	d.header(workflows.PgReloadRunbook, in.Cluster, req)
	d.plan(
		"Every member in parallel: its HA agent writes the cluster's dynamic parameters (postgresql.parameters in the DCS config) and reloads PostgreSQL. Nothing restarts; no session is cut.",
		"Report each member's change and the settings that wait for a restart; those take effect with `"+workflows.PgRestartPendingCommand(in.Cluster)+"`.",
	)
	return RunMeta{Summary: summaryLine(workflows.PgReloadRunbook, in.Cluster, count(len(in.Members), "member"), req), Details: d.String()}
}
