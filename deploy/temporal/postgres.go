package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/server/common/auth"
	"go.temporal.io/server/common/config"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
)

// envPGPassword is where the PostgreSQL password comes from when --pg-password-file is not
// given, as libpq reads it: never from a flag value, which every user of the machine sees in ps.
const envPGPassword = "PGPASSWORD"

// PostgreSQL's sslmode values this server accepts. verify-ca and verify-full need a CA
// (--pg-ca, or the system's roots); require encrypts without checking who answers.
var pgSSLModes = []string{"disable", "require", "verify-ca", "verify-full"}

var (
	// pgIdentifier is the rule for a user or database name: it ends up unquoted in the
	// connection URL and inside "CREATE DATABASE" by the server's own tool, so only plain SQL
	// identifiers (no quotes, spaces, dots, slashes or '@') pass.
	pgIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	// hostLabel is one label of a DNS name.
	hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// pgOptions is the connection to the PostgreSQL that holds Temporal's state: one database for
// the default (execution) store and one for visibility, on one server, as one user.
type pgOptions struct {
	Host                string
	Port                int
	User                string
	PasswordFile        string // empty: $PGPASSWORD, or no password (certificate or trust auth)
	Database            string
	VisibilityDatabase  string
	MaintenanceDatabase string // the database `schema setup` connects to when it creates the others
	SSLMode             string
	CAFile              string // the CA the server's certificate must chain to
	CertFile, KeyFile   string // a client certificate, for PostgreSQL's cert authentication

	password string // read by check, from PasswordFile or $PGPASSWORD; never logged
}

func addPostgresFlags(fs *flag.FlagSet, p *pgOptions) {
	fs.StringVar(&p.Host, "pg-host", "127.0.0.1", "PostgreSQL `host` name or IP address")
	fs.IntVar(&p.Port, "pg-port", 5432, "PostgreSQL `port`")
	fs.StringVar(&p.User, "pg-user", "temporal", "PostgreSQL `user`")
	fs.StringVar(&p.PasswordFile, "pg-password-file", "", "`file` holding the PostgreSQL user's password (default: $"+envPGPassword+"; never a flag value)")
	fs.StringVar(&p.Database, "pg-database", "temporal", "`database` of the default (execution) store")
	fs.StringVar(&p.VisibilityDatabase, "pg-visibility-database", "temporal_visibility", "`database` of the visibility store (run lists and search attributes)")
	fs.StringVar(&p.MaintenanceDatabase, "pg-maintenance-database", "postgres", "`database` that `schema setup` connects to when it creates the two databases")
	fs.StringVar(&p.SSLMode, "pg-sslmode", "verify-full", "TLS to PostgreSQL: "+strings.Join(pgSSLModes, ", ")+" (libpq's meanings)")
	fs.StringVar(&p.CAFile, "pg-ca", "", "CA certificate `file` (PEM) PostgreSQL's server certificate must chain to (default: the system's roots)")
	fs.StringVar(&p.CertFile, "pg-cert", "", "client certificate `file` (PEM) for PostgreSQL's cert authentication")
	fs.StringVar(&p.KeyFile, "pg-key", "", "the client certificate's private key `file` (PEM)")
}

// check validates every value against a strict rule, naming the flag and the fix, expands ~ in
// the paths and reads the password.
func (p *pgOptions) check() error {
	if err := checkHost(p.Host); err != nil {
		return fmt.Errorf("--pg-host %q: %w", p.Host, err)
	}
	if p.Port <= 0 || p.Port > 65535 {
		return fmt.Errorf("--pg-port %d out of range: want 1-65535", p.Port)
	}
	for _, n := range []struct{ flag, value string }{
		{"--pg-user", p.User}, {"--pg-database", p.Database},
		{"--pg-visibility-database", p.VisibilityDatabase}, {"--pg-maintenance-database", p.MaintenanceDatabase},
	} {
		if !pgIdentifier.MatchString(n.value) {
			return fmt.Errorf("%s %q: want a plain name of letters, digits and '_', starting with a letter or '_', at most 63 characters", n.flag, n.value)
		}
	}
	if p.Database == p.VisibilityDatabase {
		return fmt.Errorf("--pg-database and --pg-visibility-database are both %q: give visibility a database of its own", p.Database)
	}
	if !slices.Contains(pgSSLModes, p.SSLMode) {
		return fmt.Errorf("--pg-sslmode %q: want one of %s", p.SSLMode, strings.Join(pgSSLModes, ", "))
	}
	if (p.CertFile == "") != (p.KeyFile == "") {
		return errors.New("--pg-cert and --pg-key go together: give both or neither")
	}
	if p.SSLMode == "disable" && (p.CAFile != "" || p.CertFile != "") {
		return errors.New("--pg-sslmode disable with --pg-ca or --pg-cert: the files would be ignored; drop them or choose verify-full")
	}
	for _, f := range []struct {
		flag string
		path *string
	}{{"--pg-ca", &p.CAFile}, {"--pg-cert", &p.CertFile}, {"--pg-key", &p.KeyFile}, {"--pg-password-file", &p.PasswordFile}} {
		if *f.path == "" {
			continue
		}
		path, err := expandHome(*f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.path = path
	}
	return p.readPassword()
}

// readPassword takes the password from --pg-password-file (its first line), else $PGPASSWORD.
func (p *pgOptions) readPassword() error {
	if p.PasswordFile == "" {
		p.password = os.Getenv(envPGPassword)
		return nil
	}
	data, err := os.ReadFile(p.PasswordFile)
	if err != nil {
		return fmt.Errorf("--pg-password-file: %w", err)
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return fmt.Errorf("--pg-password-file %s: the first line is empty; write the password there", p.PasswordFile)
	}
	p.password = pw
	return nil
}

// checkHost accepts an IP address or a DNS name.
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 {
		return errors.New("want an IP address or a host name")
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabel.MatchString(l) {
			return errors.New("want an IP address or a host name (letters, digits, '-' and '.')")
		}
	}
	return nil
}

// sqlConfig is the server's connection to database db: the "postgres12" plugin (lib/pq), with
// the TLS settings spelled out as sslmode, so the plugin's own defaulting never weakens them.
func (p *pgOptions) sqlConfig(db string) *config.SQL {
	c := &config.SQL{
		PluginName:        pgplugin.PluginName,
		ConnectAddr:       net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		ConnectProtocol:   "tcp",
		User:              p.User,
		Password:          p.password,
		DatabaseName:      db,
		ConnectAttributes: map[string]string{"sslmode": p.SSLMode},
		// The values of Temporal's own docker-compose set-up for PostgreSQL; a connection is
		// renewed hourly so a PostgreSQL failover or password rotation is picked up.
		MaxConns:        20,
		MaxIdleConns:    20,
		MaxConnLifetime: time.Hour,
	}
	if p.SSLMode != "disable" {
		c.TLS = &auth.TLS{
			Enabled:                true,
			CaFile:                 p.CAFile,
			CertFile:               p.CertFile,
			KeyFile:                p.KeyFile,
			EnableHostVerification: p.SSLMode == "verify-full",
		}
	}
	return c
}

// describe names the databases for messages: never the password.
func (p *pgOptions) describe(db string) string {
	return fmt.Sprintf("database %s on %s as %s", db, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), p.User)
}
