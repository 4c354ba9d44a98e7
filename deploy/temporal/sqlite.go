package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// sqliteStore names the one SQLite data store used for both the default
// (execution) store and visibility.
const sqliteStore = "sqlite-default"

// sqliteConfig is the SQLite store: the --db-filename file, or a database in memory.
func sqliteConfig(opts *options) *config.SQL {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DBFile == "" {
		// A shared-cache in-memory database; the name only has to be unique
		// within this process.
		sqlCfg.DatabaseName = strconv.Itoa(rand.IntN(1e9))
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		sqlCfg.DatabaseName = opts.DBFile
		sqlCfg.ConnectAttributes = map[string]string{"mode": "rwc"}
	}
	return sqlCfg
}

// lockDatabase takes an exclusive lock next to the database file, so a
// second instance started on the same file (say on another --port) fails at
// once instead of corrupting it. The lock goes away with the process.
func lockDatabase(dbFile string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(dbFile), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for database file: %w", err)
	}
	path := dbFile + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("database %s is in use by another pigwf-temporal (lock %s): %w", dbFile, path, err)
	}
	return f, nil
}

// prepareDatabase creates the SQLite schema when the file is new and
// registers the namespaces (a no-op for those that exist). Doing this before
// the server starts means the namespaces are usable at once, without waiting
// for the namespace cache to refresh. New namespaces get the custom search
// attributes right away; existing ones are completed by bootstrap.
func prepareDatabase(opts *options, sqlCfg *config.SQL) error {
	if opts.DBFile != "" {
		_, err := os.Stat(opts.DBFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
				return fmt.Errorf("creating schema in %s: %w", opts.DBFile, err)
			}
		case err != nil:
			return fmt.Errorf("checking database file: %w", err)
		}
	}

	attrs := make(map[string]enumspb.IndexedValueType, len(opts.SearchAttributes))
	for _, sa := range opts.SearchAttributes {
		attrs[sa.Name] = sa.Type
	}
	nsConfigs := make([]*sqliteschema.NamespaceConfig, 0, len(opts.Namespaces))
	for _, ns := range opts.Namespaces {
		c, err := sqliteschema.NewNamespaceConfig(clusterName, ns, false, attrs)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		nsConfigs = append(nsConfigs, c)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, nsConfigs...); err != nil {
		return fmt.Errorf("creating namespaces: %w", err)
	}
	return nil
}
