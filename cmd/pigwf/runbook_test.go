package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/dsl"
)

const runbookTestInventory = `all:
  children:
    pg-test:
      hosts:
        10.213.0.11: { pg_seq: 1, pg_role: primary }
        10.213.0.12: { pg_seq: 2, pg_role: replica }
      vars: { pg_cluster: pg-test }
    pg-one:
      hosts:
        10.213.0.21: { pg_seq: 1, pg_role: primary }
      vars: { pg_cluster: pg-one }
    etcd:
      hosts:
        10.213.0.11: { etcd_seq: 1 }
      vars: { etcd_cluster: etcd }
  vars: { ansible_user: root }
`

// The shipped rolling restart checks against a cluster with a replica and is refused, with the
// loop's line, against a cluster of one member.
func TestRunbookCheck(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(inv, []byte(runbookTestInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(cluster string) error {
		app := &cli.App{Commands: []*cli.Command{runbookCmd()}}
		return app.Run([]string{"pigwf", "runbook", "check", "--file", "../../runbooks/rolling-restart.yml", "--cluster", cluster, "--inventory", inv})
	}
	if err := run("pg-test"); err != nil {
		t.Fatalf("pg-test: %v", err)
	}
	err := run("pg-one")
	var ps dsl.Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !strings.HasSuffix(ps[0].File, "rolling-restart.yml") || ps[0].Line != 9 || !strings.Contains(ps[0].Problem, "selects no member") {
		t.Fatalf("pg-one: %v; want the each at rolling-restart.yml:9 refused", err)
	}
}

// `pigwf start runbook` refuses a file that does not check, with every problem at file:line,
// before it connects to anything (there is no Temporal server here to connect to).
func TestStartRunbookRefusesBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PIGWF_HOME", dir)
	inv := filepath.Join(dir, "inventory.yml")
	file := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(inv, []byte(runbookTestInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := "runbook: bad\nsteps:\n  - name: r\n    restart: {}\n  - name: s\n    switchover: {candidate: pg-test-9}\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	app := &cli.App{Commands: []*cli.Command{startCmd()}}
	err := app.Run([]string{"pigwf", "start", "runbook", "--file", file, "--cluster", "pg-test", "--inventory", inv})
	var ps dsl.Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("%v; want three problems", err)
	}
	for i, want := range []struct {
		line int
		text string
	}{{3, "restart without an approval"}, {5, "switchover without an approval"}, {5, `"pg-test-9" is not a member`}} {
		if ps[i].File != file || ps[i].Line != want.line || !strings.Contains(ps[i].String(), want.text) {
			t.Errorf("problem %d: %s; want line %d with %q", i, ps[i], want.line, want.text)
		}
	}
}
