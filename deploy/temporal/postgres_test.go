package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The store flags: each bad value is refused naming its flag; PostgreSQL's password comes from a
// file or $PGPASSWORD only; the shard count defaults by store.
func TestStoreFlags(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := func(extra ...string) []string {
		return append([]string{"--db", "postgres", "--pg-password-file", pwFile}, extra...)
	}

	for _, c := range []struct {
		name string
		args []string
		want string // a part of the error; "" for none
	}{
		{"sqlite by default", nil, ""},
		{"postgres", pg(), ""},
		{"unknown store", []string{"--db", "mysql"}, `--db "mysql"`},
		{"pg flag with sqlite", []string{"--pg-host", "db1"}, "--pg-host is for --db postgres"},
		{"sqlite file with postgres", pg("--db-filename", "x.db"), "--db-filename is for --db sqlite"},
		{"quote in user", pg("--pg-user", `te"mp`), "--pg-user"},
		{"dash in database", pg("--pg-database", "tem-poral"), "--pg-database"},
		{"same databases", pg("--pg-visibility-database", "temporal"), "give visibility a database of its own"},
		{"bad host", pg("--pg-host", "db;rm -rf"), "--pg-host"},
		{"bad port", pg("--pg-port", "70000"), "--pg-port"},
		{"bad sslmode", pg("--pg-sslmode", "prefer"), "--pg-sslmode"},
		{"cert without key", pg("--pg-cert", pwFile), "--pg-cert and --pg-key"},
		{"CA with TLS off", pg("--pg-sslmode", "disable", "--pg-ca", pwFile), "--pg-sslmode disable"},
		{"missing CA file", pg("--pg-ca", filepath.Join(dir, "nope")), "--pg-ca"},
		{"empty password file", []string{"--db", "postgres", "--pg-password-file", empty}, "first line is empty"},
		{"namespace with postgres", pg("--namespace", "x"), "pigwf temporal setup"},
		{"search attribute with postgres", pg("--search-attribute", "A=Keyword"), "pigwf temporal setup"},
		{"zero shards", pg("--num-history-shards", "0"), "--num-history-shards 0"},
		{"too many shards", pg("--num-history-shards", "100000"), "--num-history-shards 100000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFlags("pigwf-temporal", c.args)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}

	opts, err := parseFlags("pigwf-temporal", pg())
	if err != nil {
		t.Fatal(err)
	}
	if opts.Postgres.password != "s3cret" {
		t.Errorf("password from the file's first line: got %q", opts.Postgres.password)
	}
	if opts.NumHistoryShards != defaultShardsPostgres || opts.ShardsGiven {
		t.Errorf("postgres shards %d (given %v), want the default %d", opts.NumHistoryShards, opts.ShardsGiven, defaultShardsPostgres)
	}
	if len(opts.Namespaces) != 0 || len(opts.SearchAttributes) != 0 {
		t.Errorf("postgres: the server should manage no namespaces or attributes, got %v %v", opts.Namespaces, opts.SearchAttributes)
	}
	// The password reaches the connection, and never the description used in messages.
	cfg := opts.Postgres.sqlConfig("temporal")
	if cfg.Password != "s3cret" || strings.Contains(opts.Postgres.describe("temporal"), "s3cret") {
		t.Errorf("password: config %q, description %q", cfg.Password, opts.Postgres.describe("temporal"))
	}
	if cfg.ConnectAttributes["sslmode"] != "verify-full" || cfg.TLS == nil || !cfg.TLS.EnableHostVerification {
		t.Errorf("TLS is not verify-full by default: %v %+v", cfg.ConnectAttributes, cfg.TLS)
	}

	t.Setenv(envPGPassword, "from-env")
	opts, err = parseFlags("pigwf-temporal", []string{"--db", "postgres", "--pg-sslmode", "disable", "--num-history-shards", "8"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Postgres.password != "from-env" || opts.NumHistoryShards != 8 || !opts.ShardsGiven {
		t.Errorf("password %q, shards %d given %v", opts.Postgres.password, opts.NumHistoryShards, opts.ShardsGiven)
	}
	if cfg := opts.Postgres.sqlConfig("x"); cfg.TLS != nil || cfg.ConnectAttributes["sslmode"] != "disable" {
		t.Errorf("sslmode disable: %v %+v", cfg.ConnectAttributes, cfg.TLS)
	}

	opts, err = parseFlags("pigwf-temporal", nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.NumHistoryShards != defaultShardsSQLite || opts.Namespaces[0] != defaultNamespace {
		t.Errorf("sqlite: shards %d namespaces %v", opts.NumHistoryShards, opts.Namespaces)
	}
}

// A database keeps the shard count it was set up with: a new one takes the flag, an existing one
// its own count, and a flag that differs is refused with the count to give.
func TestDecideShards(t *testing.T) {
	for _, c := range []struct {
		persisted int32
		found     bool
		want      int32
		given     bool
		got       int32
		refused   bool
	}{
		{0, false, 4, false, 4, false},
		{0, false, 16, true, 16, false},
		{4, true, 4, true, 4, false},
		{8, true, 4, false, 8, false},
		{8, true, 4, true, 0, true},
	} {
		got, err := decideShards(c.persisted, c.found, c.want, c.given)
		var sce *ShardCountError
		if errors.As(err, &sce) != c.refused || got != c.got {
			t.Errorf("decideShards(%d, %v, %d, %v) = %d, %v; want %d, refused %v", c.persisted, c.found, c.want, c.given, got, err, c.got, c.refused)
		}
		if c.refused && !strings.Contains(err.Error(), "--num-history-shards 8") {
			t.Errorf("the refusal does not name the count to give: %v", err)
		}
	}
}

// The schema command's report says what changed.
func TestSchemaReport(t *testing.T) {
	for _, c := range []struct {
		r    schemaResult
		want string
	}{
		{schemaResult{Database: "temporal", Created: true, After: "1.19"}, "temporal: database created, schema set up at 1.19"},
		{schemaResult{Database: "temporal", Before: "1.18", After: "1.19"}, "temporal: database exists, schema updated 1.18 -> 1.19"},
		{schemaResult{Database: "temporal", Before: "1.19", After: "1.19"}, "temporal: database exists, schema 1.19, up to date"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
	if _, err := parseSchemaFlags("pigwf-temporal", []string{"setup", "--db", "sqlite"}); err == nil || !strings.Contains(err.Error(), "--db postgres") {
		t.Errorf("schema setup --db sqlite: %v", err)
	}
	if _, err := parseSchemaFlags("pigwf-temporal", []string{"drop"}); err == nil {
		t.Error("schema drop was accepted")
	}
}
