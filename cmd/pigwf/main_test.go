package main

import (
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// Flags typed after the run's ID still count: urfave/cli stops at the first argument.
func TestPositionalWithFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		id     string
		values map[string]string
		bools  map[string]bool
		err    bool
	}{
		{args: []string{"x/y", "--by", "alice", "--reject"}, id: "x/y", values: map[string]string{"by": "alice", "comment": ""}, bools: map[string]bool{"reject": true}},
		{args: []string{"--by", "bob", "x/y", "--comment=ok"}, id: "x/y", values: map[string]string{"by": "bob", "comment": "ok"}, bools: map[string]bool{"reject": false}},
		{args: []string{"x/y", "z"}, err: true},
		{args: []string{"x/y", "--by"}, err: true},
		{args: []string{"x/y", "--nope"}, err: true},
	} {
		var id string
		var values map[string]string
		var bools map[string]bool
		var err error
		app := &cli.App{Commands: []*cli.Command{{
			Name:  "approve",
			Flags: []cli.Flag{&cli.StringFlag{Name: "by"}, &cli.StringFlag{Name: "comment"}, &cli.BoolFlag{Name: "reject"}},
			Action: func(c *cli.Context) error {
				id, values, bools, err = positionalWithFlags(c, []string{"by", "comment"}, []string{"reject"})
				return nil
			},
		}}}
		if runErr := app.Run(append([]string{"pigwf", "approve"}, tc.args...)); runErr != nil {
			t.Fatalf("%v: %v", tc.args, runErr)
		}
		if tc.err {
			if err == nil {
				t.Errorf("%v: accepted", tc.args)
			}
			continue
		}
		if err != nil || id != tc.id || !reflect.DeepEqual(values, tc.values) || !reflect.DeepEqual(bools, tc.bools) {
			t.Errorf("%v: %q %v %v %v", tc.args, id, values, bools, err)
		}
	}
}
