package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Bad flags of pg-restart and pg-reload are refused before anything starts: no Temporal is
// dialed (none runs here), and the message names the flag.
func TestStartRestartRefusesBadFlags(t *testing.T) {
	t.Setenv("PIGWF_HOME", t.TempDir())
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(inv, []byte(runbookTestInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pg-restart", "--cluster", "pg-test", "--at", "soon"}, "--at soon: give an RFC 3339 time"},
		{[]string{"pg-restart", "--cluster", "pg-test", "--at", "2020-01-01T00:00:00Z"}, "is already past"},
		{[]string{"pg-restart", "--cluster", "pg-test", "--member", "pg-test-9"}, "--member pg-test-9 is not a member of pg-test"},
		{[]string{"pg-restart", "--cluster", "pg-nope"}, "pg-nope"},
		{[]string{"pg-reload", "--cluster", "pg-nope"}, "pg-nope"},
	} {
		// A Temporal address nothing listens at: were a start to get that far, it would fail
		// there, never reach a server that may run on this machine.
		app := &cli.App{Flags: connectionFlags(), Commands: []*cli.Command{startCmd()}}
		err := app.Run(append([]string{"pigwf", "--address", "127.0.0.1:1", "--tls=false", "start"}, append(tc.args, "--inventory", inv)...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
