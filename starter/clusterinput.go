package starter

import (
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// What every runbook's input takes from the inventory's cluster the same way: its DCS, its
// members' agents, its approval timeout.

// dcsOf is the cluster's DCS: the inventory's etcd, the cluster's key prefix and name.
func dcsOf(inv *inventory.Inventory, cluster *inventory.Cluster) activities.DCSInput {
	return activities.DCSInput{Endpoints: inv.Etcd, Namespace: cluster.PG.Namespace, Cluster: cluster.Name, Plaintext: inv.Plaintext}
}

// approvalPolicy is how long a run's approval gates wait: override (a command line's
// --approval-timeout) when set, else pigwf_approval_timeout, else the default. Who may approve is
// never in it: the worker's approvals file says.
func approvalPolicy(cluster *inventory.Cluster, override time.Duration) workflows.ApprovalPolicy {
	timeout := override
	if timeout == 0 && cluster.PG.ApprovalTimeout != "" {
		timeout, _ = time.ParseDuration(cluster.PG.ApprovalTimeout) // validated at load
	}
	if timeout <= 0 {
		timeout = workflows.DefaultApprovalTimeout
	}
	return workflows.ApprovalPolicy{Timeout: timeout}
}

// MemberAPIs are the cluster's members and where their agents' APIs answer.
func MemberAPIs(inv *inventory.Inventory, cluster *inventory.Cluster) []activities.MemberAPI {
	var out []activities.MemberAPI
	for _, h := range cluster.Hosts {
		out = append(out, memberAPI(inv, h))
	}
	return out
}

// memberAPI is one host's member name and agent URL.
func memberAPI(inv *inventory.Inventory, h inventory.Host) activities.MemberAPI {
	return activities.MemberAPI{Name: h.Node.Nodename, APIURL: activities.AgentAPIURL(h.Node.SSHHost, AgentAPIPort, inv.Plaintext)}
}

// memberName is the member (nodename) a command line names by nodename or address.
func memberName(cluster *inventory.Cluster, nameOrAddr string) (string, bool) {
	for _, h := range cluster.Hosts {
		if h.Node.Nodename == nameOrAddr || h.Addr == nameOrAddr {
			return h.Node.Nodename, true
		}
	}
	return "", false
}
