package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// pg-users, pg-databases and pg-hba refuse a bad --name or cluster before anything starts (no
// Temporal is dialed), naming what to give.
func TestStartObjectsRefusesBadFlags(t *testing.T) {
	t.Setenv("PIGWF_HOME", t.TempDir())
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	text := strings.Replace(runbookTestInventory, "      vars: { pg_cluster: pg-test }\n",
		"      vars:\n        pg_cluster: pg-test\n        pg_users: [ { name: app }, { name: old_app, state: absent } ]\n        pg_databases: [ { name: app, owner: app } ]\n", 1)
	if err := os.WriteFile(inv, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pg-users", "--cluster", "pg-test", "--name", "nobody"}, "--name nobody is not in pg_users of pg-test: give one of app, old_app"},
		{[]string{"pg-databases", "--cluster", "pg-test", "--name", "old_app"}, "--name old_app is not in pg_databases of pg-test: give one of app"},
		{[]string{"pg-databases", "--cluster", "pg-one", "--name", "app"}, "--name app: pg_databases of pg-one is empty"},
		{[]string{"pg-users", "--cluster", "pg-one"}, "pg_users of pg-one is empty: nothing to apply"},
		{[]string{"pg-users", "--cluster", "pg-nope"}, "pg-nope"},
		{[]string{"pg-hba", "--cluster", "pg-nope"}, "pg-nope"},
	} {
		// A Temporal address nothing listens at: a start that got that far would fail there.
		app := &cli.App{Flags: connectionFlags(), Commands: []*cli.Command{startCmd()}}
		err := app.Run(append([]string{"pigwf", "--address", "127.0.0.1:1", "--tls=false", "start"}, append(tc.args, "--inventory", inv)...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
