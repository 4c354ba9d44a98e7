package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pigwf/pigwf/internal/libpq"
)

// DB says how clients reach the cluster's PostgreSQL: the same user, password and database on
// every node.
type DB struct {
	User     string
	Password string
	Database string
	Port     int
	// Device is the lab's bridge: connections are bound to it, so that if the lab's network
	// vanished they fail instead of leaving the machine by the default route.
	Device string
}

// labDialer dials only through device (SO_BINDTODEVICE) when it is set: the suite's traffic
// stays on the lab's bridge whatever happens to the routes.
func labDialer(device string) *net.Dialer {
	d := &net.Dialer{}
	if device != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, device)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("while binding a socket to the lab bridge %s: %w", device, serr)
			}
			return nil
		}
	}
	return d
}

// syncCancelNotice is the start of the WARNING PostgreSQL sends when a commit's wait for
// synchronous replication is cancelled: the transaction committed LOCALLY only, and the command
// still reports success. Such a success must not count as acknowledged.
const syncCancelNotice = "canceling wait for synchronous replication"

// errSyncCancelled marks a command that returned success together with syncCancelNotice.
var errSyncCancelled = errors.New("success carried the notice \"" + syncCancelNotice + "\": committed locally only, not acknowledged")

// nodeConn is one client connection to one node, used by one goroutine at a time (callers
// serialise with the busy flag or their own loop). It reconnects on the next use after any
// error that may have left the connection unusable.
type nodeConn struct {
	db      DB
	addr    string
	appName string
	connTO  time.Duration
	// resolve: addr is a proxy (an HAProxy service port), so each new connection asks
	// PostgreSQL which server it reached (inet_server_addr); a proxied connection stays on its
	// server for its life.
	resolve bool

	mu     sync.Mutex // guards conn, opened and server
	conn   *pgx.Conn
	opened time.Time // when conn was established: a backend older than a fault may outlive it
	server string    // with resolve: the server's address the connection reached
	// notices counts syncCancelNotice warnings received on this connection; a command compares
	// it before and after.
	notices atomic.Int64
}

func newNodeConn(db DB, addr, appName string, connectTimeout time.Duration) *nodeConn {
	return &nodeConn{db: db, addr: addr, appName: appName, connTO: connectTimeout}
}

func (c *nodeConn) connString() string {
	return libpq.Conninfo(libpq.P("host", c.addr), libpq.P("port", strconv.Itoa(c.db.Port)), libpq.P("user", c.db.User),
		libpq.P("password", c.db.Password), libpq.P("dbname", c.db.Database), libpq.P("sslmode", "disable"),
		libpq.P("application_name", c.appName))
}

// get returns an open connection, dialling within the connect timeout when needed.
func (c *nodeConn) get(ctx context.Context) (*pgx.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.conn.IsClosed() {
		return c.conn, nil
	}
	cfg, err := pgx.ParseConfig(c.connString())
	if err != nil {
		return nil, fmt.Errorf("while configuring a connection to %s: %w", c.addr, err)
	}
	// no prepare round trip, no statement cache to go stale across failovers
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.DialFunc = labDialer(c.db.Device).DialContext
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, syncCancelNotice) {
			c.notices.Add(1)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, c.connTO)
	defer cancel()
	conn, err := pgx.ConnectConfig(dctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", c.addr, err)
	}
	opened := time.Now()
	server := ""
	if c.resolve {
		if err := conn.QueryRow(dctx, "SELECT host(inet_server_addr())").Scan(&server); err != nil {
			_ = conn.Close(context.Background())
			return nil, fmt.Errorf("while asking %s which server it reached: %w", c.addr, err)
		}
	}
	c.conn, c.opened, c.server = conn, opened, server
	return conn, nil
}

// serverAddr is the address of the server the current connection reached (resolve only).
func (c *nodeConn) serverAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

// drop closes the connection (a broken or timed-out one) so the next use dials again.
func (c *nodeConn) drop() {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = conn.Close(ctx)
		cancel()
	}
}

// exec runs one autocommit statement with a timeout. It returns nil only when PostgreSQL
// reported success, no error, within the timeout, and sent no syncCancelNotice: the
// definition of an ACKNOWLEDGED write.
func (c *nodeConn) exec(ctx context.Context, timeout time.Duration, sql string, args ...any) error {
	_, err := c.execOn(ctx, timeout, sql, args...)
	return err
}

// execOn is exec that also returns when the connection it used was established.
func (c *nodeConn) execOn(ctx context.Context, timeout time.Duration, sql string, args ...any) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := c.get(ctx)
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	opened := c.opened
	c.mu.Unlock()
	before := c.notices.Load()
	_, err = conn.Exec(ctx, sql, args...)
	if err != nil {
		if !keepsConn(err) {
			c.drop()
		}
		return opened, fmt.Errorf("on %s: %w", c.addr, err)
	}
	if c.notices.Load() != before {
		return opened, fmt.Errorf("on %s: %w", c.addr, errSyncCancelled)
	}
	return opened, nil
}

// query runs a read query and hands each row to scan.
func (c *nodeConn) query(ctx context.Context, timeout time.Duration, scan func(pgx.Rows) error, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		if !keepsConn(err) {
			c.drop()
		}
		return fmt.Errorf("on %s: %w", c.addr, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("on %s: %w", c.addr, err)
		}
	}
	if err := rows.Err(); err != nil {
		if !keepsConn(err) {
			c.drop()
		}
		return fmt.Errorf("on %s: %w", c.addr, err)
	}
	return nil
}

// keepsConn says whether the connection is still good after err: a plain SQL error reported by
// the server (read-only transaction, unique violation) is; a FATAL, a network error or a
// timeout is not.
func keepsConn(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Severity == "ERROR"
	}
	return false
}

// pgxRows is the row cursor handed to query's scan callback.
type pgxRows = pgx.Rows
