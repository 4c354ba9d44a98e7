package main

import (
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/lib/pq"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/driver"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/session"
	"go.temporal.io/server/common/resolver"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	toolschema "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// PostgreSQL error codes the schema command tells apart (Appendix A of PostgreSQL's manual).
const (
	pgCodeNoDatabase = "3D000" // invalid_catalog_name: the database does not exist
	pgCodeNoTable    = "42P01" // undefined_table: no schema_version table, the tool never ran here
)

// The schemas embedded in the server module (go.temporal.io/server/schema), by the names the
// server's SQL tool knows them: each has a versioned/ directory of updates.
const (
	schemaMain       = "postgresql/v12/temporal"
	schemaVisibility = "postgresql/v12/visibility"
)

// schemaOptions are the flags of `pigwf-temporal schema setup|update`.
type schemaOptions struct {
	Action   string // "setup" or "update"
	DB       string
	Postgres pgOptions
	LogLevel string
}

const schemaUsage = `usage: pigwf-temporal schema setup|update --db postgres [--pg-* flags]

setup   creates the two databases if missing (as --pg-user, connected to --pg-maintenance-database)
        and brings both to the schema version this server needs; safe to run again.
update  brings existing databases to this server's schema version (after upgrading the server);
        refuses a database that was never set up.
Both use the server module's own SQL schema tool and the schema files embedded in it.`

func parseSchemaFlags(name string, args []string) (*schemaOptions, error) {
	fs := flag.NewFlagSet(name+" schema", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), schemaUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || (args[0] != "setup" && args[0] != "update") {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil, flag.ErrHelp
		}
		return nil, errors.New("schema: want `setup` or `update`")
	}
	opts := schemaOptions{Action: args[0]}
	fs.StringVar(&opts.DB, "db", "", "the store: postgres (SQLite sets its schema up itself, at the server's first start)")
	fs.StringVar(&opts.LogLevel, "log-level", "warn", "the SQL tool's log `level`: debug, info, warn or error")
	addPostgresFlags(fs, &opts.Postgres)
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("schema %s: unexpected arguments: %q", opts.Action, fs.Args())
	}
	if err := checkLogLevel(opts.LogLevel); err != nil {
		return nil, err
	}
	if opts.DB != dbPostgres {
		return nil, fmt.Errorf("schema %s: --db %q: want --db postgres (SQLite needs no set-up: the server makes its schema at its first start)", opts.Action, opts.DB)
	}
	if err := opts.Postgres.check(); err != nil {
		return nil, err
	}
	return &opts, nil
}

// schemaResult is what one run did to one database, for the report line.
type schemaResult struct {
	Database      string
	Created       bool   // the database did not exist before
	Before, After string // schema versions; Before is "" when the database had none
}

func (r schemaResult) String() string {
	state := "exists"
	if r.Created {
		state = "created"
	}
	switch {
	case r.Before == r.After:
		return fmt.Sprintf("%s: database %s, schema %s, up to date", r.Database, state, r.After)
	case r.Before == "":
		return fmt.Sprintf("%s: database %s, schema set up at %s", r.Database, state, r.After)
	default:
		return fmt.Sprintf("%s: database %s, schema updated %s -> %s", r.Database, state, r.Before, r.After)
	}
}

// runSchema sets up or updates both databases, printing a line for each to out.
func runSchema(opts *schemaOptions, out io.Writer) error {
	logger, _, err := newLogger(&options{LogLevel: opts.LogLevel})
	if err != nil {
		return err
	}
	for _, db := range []struct{ name, schema, want string }{
		{opts.Postgres.Database, schemaMain, pgschema.Version},
		{opts.Postgres.VisibilityDatabase, schemaVisibility, pgschema.VisibilityVersion},
	} {
		res, err := applySchema(opts, db.name, db.schema, logger)
		if err != nil {
			return fmt.Errorf("%s: %w", opts.Postgres.describe(db.name), err)
		}
		fmt.Fprintln(out, res)
		if res.After != db.want {
			return fmt.Errorf("%s: schema %s after the update, but this server needs %s", opts.Postgres.describe(db.name), res.After, db.want)
		}
	}
	return nil
}

// applySchema does the temporal-sql-tool's steps for one database through its Go API: create
// the database (setup only), setup-schema -v 0.0 (the version tables; setup only, once), then
// update-schema with the embedded versioned directory, which applies only the versions newer
// than the database's.
func applySchema(opts *schemaOptions, dbName, schemaName string, logger log.Logger) (schemaResult, error) {
	res := schemaResult{Database: dbName}
	cfg := opts.Postgres.sqlConfig(dbName)

	exists, err := databaseExists(opts, dbName)
	if err != nil {
		return res, err
	}
	if !exists {
		if opts.Action != "setup" {
			return res, errors.New("the database does not exist: create it and its schema with `pigwf-temporal schema setup`")
		}
		admin := *opts.Postgres.sqlConfig(dbName) // DoCreateDatabase points its copy at the maintenance database
		if err := sqltool.DoCreateDatabase(&admin, opts.Postgres.MaintenanceDatabase, logger); err != nil {
			return res, fmt.Errorf("creating the database (connected to %s; the user needs CREATEDB, or create it beforehand owned by %s): %w",
				opts.Postgres.MaintenanceDatabase, opts.Postgres.User, err)
		}
		res.Created = true
	}

	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return res, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()

	res.Before, err = schemaVersion(conn)
	if err != nil {
		return res, err
	}
	if res.Before == "" {
		if opts.Action != "setup" {
			return res, errors.New("the database has no Temporal schema: set it up with `pigwf-temporal schema setup`")
		}
		if err := toolschema.NewSetupSchemaTask(conn, &toolschema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
			return res, fmt.Errorf("setting up the schema version tables: %w", err)
		}
	}
	if err := toolschema.NewUpdateSchemaTask(conn, &toolschema.UpdateConfig{SchemaName: schemaName}, logger).Run(); err != nil {
		return res, fmt.Errorf("updating the schema: %w", err)
	}
	res.After, err = schemaVersion(conn)
	return res, err
}

// databaseExists connects to dbName as the server would, and tells "no such database" apart
// from every other failure (which is returned).
func databaseExists(opts *schemaOptions, dbName string) (bool, error) {
	sess, err := session.NewSession(opts.Postgres.sqlConfig(dbName), &driver.PQDriver{}, resolver.NewNoopResolver())
	if pgCode(err) == pgCodeNoDatabase {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("connecting: %w", err)
	}
	sess.Close()
	return true, nil
}

// schemaVersion is the database's schema version, "" when the SQL tool never set one.
func schemaVersion(conn *sqltool.Connection) (string, error) {
	v, err := conn.ReadSchemaVersion()
	switch {
	case pgCode(err) == pgCodeNoTable:
		return "", nil
	case errors.Is(err, sql.ErrNoRows): // the tables, but no version: a set-up that stopped half-way
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}

// pgCode is the SQLSTATE of a PostgreSQL error in err's chain, "" for any other error.
func pgCode(err error) string {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return string(pqErr.Code)
	}
	return ""
}
