package inventory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/inventory"
)

// state: absent and the attributes pg-users and pg-databases manage: what loads, and what is
// refused with the field, the line and a fix.
func TestUserAndDatabaseStates(t *testing.T) {
	cases := []struct {
		name    string
		group   string // pg-test.vars lines; the refused one marked "# <-"
		field   string // "" when it must load
		problem string
		fix     string
	}{
		{name: "absent user and database, attributes", group: `        pg_users:
          - { name: app, password: x, connlimit: 10, createdb: true, inherit: false, replication: true, bypassrls: false }
          - { name: old_app, state: absent }
          - { name: app2, state: create, connlimit: -1 }
        pg_databases:
          - { name: app, owner: app, connlimit: 5 }
          - { name: old_app, owner: old_app, state: absent }
`},
		{name: "unknown user state", group: "        pg_users: [ { name: app, state: gone } ] # <-\n",
			field: "pg_users[0].state", problem: `"gone" is not a state of a user`, fix: "absent"},
		{name: "Pigsty's recreate", group: "        pg_users: [ { name: app } ]\n        pg_databases: [ { name: app, owner: app, state: recreate } ] # <-\n",
			field: "pg_databases[0].state", problem: "would drop the database", fix: "state: absent"},
		{name: "connection limit below -1", group: "        pg_users: [ { name: app, connlimit: -2 } ] # <-\n",
			field: "pg_users[0].connlimit", problem: "not a connection limit", fix: "-1"},
		{name: "connection limit not a number", group: "        pg_databases: [ { name: app, connlimit: 'ten; DROP' } ] # <-\n",
			field: "pg_databases[0].connlimit", problem: "not a connection limit"},
		{name: "connection limit beyond int4", group: "        pg_databases: [ { name: app, connlimit: 4294967296 } ] # <-\n",
			field: "pg_databases[0].connlimit", problem: "not a connection limit"},
		{name: "a database kept whose owner goes", group: "        pg_users: [ { name: app, state: absent } ]\n        pg_databases: [ { name: app, owner: app } ] # <-\n",
			field: "pg_databases[0].owner", problem: "has state: absent", fix: "give the database another owner"},
		{name: "a user kept in a role that goes", group: "        pg_users:\n          - { name: grp, state: absent }\n          - { name: app, roles: [ grp ] } # <-\n",
			field: "pg_users[1].roles[0]", problem: "grp is pg_users[0], which has state: absent"},
		{name: "dropping postgres", group: "        pg_databases: [ { name: postgres, state: absent } ] # <-\n",
			field: "pg_databases[0].state", problem: "PostgreSQL's own database", fix: "leave it out"},
		{name: "dropping template1", group: "        pg_databases: [ { name: template1, state: absent } ] # <-\n",
			field: "pg_databases[0].state", problem: "PostgreSQL's own database"},
		{name: "dropping pigwf's admin user", group: "        pg_users: [ { name: dbuser_dba, state: absent } ] # <-\n",
			field: "pg_users[0].name", problem: "which pigwf creates itself"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := inv("", tc.group, "", "")
			got, err := inventory.ParseInventory("objects.yml", []byte(text))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, text)
				}
				checkLoadedStates(t, got)
				return
			}
			var verr *inventory.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v, want a ValidationError\n%s", err, text)
			}
			line := markedLine(t, text)
			for _, p := range verr.Problems {
				if p.Field == tc.field && p.Line == line && strings.Contains(p.Problem, tc.problem) && strings.Contains(p.Fix, tc.fix) {
					return
				}
			}
			t.Errorf("no problem %s on line %d saying %q (fix %q); got:\n%v", tc.field, line, tc.problem, tc.fix, err)
		})
	}
}

// checkLoadedStates: the first case's entries as decoded.
func checkLoadedStates(t *testing.T, got *inventory.Inventory) {
	t.Helper()
	c, err := got.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	app, old := c.Users[0], c.Users[1]
	if app.Absent() || !old.Absent() || c.Users[2].Absent() {
		t.Errorf("states: %q %q %q", app.State, old.State, c.Users[2].State)
	}
	if app.ConnLimit == nil || *app.ConnLimit != 10 || app.CreateDB == nil || !*app.CreateDB || app.Inherit == nil || *app.Inherit ||
		!app.Replication || app.BypassRLS == nil || *app.BypassRLS || app.CreateRole != nil {
		t.Errorf("app's attributes: %+v", app)
	}
	if d := c.Databases[0]; d.ConnLimit == nil || *d.ConnLimit != 5 || d.Absent() || !c.Databases[1].Absent() {
		t.Errorf("databases: %+v", c.Databases)
	}
}
