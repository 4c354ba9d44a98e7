package starter

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/dsl"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// RunbookInput checks a parsed custom runbook against the inventory's cluster and resolves the
// interpreter's input: dsl.Validate with the cluster's members, then what only the inventory
// knows (whose password a password step may set; the inputs of the built-in runbooks the file
// starts, built as their own `pigwf start` builds them). Every problem at once, as dsl.Problems
// with file:line and the fix: `pigwf runbook check` and `pigwf start runbook` both call it, so a
// file that checks is a file that starts.
func RunbookInput(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string, rb *dsl.Runbook, requester string) (workflows.RunbookInput, error) {
	if cluster.Name == "" {
		return workflows.RunbookInput{}, fmt.Errorf("group %s has no pg_cluster: it is not a PostgreSQL cluster", cluster.Group)
	}
	var members []dsl.Member
	for _, h := range cluster.Hosts {
		members = append(members, dsl.Member{Name: h.Node.Nodename, Role: h.Role})
	}
	var probs dsl.Problems
	if err := dsl.Validate(rb, members); err != nil && !errors.As(err, &probs) {
		return workflows.RunbookInput{}, err
	}
	in := workflows.RunbookInput{
		Cluster: cluster.Name, Runbook: *rb, RequestedBy: requester, DCS: dcsOf(inv, cluster), Members: MemberAPIs(inv, cluster),
		Port: cluster.PG.Port, Approval: approvalPolicy(cluster, 0),
	}
	for _, h := range cluster.Hosts {
		in.Nodes = append(in.Nodes, NodeOf(h))
	}
	problem := func(s dsl.Step, field, what, fix string) {
		probs = append(probs, dsl.Problem{File: rb.File, Line: s.Line, Field: s.Name + "." + field, Problem: what, Fix: fix})
	}
	rb.Walk(func(s dsl.Step) {
		switch {
		case s.Kind == dsl.KindPassword:
			if what, fix := passwordOwner(cluster, *s.Password); what != "" {
				problem(s, "password.role", fmt.Sprintf("%s %s", s.Password.Role, what), fix)
			}
		case s.Kind == dsl.KindSwitchover || s.Kind == dsl.KindRunbook:
			if err := childInput(&in.Children, s, inv, cluster, inventoryFile, requester); err != nil {
				problem(s, string(s.Kind), fmt.Sprintf("cannot start on %s: %v", cluster.Name, err), "fix the inventory, or leave the step out")
			}
		}
	})
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return in, probs
	}
	return in, nil
}

// childInput sets the input of the built-in runbook step s starts, once per runbook.
func childInput(ch *workflows.RunbookChildren, s dsl.Step, inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile, requester string) error {
	name := workflows.SwitchoverRunbook
	if s.Kind == dsl.KindRunbook {
		name = s.Runbook.Name
	}
	switch name {
	case workflows.SwitchoverRunbook:
		return once(&ch.Switchover, func() (workflows.SwitchoverInput, error) {
			return SwitchoverInput(inv, cluster, "", "", requester, time.Time{}, 0)
		})
	case workflows.NodeInitRunbook:
		return once(&ch.NodeInit, func() (workflows.NodeInitInput, error) { return NodeInitInput(cluster, nil) })
	case workflows.PgClusterCreateRunbook:
		return once(&ch.PgClusterCreate, func() (workflows.PgClusterCreateInput, error) {
			return PgClusterCreateInput(inv, cluster, inventoryFile)
		})
	case workflows.PgServiceRunbook:
		return once(&ch.PgService, func() (workflows.PgServiceInput, error) { return PgServiceInput(inv, cluster) })
	}
	return fmt.Errorf("pigwf cannot start %s from a runbook", name)
}

// once sets *p from build unless it is set.
func once[T any](p **T, build func() (T, error)) error {
	if *p != nil {
		return nil
	}
	v, err := build()
	if err == nil {
		*p = &v
	}
	return err
}

// passwordOwner says why a password step may not set role's password ("" when it may): the
// password has another home, which would set it back or break with it. The inventory's
// passwords (pg_users, pg_admin_password) are the inventory's; the replication user's is also
// in every member's ~postgres/.pgpass; the admin user's, when the inventory sets none, is the
// worker's secret admin, which pg-cluster-create sets it from; and those two secrets are no
// other role's.
func passwordOwner(cluster *inventory.Cluster, p dsl.PasswordArgs) (what, fix string) {
	pg := cluster.PG
	switch {
	case p.Role == pg.ReplicationUser:
		return "is the replication user (pg_replication_username), whose password every member also keeps in ~postgres/.pgpass",
			"a password step would break streaming: pigwf does not rotate it"
	case p.Role == pg.AdminUser && pg.AdminPassword != "":
		return "has its password in the inventory (pg_admin_password)", "change it there and run `pigwf start pg-cluster-create`"
	case p.Role == pg.AdminUser && p.Secret != activities.SecretAdmin:
		return "takes its password from the worker's secret " + activities.SecretAdmin + ", which pg-cluster-create sets it from",
			"use secret: " + activities.SecretAdmin + " (another secret would be set back by the next pg-cluster-create)"
	case p.Role != pg.AdminUser && (p.Secret == activities.SecretAdmin || p.Secret == activities.SecretReplication):
		return fmt.Sprintf("would share the secret %s, which is the %s user's", p.Secret, p.Secret), "give the role a secret of its own, e.g. secret: " + p.Role
	}
	for i, u := range cluster.Users {
		if u.Name == p.Role && u.Password != "" {
			return fmt.Sprintf("has its password in the inventory (pg_users[%d].password)", i),
				"change it there and run `pigwf start pg-cluster-create`, or remove it there to let runbooks set it"
		}
	}
	return "", ""
}

// RunbookMeta: "runbook pg-test: rolling-restart (rolling-restart.yml, 5 steps), requested by
// alice". The details hold the file's plan, step by step with its lines.
func RunbookMeta(in workflows.RunbookInput, req Request) RunMeta {
	rb := &in.Runbook
	what := fmt.Sprintf("%s (%s, %s)", rb.Name, filepath.Base(rb.File), count(len(rb.Steps), "step"))
	var d details
	d.header(workflows.RunbookRunbook, in.Cluster, req)
	file := rb.File
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	d.fact("Runbook", rb.Name+": "+rb.Description)
	d.fact("File", "`"+file+"`")
	if in.DryRun {
		what += ", dry run"
		d.fact("Dry run", "`--dry-run`: the plan with the members each step would act on now; nothing is changed")
	}
	d.outline(rb.Plan(nil))
	gated := false
	rb.Walk(func(s dsl.Step) { gated = gated || s.Kind == dsl.KindApproval })
	if gated && !in.DryRun {
		d.approve(workflows.RunbookRunbook, in.Cluster)
	}
	return RunMeta{Summary: summaryLine(workflows.RunbookRunbook, in.Cluster, what, req), Details: d.String()}
}
