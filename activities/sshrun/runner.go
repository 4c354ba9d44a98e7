// Package sshrun runs commands on remote hosts over SSH for pigwf's activities.
//
// One pooled connection per host is reused by every activity and re-dialled when it breaks.
// Host keys are always checked against a known_hosts file; an unknown or changed key is a
// permanent error naming the host and the file. Commands run as the SSH user or, through sudo,
// as another user; a deadline from the context is enforced on both ends (remote `timeout`, local
// cancellation that signals and closes the session). Secrets travel on stdin, never on the
// command line, and the runner never logs a command's stdin.
package sshrun

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target says how to reach one host.
type Target struct {
	Host       string // address or name to dial
	Port       int    // 22 when 0
	User       string // SSH login user
	KeyFile    string // private key; empty: ssh-agent, then ~/.ssh/id_ed25519, ~/.ssh/id_rsa
	KnownHosts string // known_hosts file; empty: ~/.ssh/known_hosts
}

func (t Target) port() int {
	if t.Port == 0 {
		return 22
	}
	return t.Port
}

// Addr is host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.port())) }

func (t Target) poolKey() string {
	return t.User + "@" + t.Addr() + "|" + t.KeyFile + "|" + t.KnownHosts
}

// Command is one remote command.
type Command struct {
	Script  string        // run by /bin/sh -c; must never contain secrets (it is visible in ps)
	AsUser  string        // run as this user through sudo; "" runs as the SSH user
	Stdin   []byte        // the place for secrets
	Timeout time.Duration // optional, in addition to the context's deadline
}

// Result is what a finished command reported.
type Result struct {
	ExitStatus int
	Stdout     string
	Stderr     string
	Truncated  bool // output exceeded the runner's limit and was cut in the middle
	Duration   time.Duration
}

// Err turns a non-zero exit status into an error carrying the tail of stderr.
func (r Result) Err() error {
	if r.ExitStatus == 0 {
		return nil
	}
	return &ExitError{Status: r.ExitStatus, Stderr: strings.TrimSpace(tail(r.Stderr, 2000))}
}

// Options tune a Runner.
type Options struct {
	DialTimeout       time.Duration // default 10 s
	KeepAliveInterval time.Duration // default 15 s; a dead connection is dropped and re-dialled
	MaxOutput         int           // bytes kept per stream, default 256 KiB
	Logger            *slog.Logger
}

// Runner holds the connection pool. It is safe for concurrent use.
type Runner struct {
	opts  Options
	log   *slog.Logger
	mu    sync.Mutex
	conns map[string]*pooledConn
	dials int // how many connections were dialled, for tests and metrics
}

// New makes a Runner.
func New(opts Options) *Runner {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.KeepAliveInterval == 0 {
		opts.KeepAliveInterval = 15 * time.Second
	}
	if opts.MaxOutput == 0 {
		opts.MaxOutput = 256 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runner{opts: opts, log: opts.Logger, conns: map[string]*pooledConn{}}
}
