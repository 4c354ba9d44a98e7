package activities

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/activities/sshrun"
)

// PgRoles sets a password as a verifier computed on the worker: the statement psql receives
// holds the verifier, which matches the password, and never the password itself.
func TestPgRolesSendsVerifierNotPassword(t *testing.T) {
	remote := &fakeRemote{reply: func(n int, cmd sshrun.Command) sshrun.Result {
		if n == 0 {
			return sshrun.Result{Stdout: `{"in_recovery": false, "roles": [], "databases": [], "dependents": []}`} // no roles yet
		}
		return sshrun.Result{}
	}}
	a := &Activities{Remote: remote, Secrets: SecretStore{Dir: t.TempDir()}}
	in := SQLInput{
		Primary: Node{Addr: "10.0.0.1", SSHHost: "10.0.0.1"},
		Spec:    PGSpec{Cluster: "pg-test", Port: 5432},
		Roles:   []RoleSpec{{Name: "dbuser_dba", Login: true, Password: "admin"}},
		Step:    StepUsers,
	}
	res, err := a.PgRoles(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Secrets.Get("pg-test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	cmds := remote.commands()
	if len(cmds) != 2 {
		t.Fatalf("%d psql calls, want 2 (read the catalog, change the roles): %+v", len(cmds), res)
	}
	sql := string(cmds[1].Stdin)
	m := regexp.MustCompile(`ALTER ROLE "dbuser_dba" PASSWORD '(SCRAM-SHA-256\$[^']+)';`).FindStringSubmatch(sql)
	if m == nil {
		t.Fatalf("no ALTER ROLE ... PASSWORD '<verifier>' in:\n%s", sql)
	}
	if !scramMatches(m[1], admin) {
		t.Errorf("the verifier sent does not match the admin password")
	}
	for _, c := range cmds {
		if strings.Contains(string(c.Stdin), admin) || strings.Contains(c.Script, admin) {
			t.Errorf("the password reached psql:\n%s\n%s", c.Script, c.Stdin)
		}
	}
}
