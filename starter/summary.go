package starter

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/internal/human"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// RunMeta is what a run says about itself from its start, set by Start: Summary is one line (the
// run's static summary, and its RunSummary search attribute so the Web UI's list can show it as
// a column), Details is Markdown (the run's static details: who asked and why, from which
// inventory, the plan in order, how to approve). Both are stored in the run's history and in
// visibility, so the builders below never put a secret in them.
type RunMeta struct {
	Summary string
	Details string
}

// Request is who asked for a run and from which inventory: what every runbook's meta records.
type Request struct {
	By        string // the requester (Requester)
	Inventory string // the inventory file's absolute path
}

// NewRequest is a request by the user running this command (Requester) from inventoryFile.
func NewRequest(inventoryFile string) Request {
	if abs, err := filepath.Abs(inventoryFile); err == nil {
		inventoryFile = abs
	}
	return Request{By: Requester(), Inventory: inventoryFile}
}

// NodeInitMeta: "node-init pg-test: 3 nodes, requested by root".
func NodeInitMeta(in workflows.NodeInitInput, req Request) RunMeta {
	var d details
	d.header(workflows.NodeInitRunbook, in.Cluster, req)
	nodes := make([]string, len(in.Nodes))
	for i, n := range in.Nodes {
		nodes[i] = n.Node.String()
	}
	d.fact("Nodes", strings.Join(nodes, ", "))
	d.plan(
		"The deployment CA on the control side (created once, then reused).",
		fmt.Sprintf("On every node in parallel, in order: %s. A node that fails stops there; the others go on.",
			strings.Join(activities.NodeInitSteps, ", ")),
	)
	return RunMeta{
		Summary: summaryLine(workflows.NodeInitRunbook, in.Cluster, count(len(in.Nodes), "node"), req),
		Details: d.String(),
	}
}

// PgClusterCreateMeta: "pg-cluster-create pg-test: 3 members (primary pg-test-1), requested by
// root". The input's DryRun and Force are part of it, so set them first.
func PgClusterCreateMeta(in workflows.PgClusterCreateInput, req Request) RunMeta {
	primary := ""
	members := make([]string, len(in.Members))
	for i, m := range in.Members {
		members[i] = m.Name + " (" + m.Role + ")"
		if m.Role == inventory.RolePrimary {
			primary = m.Name
		}
	}
	var replicas []string
	for _, m := range in.Members {
		if m.Name != primary {
			replicas = append(replicas, m.Name)
		}
	}
	what := fmt.Sprintf("%s (primary %s)", count(len(in.Members), "member"), primary)
	var d details
	d.header(workflows.PgClusterCreateRunbook, in.Cluster, req)
	d.fact("Members", strings.Join(members, ", "))
	if in.DryRun {
		what += ", dry run"
		d.fact("Dry run", "`--dry-run`: the prechecks, then the plan below is reported; nothing is changed")
	}
	if in.Force {
		d.fact("Force", "`--force`: data directories of another system are moved aside (renamed, never deleted) once an approver agrees")
	}
	steps := []string{"Precheck the DCS (etcd) and every member; refuse before changing anything if one is not ready."}
	if in.Force {
		steps = append(steps, fmt.Sprintf("Only if a member holds another system's data: %s; once approved, move that data directory aside.", approvalStep(in.Approval)))
	}
	steps = append(steps,
		"Replication credentials on every member.",
		fmt.Sprintf("%s: initdb, configuration, register the cluster in the DCS, start its HA agent, wait for it to lead, create the roles.", primary),
	)
	if len(replicas) > 0 {
		steps = append(steps, fmt.Sprintf("%s in parallel: clone from %s, start the HA agent; then wait until every replica streams.", strings.Join(replicas, ", "), primary))
	}
	steps = append(steps,
		fmt.Sprintf("The inventory's users and databases, on %s.", primary),
		fmt.Sprintf("pgBackRest's configuration on every member; the stanza and a first full backup from %s.", primary),
		"Verify the cluster through the DCS and the primary's agent.",
	)
	d.plan(steps...)
	if in.Force {
		d.approve(workflows.PgClusterCreateRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.PgClusterCreateRunbook, in.Cluster, what, req), Details: d.String()}
}

// SwitchoverMeta: "switchover pg-test: pg-test-1 → pg-test-2, requested by alice". leader is the
// cluster's leader when the run starts ("" when unknown: CurrentLeader is best effort); the
// candidate is the input's, or the precheck's choice when none was given.
func SwitchoverMeta(in workflows.SwitchoverInput, leader string, req Request) RunMeta {
	to, chosen := in.Candidate, in.Candidate
	if to == "" {
		to, chosen = "the best candidate", "the best candidate (a synchronous, else the least-lagging, streaming standby)"
	}
	what, from, old := "→ "+to, "the current primary", "The old primary"
	if leader != "" {
		what, from, old = leader+" "+what, leader, "The old primary, "+leader+","
	}
	var d details
	d.header(workflows.SwitchoverRunbook, in.Cluster, req)
	d.fact("Reason", in.Reason)
	if !in.ScheduledAt.IsZero() {
		d.fact("Not before", utc(in.ScheduledAt)+" (`--at`)")
	}
	lag := "within the lag limit (pg_rpo)"
	if in.MaxLagBytes > 0 {
		lag = fmt.Sprintf("at most %d bytes behind (pg_rpo)", in.MaxLagBytes)
	}
	steps := []string{
		fmt.Sprintf("Precheck: the cluster has a leader and is not in maintenance mode; %s streams %s and is not tagged nofailover.", chosen, lag),
		upperFirst(approvalStep(in.Approval)) + ".",
	}
	if !in.ScheduledAt.IsZero() {
		steps = append(steps, "Wait until "+utc(in.ScheduledAt)+".")
	}
	steps = append(steps,
		fmt.Sprintf("Failover request to the HA agents: %s hands the primary role to %s.", from, to),
		fmt.Sprintf("Wait for %s to lead.", to),
		old+" follows the new leader as a replica.",
		"Verify the cluster with the new leader: the DCS, its agent, every replica streaming.",
	)
	d.plan(steps...)
	d.approve(workflows.SwitchoverRunbook, in.Cluster)
	return RunMeta{Summary: summaryLine(workflows.SwitchoverRunbook, in.Cluster, what, req), Details: d.String()}
}

// summaryLine is every run's one-line summary: "<runbook> <cluster>: <what>, requested by <who>".
func summaryLine(runbook, cluster, what string, req Request) string {
	return fmt.Sprintf("%s %s: %s, requested by %s", runbook, cluster, what, req.By)
}

// approvalStep is the approval gate in a plan: who may approve (the worker's approvals file
// says, when the run gets there), for how long, and what happens without a decision.
func approvalStep(p workflows.ApprovalPolicy) string {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = workflows.DefaultApprovalTimeout
	}
	return fmt.Sprintf("approval, signed, by the approvers the worker's approvals policy names (four eyes and quorum as it says) within %s (without a decision by then the run ends with nothing changed)",
		human.Duration(timeout))
}

// details builds a run's Markdown details: a header line, facts, the plan, how to approve.
type details struct{ b strings.Builder }

func (d *details) header(runbook, cluster string, req Request) {
	fmt.Fprintf(&d.b, "**%s** of **%s**, requested by **%s**\n\n", runbook, cluster, req.By)
	d.fact("Inventory", "`"+req.Inventory+"`")
}

// fact is a "- **name:** value" line; empty values are left out.
func (d *details) fact(name, value string) {
	if value != "" && value != "``" {
		fmt.Fprintf(&d.b, "- **%s:** %s\n", name, value)
	}
}

func (d *details) plan(steps ...string) {
	d.b.WriteString("\n**Plan**\n\n")
	for i, s := range steps {
		fmt.Fprintf(&d.b, "%d. %s\n", i+1, s)
	}
}

// outline is a plan whose lines number themselves, nested by their indentation (dsl's Plan).
func (d *details) outline(lines []string) {
	d.b.WriteString("\n**Plan**\n\n")
	for _, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		fmt.Fprintf(&d.b, "%s- %s\n", strings.Repeat(" ", len(line)-len(trimmed)), trimmed)
	}
}

func (d *details) approve(runbook, cluster string) {
	id := WorkflowID(runbook, cluster)
	fmt.Fprintf(&d.b, "\n**To approve:** `%s` (to reject, add `--reject`), or in chat `%s`\n", workflows.ApproveCommand(id), workflows.ChatApproveCommand(id))
}

func (d *details) String() string { return d.b.String() }

// count is "1 node", "3 nodes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
