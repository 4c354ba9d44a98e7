package main

import (
	"errors"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/pitr"
)

// A bad NAME is refused before the inventory is read, so before any SSH: the inventory here
// does not exist, and the error is the name's.
func TestRestorePointRefusesBadNameFirst(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{restorePointCmd()}}
	err := app.Run([]string{"pigwf", "restore-point", "--cluster", "pg-test", "--inventory", "/nonexistent/inventory.yml", "x; drop"})
	if !errors.Is(err, pitr.ErrBadName) {
		t.Fatalf("want ErrBadName, got %v", err)
	}
}
