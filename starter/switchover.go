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
	if err := isPGCluster(cluster); err != nil {
		return workflows.SwitchoverInput{}, err
	}
	in := workflows.SwitchoverInput{
		Cluster: cluster.Name, Candidate: candidate, ScheduledAt: at, Reason: reason, RequestedBy: requester,
		DCS: dcsOf(inv, cluster), Members: MemberAPIs(inv, cluster), MaxLagBytes: cluster.PG.RPO, Approval: approvalPolicy(cluster, timeout),
	}
	if candidate != "" {
		name, ok := memberName(cluster, candidate)
		if !ok {
			return in, fmt.Errorf("candidate %s is not a member of %s", candidate, cluster.Name)
		}
		in.Candidate = name
	}
	return in, nil
}
