package sshrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

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
