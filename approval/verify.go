package approval

import (
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// Run names the run a decision must have been signed for.
type Run struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

func (r Run) String() string { return r.WorkflowID + " (run " + r.RunID + ")" }

// Verdict is what verifying one decision found: the identity it proves, or why it proves none.
// It is the verification activity's result, so a run's history records it for every decision.
type Verdict struct {
	Verified bool   `json:"verified"`
	Unsigned bool   `json:"unsigned,omitempty"` // no signature at all (a bare name)
	Identity string `json:"identity,omitempty"` // who decided, proven
	Via      string `json:"via,omitempty"`      // how: which key or signer
	Reason   string `json:"reason"`
}

func refused(format string, args ...any) Verdict {
	return Verdict{Reason: fmt.Sprintf(format, args...)}
}

// Verify checks that d was signed for run, within the window of now, by d.Approver's own key or
// by a trusted signer that may vouch for d.Approver, and that the signed content is exactly d's.
// With a policy (decisions; nil for the requester's Request), the approver must be on it. For a
// Request, now is the run's start: the requester signs right after starting it.
func (t *Trust) Verify(d Decision, run Run, p *Policy, now time.Time) Verdict {
	if !d.Signed() {
		return Verdict{Unsigned: true, Reason: "not signed: a bare name, as the Web UI's or `temporal workflow signal`'s decisions are; sign it with `pigwf approve` (or decide through the ChatOps bridge)"}
	}
	if d.WorkflowID != run.WorkflowID || d.RunID != run.RunID {
		return refused("signed for %s, not for this run, %s: a signature holds for one run only", Run{d.WorkflowID, d.RunID}, run)
	}
	if age := now.Sub(d.SignedAt); age > t.Window {
		return refused("signed at %s, %s before the verifier's clock: older than the %s window; sign it again", d.SignedAt.UTC().Format(time.RFC3339), age.Round(time.Second), t.Window)
	} else if -age > t.Window {
		return refused("signed at %s, %s ahead of the verifier's clock (window %s): check the signer's clock", d.SignedAt.UTC().Format(time.RFC3339), (-age).Round(time.Second), t.Window)
	}
	if p != nil && !p.Lists(d.Approver) {
		return refused("%s is not an approver under %s", d.Approver, p.Source)
	}
	var keys []ssh.PublicKey
	var via string
	switch {
	case d.Signer == "":
		return refused("no signer named")
	case d.Signer == d.Approver:
		keys = t.keys[d.Approver]
		if len(keys) == 0 {
			return refused("%s has no key in %s (keys.%s)", d.Approver, t.File, d.Approver)
		}
		via = d.Approver + "'s key"
	case d.Decision == Request:
		return refused("a request is signed by the requester's own key; %s signed for %s", d.Signer, d.Approver)
	default:
		s, ok := t.signers[d.Signer]
		if !ok {
			if len(t.keys[d.Signer]) > 0 {
				return refused("%s signed for %s: a person signs only for themselves, and only a trusted signer (signers: in %s) signs for someone else", d.Signer, d.Approver, t.File)
			}
			return refused("%s is not a trusted signer (signers: in %s)", d.Signer, t.File)
		}
		if !s.vouchesFor(d.Approver) {
			return refused("signer %s may not sign for %s (signers.%s.vouch_for in %s)", d.Signer, d.Approver, d.Signer, t.File)
		}
		keys = []ssh.PublicKey{s.key}
		via = "signer " + d.Signer
	}
	sig, err := d.signature()
	if err != nil {
		return refused("%v", err)
	}
	if sig.Format != ssh.KeyAlgoED25519 {
		return refused("a %s signature: approvals are signed with ed25519 keys only", sig.Format)
	}
	msg := d.Message()
	for _, k := range keys {
		if k.Verify(msg, sig) == nil {
			return Verdict{Verified: true, Identity: d.Approver, Via: via + " " + ssh.FingerprintSHA256(k),
				Reason: fmt.Sprintf("%s of %s verified: %s", d.Decision, run, via)}
		}
	}
	return refused("bad signature: not made with %s over this decision (changed after signing, or signed with another key)", via)
}
