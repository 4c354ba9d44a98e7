package activities

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
)

func boolp(b bool) *bool { return &b }
func intp(n int) *int    { return &n }

// fakeCatalog is a cluster's catalog for the planner: app (password "s3cret", connection limit
// 5), old_app (nothing depends on it), owner_app (owns objects), report (logged in), databases
// app, busy (in use), old (unused), tmpl (a template), rslot (a replication slot).
func fakeCatalog(t *testing.T) catalog {
	t.Helper()
	v, err := scramVerifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	return catalog{
		Roles: []roleState{
			{Name: "postgres", Login: true, Super: true, Inherit: true, ConnLimit: -1},
			{Name: "dbrole_readwrite", Inherit: true, ConnLimit: -1},
			{Name: "app", Password: v, Login: true, Inherit: true, ConnLimit: 5, Comment: "the app", InRoles: []string{"dbrole_readwrite"}},
			{Name: "old_app", Login: true, Inherit: true, ConnLimit: -1},
			{Name: "owner_app", Login: true, Inherit: true, ConnLimit: -1},
			{Name: "report", Login: true, Inherit: true, ConnLimit: -1, Sessions: 2},
		},
		Databases: []databaseState{
			{Name: "postgres", Owner: "postgres", ConnLimit: -1},
			{Name: "app", Owner: "app", ConnLimit: -1, Comment: "app data"},
			{Name: "busy", Owner: "app", ConnLimit: -1, Sessions: 2, SessionUsers: []string{"app", "report"}},
			{Name: "old", Owner: "app", ConnLimit: -1},
			{Name: "tmpl", Owner: "postgres", ConnLimit: -1, Template: true},
			{Name: "rslot", Owner: "app", ConnLimit: -1, Slots: 1},
		},
		Dependents: []roleDependent{
			{Role: "owner_app", What: "owns database legacy", N: 1},
			{Role: "owner_app", What: "owns objects in database app", N: 3},
		},
	}
}

// The users' plan against the catalog: what is created, altered (and which attributes), dropped,
// left alone or refused, and the statements (a password only as its verifier).
func TestPlanRole(t *testing.T) {
	app := RoleSpec{Name: "app", Login: true, Password: "user", InRoles: []string{"dbrole_readwrite"}, Comment: "the app", ConnLimit: intp(5)}
	cases := []struct {
		name     string
		want     RoleSpec
		password string
		known    []string
		action   string
		attrs    []string
		stmts    []string // regular expressions, in order
		refused  string
	}{
		{name: "as specified", want: app, password: "s3cret", action: ActionUnchanged},
		{name: "unmanaged attributes left alone", want: RoleSpec{Name: "app", Login: true}, action: ActionUnchanged},
		{name: "connection limit", want: with(app, func(r *RoleSpec) { r.ConnLimit = intp(10) }), password: "s3cret", action: ActionAlter,
			attrs: []string{"connection limit 5 → 10"}, stmts: []string{`^ALTER ROLE "app" WITH CONNECTION LIMIT 10;$`}},
		{name: "no limit", want: with(app, func(r *RoleSpec) { r.ConnLimit = intp(-1) }), password: "s3cret", action: ActionAlter,
			attrs: []string{"connection limit 5 → unlimited"}, stmts: []string{`^ALTER ROLE "app" WITH CONNECTION LIMIT -1;$`}},
		{name: "attributes", want: with(app, func(r *RoleSpec) { r.Login, r.CreateDB, r.Inherit = false, boolp(true), boolp(true) }), password: "s3cret",
			action: ActionAlter, attrs: []string{"login → nologin", "nocreatedb → createdb"}, stmts: []string{`^ALTER ROLE "app" WITH NOLOGIN CREATEDB;$`}},
		{name: "a new password", want: app, password: "n3w", action: ActionAlter, attrs: []string{"password"},
			stmts: []string{`^ALTER ROLE "app" PASSWORD 'SCRAM-SHA-256\$4096:[^']+';$`}},
		{name: "a membership and a comment", want: with(app, func(r *RoleSpec) { r.InRoles, r.Comment = []string{"dbrole_readwrite", "pg_monitor"}, "it's the app" }),
			password: "s3cret", known: []string{"pg_monitor"}, action: ActionAlter, attrs: []string{"member of pg_monitor", "comment"},
			stmts: []string{`^GRANT "pg_monitor" TO "app";$`, `^COMMENT ON ROLE "app" IS 'it''s the app';$`}},
		{name: "created", want: RoleSpec{Name: "app2", Login: true, Password: "user", InRoles: []string{"dbrole_readwrite"}, ConnLimit: intp(3), Inherit: boolp(false)},
			password: "pw2", action: ActionCreate, attrs: []string{"login", "noinherit", "connection limit 3", "password", "member of dbrole_readwrite"},
			stmts: []string{`^CREATE ROLE "app2" WITH LOGIN NOREPLICATION NOSUPERUSER NOINHERIT CONNECTION LIMIT 3;$`, `^ALTER ROLE "app2" PASSWORD 'SCRAM-SHA-256\$`, `^GRANT "dbrole_readwrite" TO "app2";$`}},
		{name: "dropped", want: RoleSpec{Name: "old_app", Absent: true}, action: ActionDrop, stmts: []string{`^DROP ROLE "old_app";$`}},
		{name: "absent already", want: RoleSpec{Name: "gone", Absent: true}, action: ActionUnchanged, attrs: []string{"is absent"}},
		{name: "owns objects", want: RoleSpec{Name: "owner_app", Absent: true}, action: ActionUnchanged,
			refused: "cannot be dropped: it owns database legacy; owns objects in database app (3); reassign or drop those first (in each database named: REASSIGN OWNED BY owner_app"},
		{name: "logged in", want: RoleSpec{Name: "report", Absent: true}, action: ActionUnchanged,
			refused: "cannot be dropped: it is logged in: 2 sessions; ask them to disconnect, or end them (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'report')"},
		{name: "a role that does not exist", want: with(app, func(r *RoleSpec) { r.InRoles = []string{"dbrole_readwrite", "nosuch"} }), password: "s3cret",
			action: ActionAlter, attrs: []string{"member of nosuch"}, stmts: []string{`^GRANT "nosuch" TO "app";$`}, refused: "its role nosuch (roles) does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			known := map[string]bool{}
			for _, k := range tc.known {
				known[k] = true
			}
			p, err := planRole(KindUser, tc.want, fakeCatalog(t), tc.password, known)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, p, tc.action, tc.attrs, tc.refused, tc.stmts)
			for _, s := range p.stmts {
				if tc.password != "" && strings.Contains(s, tc.password) {
					t.Errorf("the password is in a statement: %s", s)
				}
			}
			if m := regexp.MustCompile(`PASSWORD '([^']+)'`).FindStringSubmatch(strings.Join(p.stmts, "\n")); m != nil && !scramMatches(m[1], tc.password) {
				t.Errorf("the verifier does not match the password")
			}
		})
	}
}

func with(r RoleSpec, change func(*RoleSpec)) RoleSpec {
	r.InRoles = slices.Clone(r.InRoles)
	change(&r)
	return r
}

// checkPlan: the plan's change is action with attrs, refused saying refused ("" not refused), and
// its statements match stmts (regular expressions, in order).
func checkPlan(t *testing.T, p objectPlan, action string, attrs []string, refused string, stmts []string) {
	t.Helper()
	c := p.change
	if c.Action != action || !slices.Equal(c.Attrs, attrs) || !strings.Contains(c.Refused, refused) || (refused == "") != (c.Refused == "") {
		t.Errorf("change %+v, want %s %v refused %q", c, action, attrs, refused)
	}
	checkStatements(t, p.stmts, stmts)
}

func checkStatements(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("statements %q, want %d matching %q", got, len(want), want)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(got[i]) {
			t.Errorf("statement %d %q does not match %q", i, got[i], re)
		}
	}
}

// The databases' plan: created with its owner, altered, dropped when nothing uses it, refused
// (in use, a template, a slot, an owner that does not exist) with what to do.
func TestPlanDatabase(t *testing.T) {
	cases := []struct {
		name    string
		want    DatabaseSpec
		action  string
		attrs   []string
		stmts   []string
		refused string
	}{
		{name: "as specified", want: DatabaseSpec{Name: "app", Owner: "app", Comment: "app data"}, action: ActionUnchanged},
		{name: "created", want: DatabaseSpec{Name: "app2", Owner: "app", ConnLimit: intp(20), Comment: "more"}, action: ActionCreate,
			attrs: []string{"owner app", "connection limit 20", "comment"},
			stmts: []string{`^CREATE DATABASE "app2" OWNER "app" CONNECTION LIMIT 20;$`, `^COMMENT ON DATABASE "app2" IS 'more';$`}},
		{name: "created, owned by postgres", want: DatabaseSpec{Name: "app3"}, action: ActionCreate, attrs: []string{"owner postgres"},
			stmts: []string{`^CREATE DATABASE "app3" OWNER "postgres";$`}},
		{name: "owner and limit", want: DatabaseSpec{Name: "app", Owner: "old_app", ConnLimit: intp(50)}, action: ActionAlter,
			attrs: []string{"owner app → old_app", "connection limit unlimited → 50"},
			stmts: []string{`^ALTER DATABASE "app" OWNER TO "old_app";$`, `^ALTER DATABASE "app" CONNECTION LIMIT 50;$`}},
		{name: "an owner that does not exist", want: DatabaseSpec{Name: "app4", Owner: "nobody"}, action: ActionCreate, attrs: []string{"owner nobody"},
			stmts: []string{`^CREATE DATABASE`}, refused: "its owner nobody does not exist on the cluster: create the user first (pg-users)"},
		{name: "dropped", want: DatabaseSpec{Name: "old", Absent: true}, action: ActionDrop, stmts: []string{`^DROP DATABASE "old";$`}},
		{name: "absent already", want: DatabaseSpec{Name: "gone", Absent: true}, action: ActionUnchanged, attrs: []string{"is absent"}},
		{name: "in use", want: DatabaseSpec{Name: "busy", Absent: true}, action: ActionUnchanged,
			refused: "cannot be dropped: it is in use: 2 sessions (app, report); ask them to disconnect, or end them (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'busy')"},
		{name: "a template", want: DatabaseSpec{Name: "tmpl", Absent: true}, action: ActionUnchanged, refused: "it is a template database"},
		{name: "a replication slot", want: DatabaseSpec{Name: "rslot", Absent: true}, action: ActionUnchanged, refused: "it has 1 replication slot (drop them first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planDatabase(tc.want, fakeCatalog(t))
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, p, tc.action, tc.attrs, tc.refused, tc.stmts)
		})
	}
}

// A name the inventory's rules refuse never reaches a statement, however the input came.
func TestPlanRefusesHostileNames(t *testing.T) {
	cat := fakeCatalog(t)
	for _, name := range []string{`x"; DROP ROLE postgres; --`, "app'", "App", "a b", "", strings.Repeat("a", 64)} {
		if p, err := planRole(KindUser, RoleSpec{Name: name, Login: true}, cat, "", nil); !isInvalidInput(err) || len(p.stmts) > 0 {
			t.Errorf("user %q: %v, statements %q", name, err, p.stmts)
		}
		if p, err := planRole(KindUser, RoleSpec{Name: "app", Login: true, InRoles: []string{name}}, cat, "", nil); !isInvalidInput(err) {
			t.Errorf("membership in %q: %v, statements %q", name, err, p.stmts)
		}
		if p, err := planDatabase(DatabaseSpec{Name: name}, cat); !isInvalidInput(err) || len(p.stmts) > 0 {
			t.Errorf("database %q: %v, statements %q", name, err, p.stmts)
		}
		if p, err := planDatabase(DatabaseSpec{Name: "app9", Owner: name}, cat); name != "" && (!isInvalidInput(err) || len(p.stmts) > 0) {
			t.Errorf("owner %q: %v, statements %q", name, err, p.stmts)
		}
	}
	// The names that go into the catalog query are literals, quotes doubled.
	if q := catalogQuery([]string{"a'b"}); !strings.Contains(q, `ARRAY['a''b']::text[]`) {
		t.Errorf("the catalog query does not quote the name:\n%s", q)
	}
	if q := catalogQuery(nil); !strings.Contains(q, `ARRAY[]::text[]`) {
		t.Errorf("the catalog query without roles to drop:\n%s", q)
	}
}

func isInvalidInput(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrInvalidInput && app.NonRetryable()
}

func TestObjectChangeWords(t *testing.T) {
	for _, tc := range []struct {
		c          ObjectChange
		plan, done string
	}{
		{ObjectChange{Kind: KindUser, Name: "app", Action: ActionAlter, Attrs: []string{"connection limit 5 → 10", "password"}},
			"alter user app: connection limit 5 → 10, password", "altered user app: connection limit 5 → 10, password"},
		{ObjectChange{Kind: KindDatabase, Name: "app", Action: ActionCreate, Attrs: []string{"owner app"}}, "create database app (owner app)", "created database app (owner app)"},
		{ObjectChange{Kind: KindDatabase, Name: "old", Action: ActionDrop}, "drop database old", "dropped database old"},
		{ObjectChange{Kind: KindUser, Name: "app", Action: ActionUnchanged}, "user app as specified", "user app as specified"},
		{ObjectChange{Kind: KindUser, Name: "gone", Action: ActionUnchanged, Attrs: []string{"is absent"}}, "user gone is absent", "user gone is absent"},
		{ObjectChange{Kind: KindUser, Name: "x", Action: ActionDrop, Refused: "cannot be dropped: it owns database x"}, "user x: cannot be dropped: it owns database x", "user x: cannot be dropped: it owns database x"},
	} {
		if got := tc.c.String(); got != tc.plan {
			t.Errorf("String %q, want %q", got, tc.plan)
		}
		if got := tc.c.Done(); got != tc.done {
			t.Errorf("Done %q, want %q", got, tc.done)
		}
	}
	got := ObjectsSummary([]ObjectChange{{Action: ActionCreate}, {Action: ActionDrop}, {Action: ActionUnchanged}, {Action: ActionUnchanged}, {Action: ActionDrop, Refused: "x"}})
	if got != "1 to create, 1 to drop, 2 unchanged, 1 refused" {
		t.Errorf("summary %q", got)
	}
}
