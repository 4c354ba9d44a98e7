package sshrun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

// After our keys were offered, only a broken connection is worth a retry; anything else the
// server answered is a refusal (*AuthError, permanent).
func TestBrokenConnection(t *testing.T) {
	for i, c := range []struct {
		err    error
		broken bool
	}{
		{fmt.Errorf("ssh: handshake failed: %w", io.EOF), true},
		{fmt.Errorf("ssh: handshake failed: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), true},
		{fmt.Errorf("ssh: handshake failed: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("ssh: handshake failed: %w", errors.New("ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain")), false},
		{errors.New("ssh: disconnect, reason 2: Too many authentication failures"), false},
	} {
		if got := brokenConnection(c.err); got != c.broken {
			t.Errorf("%d. brokenConnection(%v) = %v, want %v", i+1, c.err, got, c.broken)
		}
	}
}
