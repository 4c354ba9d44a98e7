package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// `config set` takes its flags anywhere among the NAME=VALUE arguments, --unset as often as
// given, before or after them.
func TestConfigSetArguments(t *testing.T) {
	var got commandArgs
	var err error
	app := &cli.App{Commands: []*cli.Command{{
		Name:  "set",
		Flags: configSetCmd().Flags,
		Action: func(c *cli.Context) error {
			got, err = mixedArgs(c, []string{"cluster", "c", "inventory", "i"}, []string{"unset"}, []string{"yes", "y", "no-wait"})
			return nil
		},
	}}}
	args := []string{"pigwf", "set", "--unset", "a", "-c", "pg-test", "shared_buffers=1GB", "--unset", "b", "--yes", "work_mem=64MB", "--unset=c", "--no-wait"}
	if runErr := app.Run(args); runErr != nil || err != nil {
		t.Fatal(runErr, err)
	}
	if want := []string{"shared_buffers=1GB", "work_mem=64MB"}; !reflect.DeepEqual(got.positional, want) {
		t.Errorf("arguments %q, want %q", got.positional, want)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got.lists["unset"], want) {
		t.Errorf("--unset %q, want %q", got.lists["unset"], want)
	}
	if got.values["c"] != "pg-test" || !got.bools["yes"] || !got.bools["no-wait"] {
		t.Errorf("flags %+v", got)
	}
	if runErr := app.Run([]string{"pigwf", "set", "a=1", "--unset"}); runErr != nil || err == nil {
		t.Errorf("--unset without a name: %v, want refused", err)
	}
}

// The editor runs without a shell: a file name holding $(...) and spaces reaches it as one
// argument, and nothing in it is run.
func TestRunEditorWithoutAShell(t *testing.T) {
	dir := t.TempDir()
	editor := filepath.Join(dir, "editor")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\n[ $# -eq 2 ] && [ \"$1\" = --flag ] && printf 'edited\\n' >> \"$2\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VISUAL", "")
	t.Setenv("EDITOR", editor+" --flag")
	file := filepath.Join(dir, "my config $(touch pwned).yaml")
	if err := os.WriteFile(file, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := runEditor(file); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "a: 1\nedited\n" {
		t.Errorf("file after the editor: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); !os.IsNotExist(err) {
		t.Error("the file name was run by a shell")
	}
	t.Setenv("EDITOR", "false")
	if err := runEditor(file); err == nil {
		t.Error("an editor that fails: no error")
	}
}
