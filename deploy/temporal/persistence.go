package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/serialization"
	persistencesql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/driver"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/session"
	"go.temporal.io/server/common/resolver"
)

// The PostgreSQL data stores: execution state and visibility in databases of their own.
const (
	pgStore           = "postgres-default"
	pgVisibilityStore = "postgres-visibility"
)

// serverLockKey is the PostgreSQL advisory lock a pigwf-temporal holds on its default store's
// database ("pigwftmp" in ASCII). Every service of this process has the whole shard range
// (static membership), so a second process on the same database would take the shards back
// and forth; the lock refuses it, as the lock file does for SQLite.
const serverLockKey int64 = 0x706967776674_6d70

// dbCheckTimeout bounds each check of the database before the server starts.
const dbCheckTimeout = 30 * time.Second

// persistenceConfig is the server's persistence section for --db.
func persistenceConfig(opts *options) config.Persistence {
	if opts.DB == dbPostgres {
		return config.Persistence{
			DefaultStore:     pgStore,
			VisibilityStore:  pgVisibilityStore,
			NumHistoryShards: opts.NumHistoryShards,
			DataStores: map[string]config.DataStore{
				pgStore:           {SQL: opts.Postgres.sqlConfig(opts.Postgres.Database)},
				pgVisibilityStore: {SQL: opts.Postgres.sqlConfig(opts.Postgres.VisibilityDatabase)},
			},
		}
	}
	return config.Persistence{
		DefaultStore:     sqliteStore,
		VisibilityStore:  sqliteStore,
		NumHistoryShards: opts.NumHistoryShards,
		DataStores:       map[string]config.DataStore{sqliteStore: {SQL: sqliteConfig(opts)}},
	}
}

// prepareStore makes the store ready for this server before it starts: it takes the store's
// lock, creates the SQLite schema and namespaces or checks that PostgreSQL has the schema this
// server version needs, and settles the shard count with what the database was set up with.
func (s *devServer) prepareStore(p *config.Persistence) error {
	main := p.DataStores[p.DefaultStore].SQL
	switch s.opts.DB {
	case dbPostgres:
		// The schema first: a database that is missing or was never set up fails here, with
		// the command that fixes it.
		if err := persistencesql.VerifyCompatibleVersion(*p, resolver.NewNoopResolver(), s.logger); err != nil {
			return fmt.Errorf("%w; set the schema up with `pigwf-temporal schema setup --db postgres` (a new database) or `pigwf-temporal schema update --db postgres` (after upgrading the server), with the same --pg-* flags", err)
		}
		lock, err := lockPostgres(main)
		if err != nil {
			return fmt.Errorf("%s: %w", s.opts.Postgres.describe(main.DatabaseName), err)
		}
		s.dbLock = lock
	default:
		if s.opts.DBFile == "" {
			return prepareDatabase(s.opts, main) // in memory: nothing was set up before
		}
		lock, err := lockDatabase(s.opts.DBFile)
		if err != nil {
			return err
		}
		s.dbLock = lock
		if err := prepareDatabase(s.opts, main); err != nil {
			return err
		}
	}
	persisted, found, err := persistedShardCount(main, s.logger)
	if err != nil {
		return fmt.Errorf("reading the history shard count the database was set up with: %w", err)
	}
	shards, err := decideShards(persisted, found, p.NumHistoryShards, s.opts.ShardsGiven)
	if err != nil {
		return err
	}
	if shards != p.NumHistoryShards {
		s.logger.Info("using the history shard count the database was set up with",
			tag.NewInt32("shards", shards), tag.NewInt32("default", p.NumHistoryShards))
		p.NumHistoryShards = shards
	}
	return nil
}

// ShardCountError is a --num-history-shards that differs from the count the database was set
// up with. Temporal maps every workflow to a shard by its ID modulo the count, so the count can
// never change for a database; the server itself would ignore the flag with a warning.
type ShardCountError struct{ Persisted, Given int32 }

func (e *ShardCountError) Error() string {
	return fmt.Sprintf("--num-history-shards %d: this database was set up with %d history shards, and the count is fixed for a database's life; "+
		"give --num-history-shards %d (or leave it out), or set up a new database for %d", e.Given, e.Persisted, e.Persisted, e.Given)
}

// decideShards is the shard count to start with: a new database takes want; an existing one
// keeps its count, and a count given on the command line that differs is refused.
func decideShards(persisted int32, found bool, want int32, given bool) (int32, error) {
	switch {
	case !found || persisted == want:
		return want, nil
	case given:
		return 0, &ShardCountError{Persisted: persisted, Given: want}
	default:
		return persisted, nil
	}
}

// persistedShardCount reads the shard count from the cluster's metadata record, which the
// server writes at its first start on a database; found is false before that.
func persistedShardCount(cfg *config.SQL, logger log.Logger) (shards int32, found bool, err error) {
	db, err := persistencesql.NewSQLDB(sqlplugin.DbKindMain, cfg, resolver.NewNoopResolver(), logger, metrics.NoopMetricsHandler)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), dbCheckTimeout)
	defer cancel()
	row, err := db.GetClusterMetadata(ctx, &sqlplugin.ClusterMetadataFilter{ClusterName: clusterName})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	md, err := serialization.NewSerializer().DeserializeClusterMetadata(persistence.NewDataBlob(row.Data, row.DataEncoding))
	if err != nil {
		return 0, false, err
	}
	return md.GetHistoryShardCount(), true, nil
}

// pgLock holds the server's advisory lock on a connection of its own until Close (or the
// process's end, which closes the connection and so releases the lock).
type pgLock struct {
	sess *session.Session
	conn *sql.Conn
}

func (l *pgLock) Close() error {
	err := l.conn.Close()
	l.sess.Close()
	return err
}

// lockPostgres takes serverLockKey on the database of cfg, connecting as the server does (the
// plugin's own session, so the same TLS and password rules apply), or says that another
// server holds it.
func lockPostgres(cfg *config.SQL) (*pgLock, error) {
	sess, err := session.NewSession(cfg, &driver.PQDriver{}, resolver.NewNoopResolver())
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbCheckTimeout)
	defer cancel()
	conn, err := sess.Conn(ctx)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("connecting: %w", err)
	}
	var locked bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", serverLockKey).Scan(&locked); err != nil {
		_ = conn.Close()
		sess.Close()
		return nil, fmt.Errorf("taking the server's advisory lock: %w", err)
	}
	if !locked {
		_ = conn.Close()
		sess.Close()
		return nil, errors.New("another pigwf-temporal runs on this database (it holds the advisory lock): one process serves all history shards here, so a second one is refused; stop the other first")
	}
	return &pgLock{sess: sess, conn: conn}, nil
}
