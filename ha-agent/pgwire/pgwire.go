// Package pgwire is a minimal PostgreSQL frontend/backend protocol client
// for the HA agent: simple queries over a unix socket (or TCP) with trust
// or peer authentication, nothing else.
//
// Why not pgx: the agent only runs a handful of fixed catalog queries as
// the postgres OS user over the local socket (peer authentication), and
// pgx is not a dependency of this module. This client keeps the agent
// free of new modules; it refuses any authentication that needs a
// password, so a password never has to be handled here.
package pgwire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Error is an ErrorResponse from the server.
type Error struct {
	Severity string
	Code     string // SQLSTATE
	Message  string
	Detail   string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (SQLSTATE %s)", e.Severity, e.Message, e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// SQLState returns the SQLSTATE of err if it is a server error, else "".
func SQLState(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Result is one statement's result: column names, rows (nil = NULL).
type Result struct {
	Columns []string
	Rows    [][]*string
	Tag     string
}

// Conn is one connection. It is not safe for concurrent use.
type Conn struct {
	nc  net.Conn
	r   *bufio.Reader
	pid uint32
}

// Config says where and as whom to connect.
type Config struct {
	// Network and Address: "unix" and "<socket_dir>/.s.PGSQL.<port>", or
	// "tcp" and "host:port".
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

// Connect opens a connection and completes the startup handshake.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, cfg.Network, cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.Address, err)
	}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 8192)}
	if err := c.startup(ctx, cfg); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s as %s: %w", cfg.Address, cfg.User, err)
	}
	return c, nil
}

func (c *Conn) setDeadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	} else {
		_ = c.nc.SetDeadline(time.Time{})
	}
}

func (c *Conn) startup(ctx context.Context, cfg Config) error {
	c.setDeadline(ctx)
	var body []byte
	body = binary.BigEndian.AppendUint32(body, 196608) // protocol 3.0
	params := map[string]string{"user": cfg.User, "database": cfg.Database}
	if cfg.ApplicationName != "" {
		params["application_name"] = cfg.ApplicationName
	}
	for k, v := range cfg.Options {
		params[k] = v
	}
	for k, v := range params {
		if v == "" {
			continue
		}
		body = append(append(body, k...), 0)
		body = append(append(body, v...), 0)
	}
	body = append(body, 0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	if _, err := c.nc.Write(append(msg, body...)); err != nil {
		return fmt.Errorf("send startup: %w", err)
	}
	for {
		t, payload, err := c.readMsg()
		if err != nil {
			return err
		}
		switch t {
		case 'R':
			if len(payload) < 4 {
				return errors.New("short authentication message")
			}
			if code := binary.BigEndian.Uint32(payload); code != 0 {
				return fmt.Errorf("server asks for authentication method %d; this client supports only trust/peer (no passwords)", code)
			}
		case 'K':
			if len(payload) >= 4 {
				c.pid = binary.BigEndian.Uint32(payload)
			}
		case 'S', 'N':
		case 'E':
			return parseError(payload)
		case 'Z':
			return nil
		default:
			return fmt.Errorf("unexpected message %q during startup", t)
		}
	}
}

// BackendPID is the server process serving this connection.
func (c *Conn) BackendPID() uint32 { return c.pid }

func (c *Conn) readMsg() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read from server: %w", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
	if n < 0 || n > 1<<30 {
		return 0, nil, fmt.Errorf("bad message length %d", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return 0, nil, fmt.Errorf("read from server: %w", err)
	}
	return hdr[0], payload, nil
}

func parseError(p []byte) error {
	e := &Error{}
	for len(p) > 0 && p[0] != 0 {
		field := p[0]
		end := 1
		for end < len(p) && p[end] != 0 {
			end++
		}
		val := string(p[1:end])
		switch field {
		case 'S':
			e.Severity = val
		case 'C':
			e.Code = val
		case 'M':
			e.Message = val
		case 'D':
			e.Detail = val
		}
		if end >= len(p) {
			break
		}
		p = p[end+1:]
	}
	return e
}

// Query runs sql with the simple query protocol (one or more statements
// separated by ';') and returns one Result per statement. A server error
// is returned as *Error after the connection is ready again; a transport
// error leaves the connection unusable.
func (c *Conn) Query(ctx context.Context, sql string) ([]Result, error) {
	c.setDeadline(ctx)
	msg := []byte{'Q'}
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(sql)+5))
	msg = append(append(msg, sql...), 0)
	if _, err := c.nc.Write(msg); err != nil {
		return nil, fmt.Errorf("send query: %w", err)
	}
	var results []Result
	var cur *Result
	var qerr error
	for {
		t, p, err := c.readMsg()
		if err != nil {
			return nil, err
		}
		switch t {
		case 'T':
			results = append(results, Result{})
			cur = &results[len(results)-1]
			if len(p) < 2 {
				return nil, errors.New("short row description")
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			for range n {
				end := 0
				for end < len(p) && p[end] != 0 {
					end++
				}
				cur.Columns = append(cur.Columns, string(p[:end]))
				if end+19 > len(p) {
					return nil, errors.New("short row description field")
				}
				p = p[end+19:]
			}
		case 'D':
			if cur == nil {
				return nil, errors.New("data row without row description")
			}
			if len(p) < 2 {
				return nil, errors.New("short data row")
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			row := make([]*string, n)
			for i := range n {
				if len(p) < 4 {
					return nil, errors.New("short data row value")
				}
				l := int32(binary.BigEndian.Uint32(p))
				p = p[4:]
				if l < 0 {
					continue
				}
				if int(l) > len(p) {
					return nil, errors.New("short data row value")
				}
				s := string(p[:l])
				row[i] = &s
				p = p[l:]
			}
			cur.Rows = append(cur.Rows, row)
		case 'C':
			tag := strings.TrimRight(string(p), "\x00")
			if cur == nil {
				results = append(results, Result{})
				cur = &results[len(results)-1]
			}
			cur.Tag = tag
			cur = nil
		case 'I':
			results = append(results, Result{})
			cur = nil
		case 'E':
			qerr = parseError(p)
		case 'N', 'S', 'A':
		case 'Z':
			return results, qerr
		default:
			return nil, fmt.Errorf("unexpected message %q in query response", t)
		}
	}
}

// Exec runs sql and discards the rows.
func (c *Conn) Exec(ctx context.Context, sql string) error {
	_, err := c.Query(ctx, sql)
	return err
}

// Close sends Terminate and closes the socket.
func (c *Conn) Close() error {
	_ = c.nc.SetDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.nc.Write([]byte{'X', 0, 0, 0, 4})
	return c.nc.Close()
}

// QuoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// QuoteIdent quotes s as an SQL identifier.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
