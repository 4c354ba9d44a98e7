package activities

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
)

// objectsFake answers psql on the leader: the catalog query with cat, anything else with success.
func objectsFake(t *testing.T, cat catalog) *fakeRemote {
	t.Helper()
	raw, err := json.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeRemote{reply: func(_ int, cmd sshrun.Command) sshrun.Result {
		if strings.Contains(string(cmd.Stdin), "'in_recovery'") {
			return sshrun.Result{Stdout: string(raw)}
		}
		return sshrun.Result{}
	}}
}

// objectsInput is pg-users' input for app (password from the inventory file) on pg-test's leader.
func objectsInput(t *testing.T) PgObjectsInput {
	t.Helper()
	file := filepath.Join(t.TempDir(), "inventory.yml")
	text := `all:
  children:
    pg-test:
      hosts: { 10.0.0.1: { pg_seq: 1, pg_role: primary } }
      vars:
        pg_cluster: pg-test
        pg_users: [ { name: app, password: s3cret }, { name: app2, password: n3w } ]
`
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return PgObjectsInput{Leader: Node{Addr: "10.0.0.1", Name: "pg-test-1", SSHHost: "10.0.0.1", SSHPort: 22, SSHUser: "root"},
		Cluster: "pg-test", Port: 5432, InventoryFile: file}
}

func objectsActivities(t *testing.T, r Remote) *Activities {
	return &Activities{Remote: r, Secrets: SecretStore{Dir: t.TempDir()}}
}

// The plan reads the leader's catalog once (asking what depends on the users to drop) and
// changes nothing; each object's plan says what it takes.
func TestPgObjectsPlan(t *testing.T) {
	remote := objectsFake(t, fakeCatalog(t))
	in := objectsInput(t)
	in.Users = []RoleSpec{
		{Name: "app", Login: true, Password: "user", InRoles: []string{"dbrole_readwrite"}, ConnLimit: intp(10)},
		{Name: "app2", Login: true, Password: "user", InRoles: []string{"app"}},
		{Name: "old_app", Absent: true},
	}
	in.Databases = []DatabaseSpec{{Name: "app", Owner: "app", Comment: "app data"}, {Name: "old", Absent: true}}
	plan, err := objectsActivities(t, remote).PgObjectsPlan(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range plan.Changes {
		got = append(got, c.String())
	}
	want := []string{"alter user app: connection limit 5 → 10", "create user app2 (login, password, member of app)", "drop user old_app",
		"database app as specified", "drop database old"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	cmds := remote.commands()
	if len(cmds) != 1 || !strings.Contains(string(cmds[0].Stdin), "ARRAY['old_app']::text[]") {
		t.Fatalf("%d psql calls, want the one catalog read asking about old_app: %q", len(cmds), cmds)
	}
	for _, c := range cmds {
		if strings.Contains(string(c.Stdin), "s3cret") || strings.Contains(string(c.Stdin), "n3w") || strings.Contains(c.Script, "n3w") {
			t.Errorf("a password reached psql: %s", c.Stdin)
		}
	}
}

// A step applies its object: a user's statements in one transaction, the verifier and never the
// password; a database's one statement at a time. Once the catalog is as the inventory says
// (the rerun), the step changes nothing.
func TestPgObjectsApply(t *testing.T) {
	ctx := context.Background()
	in := objectsInput(t)
	in.Users = []RoleSpec{{Name: "app", Login: true, Password: "user", ConnLimit: intp(10)}}
	remote := objectsFake(t, fakeCatalog(t))
	sr, err := objectsActivities(t, remote).PgObjectsApply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !sr.Changed || len(sr.Changes) != 1 || sr.Changes[0] != "altered user app: connection limit 5 → 10" || sr.Node != "pg-test-1" {
		t.Errorf("result %+v", sr)
	}
	cmds := remote.commands()
	if len(cmds) != 2 || string(cmds[1].Stdin) != "SET log_statement = 'none';\nBEGIN;\nALTER ROLE \"app\" WITH CONNECTION LIMIT 10;\nCOMMIT;" {
		t.Fatalf("psql calls %q", cmds)
	}

	// The rerun: the catalog has the limit now.
	cat := fakeCatalog(t)
	cat.Roles[2].ConnLimit = 10
	remote = objectsFake(t, cat)
	sr, err = objectsActivities(t, remote).PgObjectsApply(ctx, in)
	if err != nil || sr.Changed || len(sr.Notes) != 1 || sr.Notes[0] != "user app as specified" || len(remote.commands()) != 1 {
		t.Errorf("rerun: %+v, %v, %d psql calls", sr, err, len(remote.commands()))
	}

	// A database: created, then commented, each on its own.
	in.Users = nil
	in.Databases = []DatabaseSpec{{Name: "app2", Owner: "app", Comment: "more"}}
	remote = objectsFake(t, fakeCatalog(t))
	if sr, err = objectsActivities(t, remote).PgObjectsApply(ctx, in); err != nil || !sr.Changed {
		t.Fatalf("database: %+v, %v", sr, err)
	}
	if cmds := remote.commands(); len(cmds) != 3 || !strings.HasSuffix(string(cmds[1].Stdin), `CREATE DATABASE "app2" OWNER "app";`) ||
		!strings.HasSuffix(string(cmds[2].Stdin), `COMMENT ON DATABASE "app2" IS 'more';`) {
		t.Errorf("psql calls %q", cmds)
	}
}

// Refused with nothing changed: a database drop without the run's approval, a database in use,
// a user owning objects, a leader that is a replica now, a hostile name (before any SQL).
func TestPgObjectsApplyRefusals(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*PgObjectsInput, *catalog)
		errType string
		says    string
		calls   int
	}{
		{"a drop not approved", func(in *PgObjectsInput, _ *catalog) { in.Databases = []DatabaseSpec{{Name: "old", Absent: true}} },
			ErrDropNotApproved, "dropping database old needs the run's approval", 1},
		{"a database in use", func(in *PgObjectsInput, _ *catalog) {
			in.Databases, in.AllowDrop = []DatabaseSpec{{Name: "busy", Absent: true}}, true
		}, ErrConflict, "database busy: cannot be dropped: it is in use: 2 sessions", 1},
		{"a user owning objects", func(in *PgObjectsInput, _ *catalog) { in.Users = []RoleSpec{{Name: "owner_app", Absent: true}} },
			ErrConflict, "user owner_app: cannot be dropped: it owns database legacy", 1},
		{"a replica", func(in *PgObjectsInput, c *catalog) {
			in.Users, c.InRecovery = []RoleSpec{{Name: "app9", Login: true}}, true
		}, ErrConflict, "is not the primary (PostgreSQL there is in recovery)", 1},
		{"a hostile name", func(in *PgObjectsInput, _ *catalog) {
			in.Users = []RoleSpec{{Name: `x"; DROP ROLE postgres; --`, Absent: true}}
		},
			ErrInvalidInput, "is not a valid role name", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, cat := objectsInput(t), fakeCatalog(t)
			tc.change(&in, &cat)
			remote := objectsFake(t, cat)
			_, err := objectsActivities(t, remote).PgObjectsApply(context.Background(), in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != tc.errType || !app.NonRetryable() || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want %s saying %q", err, tc.errType, tc.says)
			}
			if n := len(remote.commands()); n != tc.calls {
				t.Errorf("%d psql calls, want %d (nothing changed)", n, tc.calls)
			}
		})
	}
}
