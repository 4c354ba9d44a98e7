package activities

// The one home of what ensuring a role or a database takes: compared with the catalog
// (pgcatalog.go), each object gets an ObjectChange for people and the statements that make it so.
// PgClusterCreate's roles and users step (PgRoles) and the day-2 runbooks pg-users and
// pg-databases (PgObjectsPlan, PgObjectsApply) all plan here. Pure functions of their inputs,
// apart from the fresh salt of a password's verifier.

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/inventory"
)

// Kinds of objects.
const (
	KindRole     = "role"     // pigwf's own roles (PgClusterCreate's roles step)
	KindUser     = "user"     // pg_users
	KindDatabase = "database" // pg_databases
)

// What a plan does to an object.
const (
	ActionCreate    = "create"
	ActionAlter     = "alter"
	ActionDrop      = "drop"
	ActionUnchanged = "unchanged"
)

// ObjectChange is what ensuring one role or database takes, for people: the plan's line, the
// dry run's, the approval's and the step's. It never holds a secret: a password that changes is
// the attribute "password".
type ObjectChange struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// Attrs: for a creation, what the object is created with; for an alteration, what changes
	// ("connection limit 5 → 10", "nocreatedb → createdb", "password", "member of dbrole_admin").
	Attrs []string `json:"attrs,omitempty"`
	// Refused: why the object cannot be brought to what the inventory says (a user that owns
	// objects, a database in use); "" when it can. A plan with a refusal changes nothing.
	Refused string `json:"refused,omitempty"`
}

// Changes: the object is not as the inventory says.
func (c ObjectChange) Changes() bool { return c.Action != ActionUnchanged }

// String is the change to be made: "alter user app: connection limit 5 → 10".
func (c ObjectChange) String() string { return c.describe(false) }

// Done is the change as made: "altered user app: connection limit 5 → 10".
func (c ObjectChange) Done() string { return c.describe(true) }

func (c ObjectChange) describe(past bool) string {
	what := c.Kind + " " + c.Name
	if c.Refused != "" {
		return what + ": " + c.Refused
	}
	attrs := strings.Join(c.Attrs, ", ")
	verb := map[bool]map[string]string{
		false: {ActionCreate: "create", ActionAlter: "alter", ActionDrop: "drop"},
		true:  {ActionCreate: "created", ActionAlter: "altered", ActionDrop: "dropped"},
	}[past][c.Action]
	switch c.Action {
	case ActionUnchanged:
		if len(c.Attrs) > 0 {
			return what + " " + attrs
		}
		return what + " as specified"
	case ActionCreate:
		if attrs != "" {
			return fmt.Sprintf("%s %s (%s)", verb, what, attrs)
		}
	case ActionAlter:
		return fmt.Sprintf("%s %s: %s", verb, what, attrs)
	}
	return verb + " " + what
}

// ObjectsSummary counts a plan's changes: "1 to create, 1 to alter, 2 unchanged".
func ObjectsSummary(changes []ObjectChange) string {
	n := map[string]int{}
	refused := 0
	for _, c := range changes {
		if c.Refused != "" {
			refused++
			continue
		}
		n[c.Action]++
	}
	var parts []string
	for _, a := range []string{ActionCreate, ActionAlter, ActionDrop} {
		if n[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", n[a], a))
		}
	}
	if n[ActionUnchanged] > 0 {
		parts = append(parts, fmt.Sprintf("%d unchanged", n[ActionUnchanged]))
	}
	if refused > 0 {
		parts = append(parts, fmt.Sprintf("%d refused", refused))
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, ", ")
}

// objectPlan is an object's change and the statements that make it, in order. The statements
// may hold a password's verifier: they go to psql on stdin and nowhere else.
type objectPlan struct {
	change ObjectChange
	stmts  []string
}

// comment sets the object's comment (objType: ROLE or DATABASE) when the entry has one and it
// differs; an entry without one leaves the object's alone.
func (p *objectPlan) comment(objType, want, have string) {
	if want != "" && have != want {
		p.stmts = append(p.stmts, fmt.Sprintf("COMMENT ON %s %s IS %s;", objType, sqlIdent(p.change.Name), sqlLit(want)))
		p.change.Attrs = append(p.change.Attrs, "comment")
	}
}

// settle makes the plan of an object that exists and needs statements an alteration.
func (p *objectPlan) settle(exists bool) {
	if exists && len(p.stmts) > 0 {
		p.change.Action = ActionAlter
	}
}

// absentAlready is the plan of an object to drop that does not exist.
func (p objectPlan) absentAlready() objectPlan {
	p.change.Attrs = []string{"is absent"}
	return p
}

// checkObjectName refuses a name the inventory's rule would not admit, however the input came:
// the names go into SQL (quoted as identifiers all the same).
func checkObjectName(kind, name string) error {
	rule := inventory.RuleRoleName
	if kind == KindDatabase {
		rule = inventory.RuleDatabaseName
	}
	if probs := inventory.CheckDecoded(kind, rule, name); len(probs) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s name: %v; nothing was done", kind, probs[0]), ErrInvalidInput, nil)
	}
	return nil
}

// roleAttr is a role attribute the plan manages: want nil is not managed.
type roleAttr struct {
	word string // PostgreSQL's keyword when on; NO<word> when off
	want *bool
	have bool
}

func keyword(word string, on bool) string {
	if on {
		return word
	}
	return "NO" + word
}

// connLimitText is a connection limit for people.
func connLimitText(n int) string {
	if n < 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// planRole plans role want against cat. password is the role's password ("" leaves it alone);
// known are the roles of the same plan that exist once it has run (a membership in one of them
// is not refused). An error is a failure to plan (a password pigwf cannot hash).
func planRole(kind string, want RoleSpec, cat catalog, password string, known map[string]bool) (objectPlan, error) {
	p := objectPlan{change: ObjectChange{Kind: kind, Name: want.Name, Action: ActionUnchanged}}
	if err := checkObjectName(kind, want.Name); err != nil {
		return p, err
	}
	name := sqlIdent(want.Name)
	cur, exists := cat.role(want.Name)
	if want.Absent {
		return planRoleDrop(p, cat, cur, exists), nil
	}
	attrs := []roleAttr{
		{"LOGIN", &want.Login, cur.Login}, {"REPLICATION", &want.Replication, cur.Repl}, {"SUPERUSER", &want.Superuser, cur.Super},
		{"CREATEDB", want.CreateDB, cur.CreateDB}, {"CREATEROLE", want.CreateRole, cur.CreateRole},
		{"INHERIT", want.Inherit, cur.Inherit}, {"BYPASSRLS", want.BypassRLS, cur.BypassRLS},
	}
	var words []string
	note := func(s string) { p.change.Attrs = append(p.change.Attrs, s) }
	for _, at := range attrs {
		switch {
		case at.want == nil:
		case !exists:
			words = append(words, keyword(at.word, *at.want))
			if *at.want != (at.word == "INHERIT") { // what differs from CREATE ROLE's defaults
				note(strings.ToLower(keyword(at.word, *at.want)))
			}
		case *at.want != at.have:
			words = append(words, keyword(at.word, *at.want))
			note(strings.ToLower(keyword(at.word, at.have)) + " → " + strings.ToLower(keyword(at.word, *at.want)))
		}
	}
	if want.ConnLimit != nil && (!exists || *want.ConnLimit != cur.ConnLimit) {
		words = append(words, fmt.Sprintf("CONNECTION LIMIT %d", *want.ConnLimit))
		if exists {
			note(fmt.Sprintf("connection limit %s → %s", connLimitText(cur.ConnLimit), connLimitText(*want.ConnLimit)))
		} else {
			note("connection limit " + connLimitText(*want.ConnLimit))
		}
	}
	switch {
	case !exists:
		p.change.Action = ActionCreate
		p.stmts = append(p.stmts, fmt.Sprintf("CREATE ROLE %s WITH %s;", name, strings.Join(words, " ")))
	case len(words) > 0:
		p.stmts = append(p.stmts, fmt.Sprintf("ALTER ROLE %s WITH %s;", name, strings.Join(words, " ")))
	}
	if password != "" && !scramMatches(cur.Password, password) {
		// The verifier, computed here, is what the statement carries: never the password.
		verifier, err := scramVerifier(password)
		if errors.Is(err, ErrPasswordNotASCII) {
			return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the password of %s %s %v; use an ASCII password in the inventory", kind, want.Name, err), ErrConfig, nil)
		} else if err != nil {
			return p, fmt.Errorf("while computing the password verifier of %s: %w", want.Name, err)
		}
		p.stmts = append(p.stmts, fmt.Sprintf("ALTER ROLE %s PASSWORD %s;", name, sqlLit(verifier)))
		note("password")
	}
	for _, g := range want.InRoles {
		if slices.Contains(cur.InRoles, g) {
			continue
		}
		if err := checkObjectName(KindRole, g); err != nil {
			return p, err
		}
		if _, ok := cat.role(g); !ok && !known[g] {
			p.change.Refused = fmt.Sprintf("its role %s (roles) does not exist on the cluster, nor is it created before it by this plan: "+
				"create it first (list it earlier in pg_users), or take it out of roles", g)
		}
		p.stmts = append(p.stmts, fmt.Sprintf("GRANT %s TO %s;", sqlIdent(g), name))
		note("member of " + g)
	}
	p.comment("ROLE", want.Comment, cur.Comment)
	p.settle(exists)
	return p, nil
}

// planRoleDrop: a role to drop goes only when nothing depends on it in any database and no one is
// logged in as it (DROP ROLE would leave those sessions running as a role that is gone);
// otherwise the plan refuses it, saying what and how to end it, rather than drop part of what it
// owns.
func planRoleDrop(p objectPlan, cat catalog, cur roleState, exists bool) objectPlan {
	if !exists {
		return p.absentAlready()
	}
	var why []string
	if deps := cat.dependents(p.change.Name); len(deps) > 0 {
		why = append(why, fmt.Sprintf("it %s; reassign or drop those first (in each database named: REASSIGN OWNED BY %s TO another_role; DROP OWNED BY %s), "+
			"or keep it (state: create)", strings.Join(deps, "; "), p.change.Name, p.change.Name))
	}
	if cur.Sessions > 0 {
		why = append(why, fmt.Sprintf("it is logged in: %s; ask them to disconnect, or end them "+
			"(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'), then run again", counted(cur.Sessions, "session"), p.change.Name))
	}
	if len(why) > 0 {
		p.change.Refused = "cannot be dropped: " + strings.Join(why, "; ")
		return p
	}
	p.change.Action = ActionDrop
	p.stmts = []string{fmt.Sprintf("DROP ROLE %s;", sqlIdent(p.change.Name))}
	return p
}

// defaultDatabaseOwner owns a database whose entry names no owner, as CREATE DATABASE run by
// postgres would.
const defaultDatabaseOwner = "postgres"

// planDatabase plans database want against cat. Each statement runs on its own (CREATE and DROP
// DATABASE cannot run in a transaction block).
func planDatabase(want DatabaseSpec, cat catalog) (objectPlan, error) {
	p := objectPlan{change: ObjectChange{Kind: KindDatabase, Name: want.Name, Action: ActionUnchanged}}
	if err := checkObjectName(KindDatabase, want.Name); err != nil {
		return p, err
	}
	name := sqlIdent(want.Name)
	cur, exists := cat.database(want.Name)
	if want.Absent {
		return planDatabaseDrop(p, cur, exists), nil
	}
	owner := want.Owner
	if owner == "" {
		owner = defaultDatabaseOwner
	}
	if err := checkObjectName(KindRole, owner); err != nil {
		return p, err
	}
	note := func(s string) { p.change.Attrs = append(p.change.Attrs, s) }
	if _, ok := cat.role(owner); !ok && (!exists || cur.Owner != owner) {
		p.change.Refused = fmt.Sprintf("its owner %s does not exist on the cluster: create the user first (pg-users), or name another owner", owner)
	}
	if !exists {
		p.change.Action = ActionCreate
		stmt := fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, sqlIdent(owner))
		note("owner " + owner)
		if want.ConnLimit != nil {
			stmt += fmt.Sprintf(" CONNECTION LIMIT %d", *want.ConnLimit)
			note("connection limit " + connLimitText(*want.ConnLimit))
		}
		p.stmts = append(p.stmts, stmt+";")
	} else {
		if cur.Owner != owner {
			p.stmts = append(p.stmts, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s;", name, sqlIdent(owner)))
			note(fmt.Sprintf("owner %s → %s", cur.Owner, owner))
		}
		if want.ConnLimit != nil && *want.ConnLimit != cur.ConnLimit {
			p.stmts = append(p.stmts, fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d;", name, *want.ConnLimit))
			note(fmt.Sprintf("connection limit %s → %s", connLimitText(cur.ConnLimit), connLimitText(*want.ConnLimit)))
		}
	}
	p.comment("DATABASE", want.Comment, cur.Comment)
	p.settle(exists)
	return p, nil
}

// planDatabaseDrop: a database to drop goes only when nothing uses it; otherwise the plan refuses
// it, saying what uses it and how to end that.
func planDatabaseDrop(p objectPlan, cur databaseState, exists bool) objectPlan {
	if !exists {
		return p.absentAlready()
	}
	var why []string
	if cur.Template {
		why = append(why, "it is a template database (ALTER DATABASE "+cur.Name+" IS_TEMPLATE false first, if it is to go)")
	}
	if cur.Sessions > 0 {
		users := slices.Clone(cur.SessionUsers)
		slices.Sort(users)
		why = append(why, fmt.Sprintf("it is in use: %s (%s); ask them to disconnect, or end them "+
			"(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'), then run again", counted(cur.Sessions, "session"), strings.Join(users, ", "), cur.Name))
	}
	if cur.Slots > 0 {
		why = append(why, fmt.Sprintf("it has %s (drop them first: pg_drop_replication_slot)", counted(cur.Slots, "replication slot")))
	}
	if cur.Subscriptions > 0 {
		why = append(why, fmt.Sprintf("it has %s (DROP SUBSCRIPTION in it first)", counted(cur.Subscriptions, "subscription")))
	}
	if len(why) > 0 {
		p.change.Refused = "cannot be dropped: " + strings.Join(why, "; ")
		return p
	}
	p.change.Action = ActionDrop
	p.stmts = []string{fmt.Sprintf("DROP DATABASE %s;", sqlIdent(p.change.Name))}
	return p
}

// counted is "1 session", "2 sessions".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
