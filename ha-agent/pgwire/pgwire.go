// Package pgwire is the agent's small SQL surface over pgx's pgconn: simple-protocol queries
// (several statements at once, text results) on the local socket with peer authentication, or
// over TCP in tests. It keeps the agent's code independent of pgx's richer API and gives one
// place for connection settings (no TLS on the local socket, no environment variables read).
package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pigwf/pigwf/internal/libpq"
)

// Error is a server error: SQLSTATE, severity, message.
type Error = pgconn.PgError

// SQLState returns the SQLSTATE of a server error, or "" for other errors.
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Result is one statement's outcome; a NULL is a nil pointer.
type Result struct {
	Columns []string
	Rows    [][]*string
	Tag     string
}

// Conn is one connection. It is not safe for concurrent use.
type Conn struct{ pc *pgconn.PgConn }

// Config says where and as whom to connect.
type Config struct {
	// Network and Address: "unix" and "<socket_dir>/.s.PGSQL.<port>", or "tcp" and "host:port".
	Network, Address string
	User, Database   string
	ApplicationName  string
	// Options are extra startup parameters (e.g. "statement_timeout": "0").
	Options map[string]string
}

// SocketPath is the unix socket of a server on port in dir.
func SocketPath(dir string, port int) string {
	return fmt.Sprintf("%s/.s.PGSQL.%d", strings.TrimRight(dir, "/"), port)
}

// connString builds a keyword/value connection string that leaves nothing to the environment.
func (cfg Config) connString() (string, error) {
	var host, port string
	switch cfg.Network {
	case "unix":
		host = filepath.Dir(cfg.Address) // pgconn takes the socket directory as the host
		port = strings.TrimPrefix(filepath.Base(cfg.Address), ".s.PGSQL.")
	case "tcp":
		var err error
		if host, port, err = net.SplitHostPort(cfg.Address); err != nil {
			return "", fmt.Errorf("bad address %q: %w", cfg.Address, err)
		}
	default:
		return "", fmt.Errorf("unknown network %q", cfg.Network)
	}
	// The local socket, or loopback TCP in tests: no TLS to set up.
	ps := []libpq.Param{libpq.P("host", host), libpq.P("port", port), libpq.P("user", cfg.User),
		libpq.P("dbname", cfg.Database), libpq.P("sslmode", "disable"), libpq.P("connect_timeout", "5")}
	if cfg.ApplicationName != "" {
		ps = append(ps, libpq.P("application_name", cfg.ApplicationName))
	}
	keys := make([]string, 0, len(cfg.Options))
	for k := range cfg.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var opts []string
	for _, k := range keys {
		opts = append(opts, fmt.Sprintf("-c %s=%s", k, cfg.Options[k]))
	}
	if len(opts) > 0 {
		ps = append(ps, libpq.P("options", strings.Join(opts, " ")))
	}
	return libpq.Conninfo(ps...), nil
}

// Connect opens a connection. Only password-less methods are expected (peer on the socket,
// trust in tests): the agent never holds a password.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cs, err := cfg.connString()
	if err != nil {
		return nil, err
	}
	pcfg, err := pgconn.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.Address, err)
	}
	pc, err := pgconn.ConnectConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s as %s: %w", cfg.Address, cfg.User, err)
	}
	return &Conn{pc: pc}, nil
}

// BackendPID is the server process serving this connection.
func (c *Conn) BackendPID() uint32 { return c.pc.PID() }

// Query runs sql (one or more statements separated by ';') in the simple protocol and returns
// one Result per statement, values as text.
func (c *Conn) Query(ctx context.Context, sql string) ([]Result, error) {
	res, err := c.pc.Exec(ctx, sql).ReadAll()
	out := make([]Result, 0, len(res))
	for _, r := range res {
		if r.Err != nil && err == nil {
			err = r.Err
		}
		cur := Result{Tag: r.CommandTag.String()}
		for _, f := range r.FieldDescriptions {
			cur.Columns = append(cur.Columns, f.Name)
		}
		for _, row := range r.Rows {
			vals := make([]*string, len(row))
			for i, v := range row {
				if v != nil {
					s := string(v)
					vals[i] = &s
				}
			}
			cur.Rows = append(cur.Rows, vals)
		}
		out = append(out, cur)
	}
	return out, err
}

// Exec runs sql and discards the rows.
func (c *Conn) Exec(ctx context.Context, sql string) error {
	_, err := c.Query(ctx, sql)
	return err
}

// Close ends the session.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 200e6)
	defer cancel()
	return c.pc.Close(ctx)
}

// QuoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// QuoteIdent quotes s as an SQL identifier.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
