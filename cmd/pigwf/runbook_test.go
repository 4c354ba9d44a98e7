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
