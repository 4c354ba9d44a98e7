package starter

import (
	"fmt"
	"strings"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/haproxy"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/workflows"
)

// PgServiceInput resolves a PgService from the inventory: every member runs HAProxy with the
// cluster's services (pg_default_services, pg_services), checking the agents' API over HTTPS
// against the deployment CA (plain HTTP only where the lab says pigwf_insecure_plaintext).
func PgServiceInput(inv *inventory.Inventory, cluster *inventory.Cluster) (workflows.PgServiceInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgServiceInput{}, err
	}
	if !cluster.ServicesEnabled {
		return workflows.PgServiceInput{}, fmt.Errorf("cluster %s has haproxy_enabled: false: remove it (or set it true) to run pg-service", cluster.Name)
	}
	svc := haproxy.Cluster{Name: cluster.Name, Services: cluster.Services, Timing: cluster.ServiceCheck, StatsPort: inventory.ServiceStatsPort}
	if !inv.Plaintext {
		svc.CAFile = pki.NodeCAPath
	}
	in := workflows.PgServiceInput{Cluster: cluster.Name, Service: svc, Members: MemberAPIs(inv, cluster)}
	for _, h := range cluster.Hosts {
		in.Nodes = append(in.Nodes, NodeOf(h))
		in.Service.Members = append(in.Service.Members, haproxy.Member{Name: h.Node.Nodename, Addr: h.Addr, Role: h.Role,
			PGPort: cluster.PG.Port, APIPort: AgentAPIPort, VerifyHost: h.Node.Nodename})
	}
	// Refused here, before anything starts, with what the activity would refuse.
	if _, _, err := activities.ServiceConfig(activities.ServiceInput{Node: in.Nodes[0], Cluster: in.Service}); err != nil {
		return in, fmt.Errorf("the services of %s: %w", cluster.Name, err)
	}
	return in, nil
}

// PgServiceMeta: "pg-service pg-test: 4 services on 3 members, requested by root".
func PgServiceMeta(in workflows.PgServiceInput, req Request) RunMeta {
	var d details
	d.header(workflows.PgServiceRunbook, in.Cluster, req)
	var svcs []string
	for _, s := range in.Service.Services {
		check := s.Check
		if check == "" {
			check = "/"
		}
		svcs = append(svcs, fmt.Sprintf("%s :%d (%s)", s.Name, s.Port, check))
	}
	d.fact("Services", strings.Join(svcs, ", "))
	t := in.Service.Timing
	d.fact("Checks", fmt.Sprintf("every %v, up after %d, down after %d; sessions of a server marked down are closed", t.Inter, t.Rise, t.Fall))
	d.plan(
		"One member at a time: write /etc/haproxy/haproxy.cfg (checked by `haproxy -c` first), start HAProxy or reload it (the new process takes over the listening sockets; open sessions are not cut), wait until every service port listens.",
		"Check from every HAProxy's own stats that the primary service goes to the leader and to no one else.",
	)
	return RunMeta{
		Summary: summaryLine(workflows.PgServiceRunbook, in.Cluster, fmt.Sprintf("%s on %s", count(len(in.Service.Services), "service"), count(len(in.Nodes), "member")), req),
		Details: d.String(),
	}
}
