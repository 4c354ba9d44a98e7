package starter

import (
	"fmt"
	"time"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// SwitchoverInput resolves a Switchover from the inventory: members and their agents, the DCS,
// the lag limit (pg_rpo) and the approval timeout (pigwf_approval_timeout, or the
// --approval-timeout override). Who may approve is not in the input: the worker's approvals file
// says.
func SwitchoverInput(inv *inventory.Inventory, cluster *inventory.Cluster, candidate, reason, requester string, at time.Time, timeout time.Duration) (workflows.SwitchoverInput, error) {
	if cluster.Name == "" {
		return workflows.SwitchoverInput{}, fmt.Errorf("group %s has no pg_cluster: it is not a PostgreSQL cluster", cluster.Group)
	}
	in := workflows.SwitchoverInput{
		Cluster: cluster.Name, Candidate: candidate, ScheduledAt: at, Reason: reason, RequestedBy: requester,
		DCS: dcsOf(inv, cluster), Members: memberAPIs(inv, cluster), MaxLagBytes: cluster.PG.RPO, Approval: approvalPolicy(cluster, timeout),
	}
	found := candidate == ""
	for _, h := range cluster.Hosts {
		found = found || h.Node.Nodename == candidate || h.Addr == candidate
		if h.Addr == candidate {
			in.Candidate = h.Node.Nodename
		}
	}
	if !found {
		return in, fmt.Errorf("candidate %s is not a member of %s", candidate, cluster.Name)
	}
	return in, nil
}
