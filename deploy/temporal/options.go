package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/searchattribute/sadefs"
)

// defaultNamespace always exists, whatever --namespace says.
const defaultNamespace = "default"

// defaultSearchAttributes are pigwf's custom search attributes, registered
// when no --search-attribute flag is given. They copy
// workflows.CustomSearchAttributes() (github.com/pigwf/pigwf/workflows), the
// one list pigwf reads: this is a separate Go module and cannot import it, so
// a change there is made here too (the tests' servers pass the list as flags).
var defaultSearchAttributes = []searchAttribute{
	{Name: "PgCluster", Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: "Runbook", Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: "RunState", Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: "RunSummary", Type: enumspb.INDEXED_VALUE_TYPE_TEXT},
}

// The stores pigwf-temporal keeps its state in (--db).
const (
	dbSQLite   = "sqlite"
	dbPostgres = "postgres"
)

// Default history shard counts (--num-history-shards). One shard is the dev server's, as the
// Temporal CLI's. PostgreSQL gets 4: pigwf runs a handful of runbooks at a time, so one shard
// would do for load, but the count is fixed once the database is set up and bounds how many
// history services can share the work later; 4 leaves room for that at no cost now.
const (
	defaultShardsSQLite   = 1
	defaultShardsPostgres = 4
	maxHistoryShards      = 16384
)

type options struct {
	IP               string
	Port             int
	UIPort           int    // 0 disables the UI
	DB               string // dbSQLite or dbPostgres
	DBFile           string // SQLite only
	Postgres         pgOptions
	NumHistoryShards int32
	ShardsGiven      bool     // --num-history-shards was on the command line (else: the default, or what the database holds)
	Namespaces       []string // always starts with "default", no duplicates
	SearchAttributes []searchAttribute
	LogLevel         string
	LogFile          string
	TLS              tlsOptions // zero: plaintext
}

type searchAttribute struct {
	Name string
	Type enumspb.IndexedValueType
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(name string, args []string) (*options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var (
		opts       options
		namespaces stringList
		attrs      stringList
	)
	fs.StringVar(&opts.IP, "ip", "127.0.0.1", "IP `address` the gRPC frontend and the Web UI listen on")
	fs.IntVar(&opts.Port, "port", 7233, "gRPC frontend `port`")
	fs.IntVar(&opts.UIPort, "ui-port", 8233, "Web UI `port` (0 disables the UI)")
	fs.StringVar(&opts.DB, "db", dbSQLite, "where the state is kept: sqlite (one file, or memory: development) or postgres (the --pg-* flags)")
	fs.StringVar(&opts.DBFile, "db-filename", "", "SQLite `file` for persistent state, e.g. ~/.pigwf/temporal.db (empty: in memory)")
	shards := fs.Int("num-history-shards", 0, fmt.Sprintf("history shards (`count`), fixed when the database is first used (default %d with sqlite, %d with postgres, or what the database already holds)", defaultShardsSQLite, defaultShardsPostgres))
	addPostgresFlags(fs, &opts.Postgres)
	fs.Var(&namespaces, "namespace", "extra `namespace` to create (repeatable; \"default\" always exists)")
	fs.Var(&attrs, "search-attribute", "custom search attribute `NAME=TYPE` to register in every namespace (repeatable;\n"+
		"TYPE is Keyword, Text, Int, Double, Bool, Datetime or KeywordList;\n"+
		"default: PgCluster=Keyword, Runbook=Keyword, RunState=Keyword and RunSummary=Text)")
	fs.StringVar(&opts.LogLevel, "log-level", "warn", "server log `level`: debug, info, warn or error")
	fs.StringVar(&opts.LogFile, "log-file", "", "write server logs to this `file` instead of stderr")
	addTLSFlags(fs, &opts.TLS)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	// The server needs a literal IP; accept "localhost" as the CLI does.
	if opts.IP == "localhost" {
		opts.IP = "127.0.0.1"
	}
	if net.ParseIP(opts.IP) == nil {
		return nil, fmt.Errorf("--ip %q is not an IP address", opts.IP)
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("--port %d out of range", opts.Port)
	}
	if opts.UIPort < 0 || opts.UIPort > 65535 {
		return nil, fmt.Errorf("--ui-port %d out of range", opts.UIPort)
	}
	if opts.UIPort == opts.Port {
		return nil, fmt.Errorf("--ui-port and --port are both %d", opts.Port)
	}
	if err := checkLogLevel(opts.LogLevel); err != nil {
		return nil, err
	}

	if err := opts.checkStore(given, *shards); err != nil {
		return nil, err
	}
	if opts.DBFile != "" {
		p, err := expandHome(opts.DBFile)
		if err != nil {
			return nil, fmt.Errorf("--db-filename: %w", err)
		}
		opts.DBFile = p
	}
	if opts.LogFile != "" {
		p, err := expandHome(opts.LogFile)
		if err != nil {
			return nil, fmt.Errorf("--log-file: %w", err)
		}
		opts.LogFile = p
	}

	if err := opts.TLS.check(); err != nil {
		return nil, err
	}

	if opts.DB == dbPostgres {
		// A production store is set up by its operator, not by each start of the server.
		for _, f := range []string{"namespace", "search-attribute"} {
			if given[f] {
				return nil, fmt.Errorf("--%s with --db postgres: namespaces, their retention and pigwf's search attributes are set by `pigwf temporal setup` against the running server; drop --%s", f, f)
			}
		}
		return &opts, nil
	}

	opts.Namespaces = []string{defaultNamespace}
	for _, ns := range namespaces {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			return nil, fmt.Errorf("--namespace must not be empty")
		}
		if !slices.Contains(opts.Namespaces, ns) {
			opts.Namespaces = append(opts.Namespaces, ns)
		}
	}

	if len(attrs) == 0 {
		opts.SearchAttributes = slices.Clone(defaultSearchAttributes)
	}
	for _, a := range attrs {
		sa, err := parseSearchAttribute(a)
		if err != nil {
			return nil, fmt.Errorf("--search-attribute %q: %w", a, err)
		}
		if i := slices.IndexFunc(opts.SearchAttributes, func(x searchAttribute) bool { return x.Name == sa.Name }); i >= 0 {
			if opts.SearchAttributes[i].Type != sa.Type {
				return nil, fmt.Errorf("--search-attribute %s given with two types", sa.Name)
			}
			continue
		}
		opts.SearchAttributes = append(opts.SearchAttributes, sa)
	}
	return &opts, nil
}

// checkLogLevel checks a --log-level value.
func checkLogLevel(level string) error {
	switch level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
}

// checkStore checks --db with the flags of the other store, and the shard count.
func (opts *options) checkStore(given map[string]bool, shards int) error {
	opts.ShardsGiven = given["num-history-shards"]
	if opts.ShardsGiven && (shards < 1 || shards > maxHistoryShards) {
		return fmt.Errorf("--num-history-shards %d: want 1-%d (a power of two spreads best)", shards, maxHistoryShards)
	}
	switch opts.DB {
	case dbSQLite:
		for f := range given {
			if strings.HasPrefix(f, "pg-") {
				return fmt.Errorf("--%s is for --db postgres; this server keeps its state in SQLite (--db sqlite)", f)
			}
		}
		opts.NumHistoryShards = defaultShardsSQLite
	case dbPostgres:
		if given["db-filename"] {
			return fmt.Errorf("--db-filename is for --db sqlite; with --db postgres the state is in the --pg-database and --pg-visibility-database databases")
		}
		if err := opts.Postgres.check(); err != nil {
			return err
		}
		opts.NumHistoryShards = defaultShardsPostgres
	default:
		return fmt.Errorf("--db %q: want sqlite or postgres", opts.DB)
	}
	if opts.ShardsGiven {
		opts.NumHistoryShards = int32(shards)
	}
	return nil
}

// parseSearchAttribute parses NAME=TYPE. TYPE is matched case-insensitively
// against the Temporal API enum with its prefix and underscores dropped, so
// "KeywordList", "keyword_list" and "INDEXED_VALUE_TYPE_KEYWORD_LIST" all work.
func parseSearchAttribute(s string) (searchAttribute, error) {
	name, typ, ok := strings.Cut(s, "=")
	name, typ = strings.TrimSpace(name), strings.TrimSpace(typ)
	if !ok || name == "" || typ == "" {
		return searchAttribute{}, fmt.Errorf("want NAME=TYPE")
	}
	if strings.ContainsAny(name, " \t=\"'`") {
		return searchAttribute{}, fmt.Errorf("invalid name %q", name)
	}
	// Checked here, not only by the server, because new namespaces are
	// written straight to the database before the server runs.
	if sadefs.IsReserved(name) {
		return searchAttribute{}, fmt.Errorf("%s is reserved for Temporal's own search attributes", name)
	}
	norm := func(v string) string {
		v = strings.ToLower(strings.ReplaceAll(v, "_", ""))
		return strings.TrimPrefix(v, "indexedvaluetype")
	}
	for v, n := range enumspb.IndexedValueType_name {
		t := enumspb.IndexedValueType(v)
		if t == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			continue
		}
		if norm(n) == norm(typ) {
			return searchAttribute{Name: name, Type: t}, nil
		}
	}
	return searchAttribute{}, fmt.Errorf("unknown type %q (want Keyword, Text, Int, Double, Bool, Datetime or KeywordList)", typ)
}

// expandHome expands a leading "~/", which the shell leaves alone in
// "--db-filename=~/x".
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expanding ~: %w", err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}
