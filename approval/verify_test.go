package approval

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keyring makes keys in a temporary directory and an approvals file trusting them.
type keyring struct {
	t    *testing.T
	dir  string
	keys map[string]Key
	pubs map[string]string
}

func newKeyring(t *testing.T, names ...string) *keyring {
	t.Helper()
	k := &keyring{t: t, dir: t.TempDir(), keys: map[string]Key{}, pubs: map[string]string{}}
	for _, n := range names {
		pub, created, err := CreateKey(k.dir, n)
		if err != nil || !created {
			t.Fatalf("CreateKey %s: %v (created %v)", n, err, created)
		}
		key, err := LoadKey(n, filepath.Join(k.dir, n))
		if err != nil {
			t.Fatal(err)
		}
		k.keys[n], k.pubs[n] = key, pub
	}
	return k
}

// trust parses an approvals file whose %[name] placeholders are the ring's public keys.
func (k *keyring) trust(text string) *Trust {
	k.t.Helper()
	for n, p := range k.pubs {
		text = strings.ReplaceAll(text, "%["+n+"]", fmt.Sprintf("%q", p))
	}
	tr, err := Parse([]byte(text), "approvals.yml")
	if err != nil {
		k.t.Fatalf("parse:\n%s\n%v", text, err)
	}
	return tr
}

const labTrust = `
keys:
  alice: [%[alice]]
  bob: [%[bob]]
signers:
  chatops: { key: %[chatops], vouch_for: [alice, carol] }
policies:
  - cluster: pg-*
    runbook: switchover
    approvers: [alice, bob, carol]
    four_eyes: true
    quorum: 2
`

// The verification table: only an untouched decision, signed for this run, recently, by the
// approver or by a signer vouching for them, verifies.
func TestVerify(t *testing.T) {
	ring := newKeyring(t, "alice", "bob", "chatops", "mallory")
	tr := ring.trust(labTrust)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := Run{WorkflowID: "switchover/pg-test", RunID: "run-1"}
	pol := tr.Policy("switchover", "pg-test")
	signed := func(d Decision, by string, id, runID string, at time.Time) Decision {
		if err := Sign(&d, ring.keys[by], id, runID, at); err != nil {
			t.Fatal(err)
		}
		return d
	}
	alice := Decision{Decision: Approve, Approver: "alice", Comment: "go ahead"}
	good := signed(alice, "alice", run.WorkflowID, run.RunID, now.Add(-time.Minute))
	for _, tc := range []struct {
		name   string
		d      Decision
		ok     bool
		reason string // a part of the verdict's reason
	}{
		{"good signature", good, true, "alice's key"},
		{"unsigned", alice, false, "not signed"},
		{"wrong run ID", signed(alice, "alice", run.WorkflowID, "run-0", now), false, "not for this run"},
		{"wrong workflow ID", signed(alice, "alice", "switchover/pg-prod", run.RunID, now), false, "not for this run"},
		{"run ID edited after signing", func() Decision { d := good; d.RunID = "run-2"; return d }(), false, "not for this run"},
		{"decision turned into a reject", func() Decision { d := good; d.Decision = Reject; return d }(), false, "bad signature"},
		{"tampered comment", func() Decision { d := good; d.Comment = "go ahead, and drop everything"; return d }(), false, "bad signature"},
		{"signed-at moved", func() Decision { d := good; d.SignedAt = d.SignedAt.Add(time.Second); return d }(), false, "bad signature"},
		{"expired", signed(alice, "alice", run.WorkflowID, run.RunID, now.Add(-16*time.Minute)), false, "older than the 15m0s window"},
		{"from the future", signed(alice, "alice", run.WorkflowID, run.RunID, now.Add(16*time.Minute)), false, "ahead of the verifier's clock"},
		{"unknown key (mallory signs as alice)", func() Decision {
			d := signed(alice, "mallory", run.WorkflowID, run.RunID, now)
			d.Signer = "alice"
			return d
		}(), false, "bad signature"},
		{"carol has no key of her own", signed(Decision{Decision: Approve, Approver: "carol"}, "bob", run.WorkflowID, run.RunID, now), false, "a person signs only for themselves"},
		{"a person signing for another", signed(alice, "bob", run.WorkflowID, run.RunID, now), false, "a person signs only for themselves"},
		{"signer vouching for alice", signed(alice, "chatops", run.WorkflowID, run.RunID, now), true, "signer chatops"},
		{"signer vouching for carol (no key of her own)", signed(Decision{Decision: Approve, Approver: "carol"}, "chatops", run.WorkflowID, run.RunID, now), true, "signer chatops"},
		{"signer not vouching for bob", signed(Decision{Decision: Approve, Approver: "bob"}, "chatops", run.WorkflowID, run.RunID, now), false, "may not sign for bob"},
		{"unknown signer", signed(alice, "mallory", run.WorkflowID, run.RunID, now), false, "mallory is not a trusted signer"},
		{"approver not on the policy", signed(Decision{Decision: Approve, Approver: "mallory"}, "mallory", run.WorkflowID, run.RunID, now), false, "mallory is not an approver"},
		{"garbage signature", func() Decision { d := good; d.Signature = "!!"; return d }(), false, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tr.Verify(tc.d, run, &pol, now)
			if v.Verified != tc.ok || !strings.Contains(v.Reason+v.Via, tc.reason) {
				t.Errorf("verdict %+v, want verified=%v with %q", v, tc.ok, tc.reason)
			}
			if v.Verified && v.Identity != tc.d.Approver {
				t.Errorf("identity %q, want %q", v.Identity, tc.d.Approver)
			}
			if v.Unsigned != !tc.d.Signed() {
				t.Errorf("unsigned = %v", v.Unsigned)
			}
		})
	}
}

// A request proves its requester only with the requester's own key, near the run's start.
func TestVerifyRequest(t *testing.T) {
	ring := newKeyring(t, "alice", "bob", "chatops")
	tr := ring.trust(labTrust)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := Run{WorkflowID: "switchover/pg-test", RunID: "run-1"}
	req := Decision{Decision: Request, Approver: "alice"}
	own := req
	if err := Sign(&own, ring.keys["alice"], run.WorkflowID, run.RunID, start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if v := tr.Verify(own, run, nil, start); !v.Verified || v.Identity != "alice" {
		t.Errorf("alice's own request: %+v", v)
	}
	vouched := req
	if err := Sign(&vouched, ring.keys["chatops"], run.WorkflowID, run.RunID, start); err != nil {
		t.Fatal(err)
	}
	if v := tr.Verify(vouched, run, nil, start); v.Verified || !strings.Contains(v.Reason, "requester's own key") {
		t.Errorf("a request signed by a signer: %+v", v)
	}
}

// The message is bound to every field and to its domain: no two decisions share one.
func TestMessageIsCanonical(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 5, time.FixedZone("x", 3600))
	d := Decision{WorkflowID: "w", RunID: "r", Decision: Approve, Approver: "alice", Signer: "alice", Comment: "a\nb", SignedAt: at}
	want := "pigwf-approval-v1\nworkflow_id=\"w\"\nrun_id=\"r\"\ndecision=\"approve\"\napprover=\"alice\"\nsigner=\"alice\"\ncomment=\"a\\nb\"\nsigned_at=\"2026-12-01T09:00:00.000000005Z\"\n"
	if got := string(d.Message()); got != want {
		t.Errorf("message:\n%s\nwant:\n%s", got, want)
	}
	// A comment cannot forge the next field.
	e := d
	e.Comment = "a\"\nsigner=\"bob"
	if string(e.Message()) == string(d.Message()) || strings.Count(string(e.Message()), "\n") != strings.Count(want, "\n") {
		t.Errorf("a comment changed the message's shape:\n%s", e.Message())
	}
}
