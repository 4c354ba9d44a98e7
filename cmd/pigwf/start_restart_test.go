package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// flagCase is a command line that must be refused, and what the refusal says.
type flagCase struct {
	args []string
	want string
}

// checkRefusals runs each case (with --inventory of runbookTestInventory) through an app of cmds
// and wants it refused saying want. The Temporal address is one nothing listens at: were a
// command to get as far as dialing, it would fail there, never reach a server that may run on
// this machine.
func checkRefusals(t *testing.T, cmds []*cli.Command, cases []flagCase) {
	t.Helper()
	t.Setenv("PIGWF_HOME", t.TempDir())
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(inv, []byte(runbookTestInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		app := &cli.App{Flags: connectionFlags(), Commands: cmds}
		err := app.Run(append([]string{"pigwf", "--address", "127.0.0.1:1", "--tls=false"}, append(tc.args, "--inventory", inv)...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// Bad flags of pg-restart and pg-reload are refused before anything starts: no Temporal is
// dialed, and the message names the flag.
func TestStartRestartRefusesBadFlags(t *testing.T) {
	checkRefusals(t, []*cli.Command{startCmd()}, []flagCase{
		{[]string{"start", "pg-restart", "--cluster", "pg-test", "--at", "soon"}, "--at soon: give an RFC 3339 time"},
		{[]string{"start", "pg-restart", "--cluster", "pg-test", "--at", "2020-01-01T00:00:00Z"}, "is already past"},
		{[]string{"start", "pg-restart", "--cluster", "pg-test", "--member", "pg-test-9"}, "--member pg-test-9 is not a member of pg-test"},
		{[]string{"start", "pg-restart", "--cluster", "pg-nope"}, "pg-nope"},
		{[]string{"start", "pg-reload", "--cluster", "pg-nope"}, "pg-nope"},
	})
}
