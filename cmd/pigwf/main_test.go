package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/pigwf/pigwf/pki"
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

// The bridge serves plain http only on loopback, unless TLS files are given or a lab says so.
func TestChatopsTLS(t *testing.T) {
	cases := []struct {
		n                  int
		listen, cert, key  string
		plaintext, wantErr bool
	}{
		{1, "127.0.0.1:8088", "", "", false, false},
		{2, "localhost:8088", "", "", false, false},
		{3, "0.0.0.0:8088", "", "", false, true},
		{4, "10.0.0.5:8088", "", "", false, true},
		{5, "10.0.0.5:8088", "", "", true, false},
		{6, "10.0.0.5:8088", "/nonexistent.crt", "", false, true},
		{7, "10.0.0.5:8088", "/nonexistent.crt", "/nonexistent.key", false, true},
		{8, "no-port", "", "", false, true},
	}
	ca := pki.CA{Dir: t.TempDir()}
	if _, err := ca.Ensure(); err != nil {
		t.Fatal(err)
	}
	files, _, err := ca.EnsureClient("bridge-test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		n                  int
		listen, cert, key  string
		plaintext, wantErr bool
	}{9, "10.0.0.5:8088", files.Cert, files.Key, false, false})
	for _, c := range cases {
		got, err := chatopsTLS(c.listen, c.cert, c.key, c.plaintext)
		if (err != nil) != c.wantErr || (err == nil && got.Cert != c.cert) {
			t.Errorf("%d: %s cert=%q key=%q plaintext=%v: %+v err=%v, want error %v", c.n, c.listen, c.cert, c.key, c.plaintext, got, err, c.wantErr)
		}
	}
}
