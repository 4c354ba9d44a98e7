package starter

import (
	"fmt"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// SwitchoverInput resolves a Switchover from the inventory: members and their agents, the DCS,
// the lag limit (pg_rpo) and the approval timeout (pigwf_approval_timeout, or the
// --approval-timeout override). Who may approve is not in the input: the worker's approvals file
// says.
func SwitchoverInput(inv *inventory.Inventory, cluster *inventory.Cluster, candidate, reason, requester string, at time.Time, timeout time.Duration) (workflows.SwitchoverInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.SwitchoverInput{}, err
	}
	if timeout == 0 && cluster.PG.ApprovalTimeout != "" {
		timeout, _ = time.ParseDuration(cluster.PG.ApprovalTimeout) // validated at load
	}
	if timeout == 0 {
		timeout = workflows.DefaultApprovalTimeout
	}
	in := workflows.SwitchoverInput{
		Cluster: cluster.Name, Candidate: candidate, ScheduledAt: at, Reason: reason, RequestedBy: requester,
		DCS:         activities.DCSInput{Endpoints: inv.Etcd, Namespace: cluster.PG.Namespace, Cluster: cluster.Name, Plaintext: inv.Plaintext},
		MaxLagBytes: cluster.PG.RPO,
		Approval:    workflows.ApprovalPolicy{Timeout: timeout},
	}
	in.Members = MemberAPIs(inv, cluster)
	if candidate != "" {
		name, ok := memberName(cluster, candidate)
		if !ok {
			return in, fmt.Errorf("candidate %s is not a member of %s", candidate, cluster.Name)
		}
		in.Candidate = name
	}
	return in, nil
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
