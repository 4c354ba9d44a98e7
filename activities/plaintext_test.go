package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// A run that asks for plain text is refused unless the worker itself allows it; the check runs
// before any connection (no etcd, no SSH).
func TestPlaintextNeedsTheWorkersConsent(t *testing.T) {
	in := AgentInput{DCS: DCSInput{Endpoints: []string{"http://10.213.0.11:2379"}, Plaintext: true}}
	_, err := (&Activities{}).HAAgent(context.Background(), in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrPlaintextRefused || !appErr.NonRetryable() {
		t.Fatalf("HAAgent took a plain-text input: %v", err)
	}
	if _, _, err := (&Activities{}).dcsClient(in.DCS); !errors.As(err, &appErr) || appErr.Type() != ErrPlaintextRefused {
		t.Fatalf("the DCS client took a plain-text input: %v", err)
	}
	if err := (&Activities{AllowPlaintext: true}).checkPlaintext(in.DCS.Plaintext); err != nil {
		t.Fatalf("a worker that allows plain text refused it: %v", err)
	}
}
