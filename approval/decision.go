// Package approval is who may approve a pigwf run and how a decision proves who made it, with no
// Temporal in it: the workflows, the worker's activities, the CLI and the ChatOps bridge all use
// it, so each rule lives here once.
//
//   - decision.go: a decision as it travels to a run (the "approve" signal and Update, the
//     "request" signal), its canonical signed message and Sign.
//   - keys.go: private keys (loading, creating) and public keys (authorized_keys lines).
//   - trust.go: the worker's approvals file (keys, trusted signers, policies), parsed strictly.
//   - verify.go: Trust.Verify, a signed decision checked against the run it claims to be for.
//   - ballot.go: a policy's rules (allow-list, four eyes, quorum) applied to verified decisions;
//     pure code, run inside workflows.
//
// The threat it answers: anyone who can signal a Temporal workflow could approve a run by typing
// a name, and whoever started a run chose its approvers. Now a decision counts only when it is
// signed by the named person's key, or by a signer the worker trusts to vouch for that person (the
// ChatOps bridge, after it verified the chat platform), for exactly this run, recently; and the
// approvers come from the worker's file, never from the run's input.
package approval

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Decisions. Request is not a decision on a run: it is the requester's signed statement that
// they started it (pigwf start sends it right after the start), which four eyes relies on.
const (
	Approve = "approve"
	Reject  = "reject"
	Request = "request"
)

// Decision is the payload of the "approve" signal and Update and of the "request" signal:
// {"decision": "approve", "approver": "alice", "comment": "go ahead"} as before, plus the
// signature fields. Runs recorded before signatures decode it unchanged (the new fields are
// empty), and an unsigned decision is still accepted on the wire: it is recorded and, unless the
// policy allows unverified decisions, not acted on.
type Decision struct {
	Decision string `json:"decision"`
	Approver string `json:"approver"`
	Comment  string `json:"comment,omitempty"`

	// The run it was signed for: the signature covers both IDs, so it cannot be replayed on another
	// run (not even a later run with the same workflow ID).
	WorkflowID string `json:"workflow_id,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	// Signer is whose key signed: the approver's own, or a trusted signer's (e.g. "chatops")
	// vouching for the approver.
	Signer   string    `json:"signer,omitempty"`
	SignedAt time.Time `json:"signed_at,omitzero"`
	// Signature is base64 of the SSH wire encoding of the signature over Message().
	Signature string `json:"signature,omitempty"`
}

// Signed reports whether the decision carries a signature at all.
func (d Decision) Signed() bool { return d.Signature != "" }

// messageDomain starts every signed message: a signature made for anything else (another
// protocol, another version of this one) never verifies here.
const messageDomain = "pigwf-approval-v1\n"

// Message is the canonical bytes that are signed: the domain line, then every field but the
// signature, one per line, each value Go-quoted so no value (a comment with a line break, say)
// can shift another field. Changing it is a new domain version.
func (d Decision) Message() []byte {
	var b strings.Builder
	b.WriteString(messageDomain)
	for _, f := range [][2]string{
		{"workflow_id", d.WorkflowID},
		{"run_id", d.RunID},
		{"decision", d.Decision},
		{"approver", d.Approver},
		{"signer", d.Signer},
		{"comment", d.Comment},
		{"signed_at", d.SignedAt.UTC().Format(time.RFC3339Nano)},
	} {
		b.WriteString(f[0] + "=" + strconv.Quote(f[1]) + "\n")
	}
	return []byte(b.String())
}

// Sign binds d to one run (workflowID, runID) and signs it with key at now: key.Name becomes the
// signer (the approver themselves, or a trusted signer naming d.Approver).
func Sign(d *Decision, key Key, workflowID, runID string, now time.Time) error {
	if workflowID == "" || runID == "" {
		return fmt.Errorf("signing a decision needs the run's workflow ID and run ID (got %q, %q)", workflowID, runID)
	}
	d.WorkflowID, d.RunID, d.Signer, d.SignedAt = workflowID, runID, key.Name, now.UTC().Round(0)
	sig, err := key.Signer.Sign(rand.Reader, d.Message())
	if err != nil {
		return fmt.Errorf("while signing with %s's key: %w", key.Name, err)
	}
	d.Signature = base64.StdEncoding.EncodeToString(ssh.Marshal(sig))
	return nil
}

// signature decodes the signature field.
func (d Decision) signature() (*ssh.Signature, error) {
	raw, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil {
		return nil, fmt.Errorf("the signature is not base64: %w", err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(raw, &sig); err != nil {
		return nil, fmt.Errorf("the signature is not an SSH signature: %w", err)
	}
	return &sig, nil
}
