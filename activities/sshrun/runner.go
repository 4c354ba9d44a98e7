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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
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

// ExitError is a command that ran and failed.
type ExitError struct {
	Status int
	Stderr string
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("exit status %d", e.Status)
	}
	return fmt.Sprintf("exit status %d: %s", e.Status, e.Stderr)
}

// HostKeyError means the host's key is unknown or differs from known_hosts. Retrying cannot help.
type HostKeyError struct {
	Host, File string
	Changed    bool
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host key of %s does not match %s: the host was reinstalled or someone is intercepting; check it and update %s (ssh-keygen -R %s)",
			e.Host, e.File, e.File, e.Host)
	}
	return fmt.Sprintf("host key of %s is not in %s: add it after checking its fingerprint (ssh-keyscan %s >> %s)", e.Host, e.File, e.Host, e.File)
}

// AuthError means the host refused our credentials. Retrying cannot help.
type AuthError struct {
	Target string
	Err    error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s refused our SSH credentials: %v; check the user and key (ansible_user, ansible_ssh_private_key_file)", e.Target, e.Err)
}
func (e *AuthError) Unwrap() error { return e.Err }

// IsPermanent reports errors that a retry cannot fix.
func IsPermanent(err error) bool {
	var hk *HostKeyError
	var au *AuthError
	var cf *ConfigError
	return errors.As(err, &hk) || errors.As(err, &au) || errors.As(err, &cf)
}

// ConfigError is a local configuration problem (missing key file, unreadable known_hosts).
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

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

type pooledConn struct {
	once   sync.Once
	ready  chan struct{}
	client *ssh.Client
	err    error
	dead   chan struct{}
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

// Dials reports how many SSH connections the runner has opened.
func (r *Runner) Dials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials
}

// Close closes every pooled connection.
func (r *Runner) Close() {
	r.mu.Lock()
	conns := r.conns
	r.conns = map[string]*pooledConn{}
	r.mu.Unlock()
	for _, c := range conns {
		select {
		case <-c.ready:
			if c.client != nil {
				c.client.Close()
			}
		default:
		}
	}
}

// client returns a live pooled client, dialling at most once concurrently per target.
func (r *Runner) client(ctx context.Context, t Target) (*ssh.Client, error) {
	key := t.poolKey()
	r.mu.Lock()
	pc, ok := r.conns[key]
	if ok {
		select {
		case <-pc.dead:
			delete(r.conns, key)
			ok = false
		default:
		}
	}
	if !ok {
		pc = &pooledConn{ready: make(chan struct{}), dead: make(chan struct{})}
		r.conns[key] = pc
		r.dials++
		go func() {
			pc.client, pc.err = r.dial(t)
			if pc.err != nil {
				close(pc.dead)
			} else {
				go r.watch(t, pc)
			}
			close(pc.ready)
		}()
	}
	r.mu.Unlock()
	select {
	case <-pc.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if pc.err != nil {
		r.drop(key, pc)
		return nil, pc.err
	}
	return pc.client, nil
}

// watch notices a dead connection (closed by the peer or silent to keepalives) and marks it.
func (r *Runner) watch(t Target, pc *pooledConn) {
	waitDone := make(chan struct{})
	go func() { pc.client.Wait(); close(waitDone) }()
	tick := time.NewTicker(r.opts.KeepAliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-waitDone:
			pc.once.Do(func() { close(pc.dead) })
			return
		case <-tick.C:
			res := make(chan error, 1)
			go func() { _, _, err := pc.client.SendRequest("keepalive@openssh.com", true, nil); res <- err }()
			select {
			case err := <-res:
				if err == nil {
					continue
				}
			case <-time.After(r.opts.DialTimeout):
			}
			r.log.Warn("ssh connection lost; will re-dial", "target", t.Addr())
			pc.client.Close()
		}
	}
}

func (r *Runner) drop(key string, pc *pooledConn) {
	r.mu.Lock()
	if r.conns[key] == pc {
		delete(r.conns, key)
	}
	r.mu.Unlock()
}

func (r *Runner) dial(t Target) (*ssh.Client, error) {
	khFile := t.KnownHosts
	if khFile == "" {
		home, _ := os.UserHomeDir()
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKeyCB, algos, err := hostKeyCheck(khFile, t)
	if err != nil {
		return nil, err
	}
	auth, err := authMethods(t)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              auth,
		HostKeyCallback:   hostKeyCB,
		HostKeyAlgorithms: algos,
		Timeout:           r.opts.DialTimeout,
	}
	conn, err := net.DialTimeout("tcp", t.Addr(), r.opts.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", t.Addr(), err)
	}
	// The handshake has its own deadline so a host that accepts TCP but never answers cannot hang us.
	_ = conn.SetDeadline(time.Now().Add(r.opts.DialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr(), cfg)
	if err != nil {
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, &AuthError{Target: t.User + "@" + t.Addr(), Err: err}
		}
		return nil, fmt.Errorf("while opening SSH to %s: %w", t.Addr(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// hostKeyCheck builds a strict known_hosts callback and the key algorithms known for the host,
// so the server is asked for a key type we can actually verify.
func hostKeyCheck(file string, t Target) (ssh.HostKeyCallback, []string, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, &ConfigError{Msg: fmt.Sprintf("cannot read known_hosts %s: %v; create it (ssh-keyscan the hosts after checking them) or set pigwf_known_hosts", file, err)}
	}
	// Asking the callback about a throw-away key lists the keys known for this host.
	probe, _ := ssh.NewSignerFromKey(probeKey)
	var algos []string
	addr := &net.TCPAddr{IP: net.ParseIP(t.Host), Port: t.port()}
	var kerr *knownhosts.KeyError
	if err := cb(knownhosts.Normalize(t.Addr()), addr, probe.PublicKey()); errors.As(err, &kerr) {
		seen := map[string]bool{}
		for _, k := range kerr.Want {
			for _, a := range algosFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					algos = append(algos, a)
				}
			}
		}
	}
	strict := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			return &HostKeyError{Host: t.Host, File: file, Changed: len(ke.Want) > 0}
		}
		return err
	}
	return strict, algos, nil
}

func algosFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func authMethods(t Target) ([]ssh.AuthMethod, error) {
	var signers []ssh.Signer
	keyFiles := []string{t.KeyFile}
	if t.KeyFile == "" {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if c, err := net.Dial("unix", sock); err == nil {
				if s, err := agent.NewClient(c).Signers(); err == nil {
					signers = append(signers, s...)
				}
			}
		}
		home, _ := os.UserHomeDir()
		keyFiles = []string{filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, ".ssh", "id_rsa")}
	}
	for _, f := range keyFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			if t.KeyFile != "" {
				return nil, &ConfigError{Msg: fmt.Sprintf("cannot read SSH key %s: %v; fix ansible_ssh_private_key_file", f, err)}
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, &ConfigError{Msg: fmt.Sprintf("SSH key %s has a passphrase: load it into ssh-agent and leave ansible_ssh_private_key_file unset", f)}
			}
			return nil, &ConfigError{Msg: fmt.Sprintf("cannot parse SSH key %s: %v", f, err)}
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		return nil, &ConfigError{Msg: "no SSH credentials: set ansible_ssh_private_key_file or start ssh-agent"}
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, nil
}

// Run runs one command and waits for it. A non-zero exit status is reported in Result, not as
// an error; errors mean the command could not be run or finished (connection, host key, deadline).
func (r *Runner) Run(ctx context.Context, t Target, cmd Command) (Result, error) {
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	var res Result
	var err error
	// One retry on a broken pooled connection: the remote command never started in that case.
	for attempt := 0; attempt < 2; attempt++ {
		var client *ssh.Client
		client, err = r.client(ctx, t)
		if err != nil {
			return res, err
		}
		var sess *ssh.Session
		sess, err = client.NewSession()
		if err != nil {
			r.log.Warn("ssh session failed on pooled connection; re-dialling", "target", t.Addr(), "err", err)
			client.Close()
			r.dropClient(t, client)
			continue
		}
		return r.runSession(ctx, t, sess, cmd)
	}
	return res, fmt.Errorf("while opening a session on %s: %w", t.Addr(), err)
}

func (r *Runner) dropClient(t Target, c *ssh.Client) {
	key := t.poolKey()
	r.mu.Lock()
	if pc := r.conns[key]; pc != nil && pc.client == c {
		delete(r.conns, key)
	}
	r.mu.Unlock()
}

func (r *Runner) runSession(ctx context.Context, t Target, sess *ssh.Session, cmd Command) (Result, error) {
	defer sess.Close()
	stdout := newCapBuffer(r.opts.MaxOutput)
	stderr := newCapBuffer(r.opts.MaxOutput)
	sess.Stdout, sess.Stderr = stdout, stderr
	if cmd.Stdin != nil {
		sess.Stdin = bytes.NewReader(cmd.Stdin)
	}
	token := newToken()
	line := remoteCommandLine(t.User, cmd, deadlineOf(ctx), token)
	start := time.Now()
	if err := sess.Start(line); err != nil {
		return Result{}, fmt.Errorf("while starting a command on %s: %w", t.Addr(), err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		// Stop the remote command. An SSH signal reaches only the login shell, not its children, so
		// kill the command's `timeout` by its token: timeout forwards the signal to its whole
		// process group. If the connection is gone, the remote timeout still ends the command.
		r.killRemote(t, cmd.AsUser, token)
		sess.Close()
		return Result{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)},
			fmt.Errorf("while running a command on %s: %w", t.Addr(), ctx.Err())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Truncated: stdout.cut > 0 || stderr.cut > 0, Duration: time.Since(start)}
	if waitErr != nil {
		var ee *ssh.ExitError
		if errors.As(waitErr, &ee) {
			res.ExitStatus = ee.ExitStatus()
			if ee.Signal() != "" && res.ExitStatus == 0 {
				res.ExitStatus = 128 + 9
			}
			return res, nil
		}
		var missing *ssh.ExitMissingError
		if errors.As(waitErr, &missing) {
			return res, fmt.Errorf("while running a command on %s: the connection closed before the command reported its exit status", t.Addr())
		}
		return res, fmt.Errorf("while running a command on %s: %w", t.Addr(), waitErr)
	}
	return res, nil
}

// killRemote terminates the command tagged with token, on a fresh session of the same connection.
func (r *Runner) killRemote(t Target, asUser, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := r.client(ctx, t)
	if err != nil {
		return
	}
	sess, err := client.NewSession()
	if err != nil {
		return
	}
	defer sess.Close()
	// "[:]" keeps this pkill's own command line from matching the pattern.
	script := "pkill -TERM -f 'pigwf[:]" + token + "'; sleep 1; pkill -KILL -f 'pigwf[:]" + token + "'; true"
	_ = sess.Run(remoteCommandLine(t.User, Command{Script: script, AsUser: asUser}, 10*time.Second, ""))
}

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// maxBudget bounds commands that have no deadline, so a lost connection never leaves one forever.
const maxBudget = 24 * time.Hour

func deadlineOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 0
}

// remoteCommandLine is the exact command line sent to the host: sudo to the target user when
// needed, GNU timeout as the guard and process-group owner, and the script quoted for /bin/sh,
// tagged with token so that it can be found and killed.
func remoteCommandLine(sshUser string, cmd Command, budget time.Duration, token string) string {
	var b strings.Builder
	if cmd.AsUser != "" && cmd.AsUser != sshUser {
		// -n: never prompt (fail instead); -H: the target user's HOME.
		fmt.Fprintf(&b, "sudo -n -H -u %s -- ", ShellQuote(cmd.AsUser))
	}
	if budget <= 0 || budget > maxBudget {
		budget = maxBudget
	}
	fmt.Fprintf(&b, "timeout -k 5 %d /bin/sh -c ", int(budget.Seconds())+1)
	script := cmd.Script
	if token != "" {
		script = "# pigwf:" + token + "\n" + script
	}
	b.WriteString(ShellQuote(script))
	return b.String()
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
