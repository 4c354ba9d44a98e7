package activities

// pg-users' and pg-databases' steps: the inventory's users or databases planned against the
// leader's catalog (PgObjectsPlan, which changes nothing), then each object made so by one step
// of its own (PgObjectsApply), which plans that object again first, so a retried or rerun step
// does only what is still left and reports unchanged otherwise. Both plan in pgobjectplan.go,
// the same home as PgClusterCreate's roles; SQL goes through the one psql runner (psqlOn).

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// StepObjects is the step name of PgObjectsPlan's and PgObjectsApply's results.
const StepObjects = "objects"

// ErrDropNotApproved: a database drop reached PgObjectsApply without the run's approval.
const ErrDropNotApproved = "DropNotApproved"

// PgObjectsInput: pg_users or pg_databases entries, to plan or to apply on the cluster's leader.
// Passwords are not in it: the worker reads them from InventoryFile (or its secret store).
type PgObjectsInput struct {
	Leader        Node           `json:"leader"`
	Cluster       string         `json:"cluster"`
	Port          int            `json:"port"`
	InventoryFile string         `json:"inventory_file"`
	Users         []RoleSpec     `json:"users,omitempty"`
	Databases     []DatabaseSpec `json:"databases,omitempty"`
	// AllowDrop: the run's approval covers dropping the databases marked absent; PgObjectsApply
	// refuses a database drop without it.
	AllowDrop bool `json:"allow_drop,omitempty"`
}

// ObjectsPlan is what the input's objects take, users then databases, each in the input's order.
type ObjectsPlan struct {
	Changes []ObjectChange `json:"changes"`
}

// PgObjectsPlan plans the input's users and databases against the leader's catalog. It changes
// nothing; an object that cannot be done as asked comes back with its refusal.
func (a *Activities) PgObjectsPlan(ctx context.Context, in PgObjectsInput) (ObjectsPlan, error) {
	plans, err := a.planObjects(ctx, in)
	if err != nil {
		return ObjectsPlan{}, err
	}
	out := ObjectsPlan{Changes: make([]ObjectChange, len(plans))}
	for i, p := range plans {
		out.Changes[i] = p.change
	}
	return out, nil
}

// PgObjectsApply plans the input's objects again (the run gives it one) and makes each so. A
// refusal, a database drop without AllowDrop, or a leader that is a replica now fails it,
// non-retryable, with nothing changed for that object.
func (a *Activities) PgObjectsApply(ctx context.Context, in PgObjectsInput) (StepResult, error) {
	res := StepResult{Node: in.Leader.Name, Step: StepObjects}
	plans, err := a.planObjects(ctx, in)
	if err != nil {
		return res, err
	}
	for _, p := range plans {
		c := p.change
		switch {
		case c.Refused != "":
			return res, temporal.NewNonRetryableApplicationError(c.String()+"; it was not changed", ErrConflict, nil, res)
		case c.Kind == KindDatabase && c.Action == ActionDrop && !in.AllowDrop:
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"dropping database %s needs the run's approval, which this step was not given: it was not dropped (start it with pigwf start pg-databases)", c.Name),
				ErrDropNotApproved, nil, res)
		}
		if err := a.execute(ctx, in.Leader, in.Port, c.Kind, p.stmts); err != nil {
			return res, err
		}
		if c.Changes() {
			res.Changed = true
			res.Changes = append(res.Changes, c.Done())
		} else {
			res.Notes = append(res.Notes, c.String())
		}
	}
	a.logger().Info("step done", "node", in.Leader.String(), "step", StepObjects, "changed", res.Changed, "summary", res.Summary())
	return res, nil
}

// planObjects reads the leader's catalog once and plans every object of the input. A user may
// be made a member of a role the same plan creates before it.
func (a *Activities) planObjects(ctx context.Context, in PgObjectsInput) ([]objectPlan, error) {
	var passwords rolePasswords
	var drops []string
	if len(in.Users) > 0 {
		var err error
		if passwords, err = a.rolePasswords(in.InventoryFile, in.Cluster); err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
		}
	}
	for _, u := range in.Users {
		if err := checkObjectName(KindUser, u.Name); err != nil {
			return nil, err
		}
		if u.Absent {
			drops = append(drops, u.Name)
		}
	}
	cat, err := a.primaryCatalog(ctx, in.Leader, in.Port, drops)
	if err != nil {
		return nil, err
	}
	var plans []objectPlan
	known := map[string]bool{}
	for _, u := range in.Users {
		p, err := planRole(KindUser, u, cat, passwords.of(u), known)
		if err != nil {
			return nil, err
		}
		if !u.Absent {
			known[u.Name] = true
		}
		plans = append(plans, p)
	}
	for _, d := range in.Databases {
		p, err := planDatabase(d, cat)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}
