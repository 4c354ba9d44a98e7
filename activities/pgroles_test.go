package activities_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// sqlRecorder answers psql: the catalog query with catalogs, one after the other (the last one
// from then on), anything else with success; it keeps what was sent.
type sqlRecorder struct {
	mu       sync.Mutex
	catalogs []string
	sent     []string
}

func (r *sqlRecorder) Run(_ context.Context, _ sshrun.Target, cmd sshrun.Command) (sshrun.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Contains(string(cmd.Stdin), "'in_recovery'") {
		c := r.catalogs[0]
		if len(r.catalogs) > 1 {
			r.catalogs = r.catalogs[1:]
		}
		return sshrun.Result{Stdout: c}, nil
	}
	r.sent = append(r.sent, string(cmd.Stdin))
	return sshrun.Result{}, nil
}

// PgClusterCreate's roles and users steps, with the roles and users the starter builds from an
// inventory, on a new cluster: every role created in the order a membership needs (none refused
// for a role created earlier in the same transaction), the users, then their databases; the
// users' entries with state: absent are not in the input at all.
func TestPgRolesOnANewCluster(t *testing.T) {
	file := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(file, []byte(richInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadInventory(file)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := inv.Cluster("pg-test")
	pc, err := starter.PgClusterCreateInput(inv, cl, file)
	if err != nil {
		t.Fatal(err)
	}
	fresh := `{"in_recovery": false, "roles": [{"rolname": "postgres", "login": true, "super": true, "inherit": true, "connlimit": -1},
		{"rolname": "pg_monitor", "inherit": true, "connlimit": -1}], "databases": [{"name": "postgres", "owner": "postgres", "connlimit": -1}], "dependents": []}`
	remote := &sqlRecorder{catalogs: []string{fresh}}
	a := &activities.Activities{Remote: remote, Secrets: activities.SecretStore{Dir: t.TempDir()}}
	primary := pc.Members[0].Node
	res, err := a.PgRoles(context.Background(), activities.SQLInput{Primary: primary, Spec: pc.Spec, Roles: pc.Roles, Step: activities.StepRoles})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Changes) != 7 || res.Changes[0] != "created role dbrole_readonly (comment)" || !strings.HasPrefix(res.Changes[6], "granted pg_rewind's functions") {
		t.Errorf("roles step: %+v", res)
	}
	roles := remote.sent[0]
	for _, re := range []string{`(?s)^SET log_statement = 'none';\nBEGIN;\nCREATE ROLE "dbrole_readonly" WITH NOLOGIN NOREPLICATION NOSUPERUSER;`,
		`(?s)CREATE ROLE "dbrole_readwrite" .*GRANT "dbrole_readonly" TO "dbrole_readwrite";.*CREATE ROLE "dbrole_admin" .*GRANT "dbrole_readwrite" TO "dbrole_admin";`,
		`CREATE ROLE "replicator" WITH LOGIN REPLICATION NOSUPERUSER;`, `CREATE ROLE "dbuser_dba" WITH LOGIN NOREPLICATION SUPERUSER;`, `COMMIT;$`} {
		if !regexp.MustCompile(re).MatchString(roles) {
			t.Errorf("the roles' transaction does not match %q:\n%s", re, roles)
		}
	}

	// The users step, once the roles exist; its databases are planned once the users exist too.
	withRoles := strings.Replace(fresh, `"roles": [`, `"roles": [{"rolname": "dbrole_readwrite", "inherit": true, "connlimit": -1}, `, 1)
	withUsers := strings.Replace(withRoles, `"roles": [`, `"roles": [{"rolname": "app", "login": true, "inherit": true, "connlimit": 20}, `, 1)
	remote.catalogs, remote.sent = []string{withRoles, withUsers}, nil
	res, err = a.PgRoles(context.Background(), activities.SQLInput{Primary: primary, Spec: pc.Spec, Roles: pc.Users, Databases: pc.Databases, Step: activities.StepUsers})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"created user app (login, createdb, connection limit 20, password, member of dbrole_readwrite, comment)", "created user dbuser_meta (password)",
		"created database app (owner app, connection limit unlimited, comment)", "created database meta (owner postgres)"}
	if strings.Join(res.Changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("users step:\n  %s\nwant\n  %s", strings.Join(res.Changes, "\n  "), strings.Join(want, "\n  "))
	}
	if all := strings.Join(remote.sent, "\n"); strings.Contains(all, "old_app") {
		t.Errorf("an absent entry reached pg-cluster-create's SQL:\n%s", all)
	}
}
