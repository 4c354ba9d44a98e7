package starter

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// pg-users, pg-databases and pg-hba: the inventory's users, databases and HBA rules applied to a
// running cluster, resolved as PgClusterCreate resolves them (roleSpecOf, databaseSpecOf,
// pgSpecOf), so both runbooks make the same objects and files of the same entries.

// ObjectsRequest is what the command line asks of a pg-users or pg-databases run.
type ObjectsRequest struct {
	Name   string // only this user or database (--name); "" for every one
	DryRun bool
	// ApprovalTimeout: pg-databases' drops wait this long (0: pigwf_approval_timeout or the default).
	ApprovalTimeout time.Duration
}

// objectsTarget is what both runbooks take from the inventory.
func objectsTarget(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string, r ObjectsRequest, requester string) (workflows.PgObjectsTarget, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgObjectsTarget{}, err
	}
	abs, err := filepath.Abs(inventoryFile)
	if err != nil {
		return workflows.PgObjectsTarget{}, err
	}
	t := workflows.PgObjectsTarget{Cluster: cluster.Name, DCS: dcsOf(inv, cluster), Members: MemberAPIs(inv, cluster), Port: cluster.PG.Port,
		InventoryFile: abs, Name: r.Name, DryRun: r.DryRun, RequestedBy: requester}
	for _, h := range cluster.Hosts {
		t.Nodes = append(t.Nodes, NodeOf(h))
	}
	return t, nil
}

// checkName refuses an empty list (the entries of list in the inventory: names), and a --name
// that is none of them.
func checkName(name, list, cluster string, names []string) error {
	switch {
	case len(names) == 0 && name != "":
		return fmt.Errorf("--name %s: %s of %s is empty", name, list, cluster)
	case len(names) == 0:
		return fmt.Errorf("%s of %s is empty: nothing to apply (add entries to the inventory)", list, cluster)
	case name == "" || slices.Contains(names, name):
		return nil
	}
	return fmt.Errorf("--name %s is not in %s of %s: give one of %s", name, list, cluster, strings.Join(names, ", "))
}

// PgUsersInput resolves a pg-users run from pg_users.
func PgUsersInput(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string, r ObjectsRequest, requester string) (workflows.PgUsersInput, error) {
	t, err := objectsTarget(inv, cluster, inventoryFile, r, requester)
	if err != nil {
		return workflows.PgUsersInput{}, err
	}
	in := workflows.PgUsersInput{PgObjectsTarget: t}
	var names []string
	for _, u := range cluster.Users {
		in.Users = append(in.Users, roleSpecOf(u))
		names = append(names, u.Name)
	}
	return in, checkName(r.Name, "pg_users", cluster.Name, names)
}

// PgDatabasesInput resolves a pg-databases run from pg_databases.
func PgDatabasesInput(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string, r ObjectsRequest, requester string) (workflows.PgDatabasesInput, error) {
	t, err := objectsTarget(inv, cluster, inventoryFile, r, requester)
	if err != nil {
		return workflows.PgDatabasesInput{}, err
	}
	in := workflows.PgDatabasesInput{PgObjectsTarget: t, Approval: approvalPolicy(cluster, r.ApprovalTimeout)}
	var names []string
	for _, d := range cluster.Databases {
		in.Databases = append(in.Databases, databaseSpecOf(d))
		names = append(names, d.Name)
	}
	return in, checkName(r.Name, "pg_databases", cluster.Name, names)
}

// DatabasesToDrop are the databases a pg-databases run drops if they exist (its entries with
// state: absent, --name applied): what its approval gate is for.
func DatabasesToDrop(in workflows.PgDatabasesInput) []string {
	var out []string
	for _, d := range in.Selected() {
		if d.Absent {
			out = append(out, d.Name)
		}
	}
	return out
}

// PgHBAInput resolves a pg-hba run: every member, and pg_hba.conf's lines rendered as
// PgClusterCreate renders them.
func PgHBAInput(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string, dryRun bool) (workflows.PgHBAInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgHBAInput{}, err
	}
	abs, err := filepath.Abs(inventoryFile)
	if err != nil {
		return workflows.PgHBAInput{}, err
	}
	in := workflows.PgHBAInput{Cluster: cluster.Name, Spec: pgSpec(inv, cluster, abs), DryRun: dryRun}
	for _, h := range cluster.Hosts {
		in.Members = append(in.Members, workflows.PgMember{Name: h.Node.Nodename, Role: h.Role, Node: NodeOf(h), Tags: h.Tags})
	}
	return in, nil
}

// objectsWhat is a run's objects in its summary: "2 users", "user app", "dry run".
func objectsWhat(t workflows.PgObjectsTarget, kind string, n int) string {
	what := count(n, kind)
	if t.Name != "" {
		what = kind + " " + t.Name
	}
	if t.DryRun {
		what += ", dry run"
	}
	return what
}

// objectsLines are the entries of a run as the details list them: "app (absent)".
func objectsLines(names []string, absent []bool) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if absent[i] {
			out[i] += " (state: absent)"
		}
	}
	return strings.Join(out, ", ")
}

// PgUsersMeta: "pg-users pg-test: 3 users, requested by alice".
func PgUsersMeta(in workflows.PgUsersInput, req Request) RunMeta {
	var names []string
	var absent []bool
	for _, u := range in.Selected() {
		names, absent = append(names, u.Name), append(absent, u.Absent)
	}
	var d details
	d.header(workflows.PgUsersRunbook, in.Cluster, req)
	d.fact("Users", objectsLines(names, absent))
	objectsDryRun(&d, in.DryRun)
	d.plan(
		"The leader, from its HA agent: refused, with nothing changed, when the cluster has no leader that takes writes.",
		"Plan every user against the leader's catalog: create, alter (only the attributes that differ; passwords compared by SCRAM verifier), drop (state: absent), or leave alone. A user to drop that owns objects or holds privileges in any database refuses the run, with nothing changed.",
		"One step per user that is not as specified, on the leader: creations and alterations first, drops last; passwords set as SCRAM verifiers computed on the worker.",
	)
	return RunMeta{Summary: summaryLine(workflows.PgUsersRunbook, in.Cluster, objectsWhat(in.PgObjectsTarget, "user", len(names)), req), Details: d.String()}
}

// PgDatabasesMeta: "pg-databases pg-test: 2 databases, requested by alice".
func PgDatabasesMeta(in workflows.PgDatabasesInput, req Request) RunMeta {
	var names []string
	var absent []bool
	for _, db := range in.Selected() {
		names, absent = append(names, db.Name), append(absent, db.Absent)
	}
	drops := len(DatabasesToDrop(in)) > 0
	var d details
	d.header(workflows.PgDatabasesRunbook, in.Cluster, req)
	d.fact("Databases", objectsLines(names, absent))
	objectsDryRun(&d, in.DryRun)
	steps := []string{
		"The leader, from its HA agent: refused, with nothing changed, when the cluster has no leader that takes writes.",
		"Plan every database against the leader's catalog: create, alter (owner, connection limit, comment), drop (state: absent), or leave alone. A database to drop that is in use (sessions, replication slots, subscriptions) or a template refuses the run, with nothing changed.",
	}
	if drops && !in.DryRun {
		steps = append(steps, fmt.Sprintf("Only if a database is to be dropped: %s.", approvalStep(in.Approval)))
	}
	steps = append(steps, "One step per database that is not as specified, on the leader: creations and alterations first, drops last.")
	d.plan(steps...)
	if drops && !in.DryRun {
		d.approve(workflows.PgDatabasesRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.PgDatabasesRunbook, in.Cluster, objectsWhat(in.PgObjectsTarget, "database", len(names)), req), Details: d.String()}
}

func objectsDryRun(d *details, dry bool) {
	if dry {
		d.fact("Dry run", "`--dry-run`: the plan is reported per object; nothing is changed")
	}
}

// PgHBAMeta: "pg-hba pg-test: 5 rules on 3 members, requested by alice".
func PgHBAMeta(in workflows.PgHBAInput, req Request, rules int) RunMeta {
	members := make([]string, len(in.Members))
	for i, m := range in.Members {
		members[i] = m.Name
	}
	what := fmt.Sprintf("%s on %s", count(rules, "rule"), count(len(in.Members), "member"))
	var d details
	d.header(workflows.PgHBARunbook, in.Cluster, req)
	d.fact("Members", strings.Join(members, ", "))
	if in.DryRun {
		what += ", dry run"
		d.fact("Dry run", "`--dry-run`: the lines each member's pg_hba.conf would gain and lose; nothing is changed")
	}
	d.plan(
		fmt.Sprintf("pg_hba.conf rendered from pg_hba_rules (%s) and pigwf's own lines (replication between members, the admin user), as pg-cluster-create writes it.", count(rules, "rule")),
		"One member at a time: its pg_hba.conf written when it differs, checked by its PostgreSQL (pg_hba_file_rules; a file it refuses is put back and the run stops), then PostgreSQL reloaded. No session is cut.",
	)
	return RunMeta{Summary: summaryLine(workflows.PgHBARunbook, in.Cluster, what, req), Details: d.String()}
}

// HBALines is pg_hba.conf as the run writes it, for a dry run's report.
func HBALines(in workflows.PgHBAInput) string { return activities.HBAFile(in.Spec.HBA) }
