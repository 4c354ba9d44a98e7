package approval

import (
	"strings"
	"testing"
	"time"
)

// signedBy is a decision with a (fake) signature; the ballot never checks signatures itself.
func signedBy(decision, approver string) Decision {
	return Decision{Decision: decision, Approver: approver, Signer: approver, Signature: "c2ln"}
}

func verified(d Decision) Verdict {
	return Verdict{Verified: true, Identity: d.Approver, Via: d.Approver + "'s key"}
}

func TestBallotFourEyesAndQuorum(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b := Ballot{Policy: Policy{Approvers: []string{"alice", "bob", "carol"}, FourEyes: true, Quorum: 2}, Requester: "alice"}
	steps := []struct {
		d       Decision
		v       Verdict
		refused string // "" when it counts
		outcome string
	}{
		{signedBy(Approve, "alice"), verified(signedBy(Approve, "alice")), "four eyes: alice requested this run and may not approve it", ""},
		{signedBy(Approve, "mallory"), verified(signedBy(Approve, "mallory")), "mallory is not an approver for this run (approvers: alice, bob, carol", ""},
		{Decision{Decision: Approve, Approver: "bob"}, Verdict{Unsigned: true, Reason: "not signed"}, "not signed", ""},
		{signedBy(Approve, "bob"), Verdict{Reason: "bad signature"}, "not verified: bad signature", ""},
		{signedBy(Approve, "bob"), verified(signedBy(Approve, "bob")), "", ""},
		{signedBy(Approve, "bob"), verified(signedBy(Approve, "bob")), "bob already approved; the quorum needs 2 distinct approvers", ""},
		{signedBy("maybe", "carol"), verified(signedBy("maybe", "carol")), "decision \"maybe\" is neither", ""},
		{signedBy(Approve, "carol"), verified(signedBy(Approve, "carol")), "", Approve},
		{signedBy(Reject, "bob"), verified(signedBy(Reject, "bob")), "already decided (approve)", Approve},
	}
	for i, s := range steps {
		why := b.Count(s.d, s.v, at)
		if (s.refused == "") != (why == "") || !strings.Contains(why, s.refused) {
			t.Errorf("step %d (%s by %s): %q, want %q", i, s.d.Decision, s.d.Approver, why, s.refused)
		}
		if o := b.Outcome(); o != s.outcome {
			t.Errorf("step %d: outcome %q, want %q", i, o, s.outcome)
		}
	}
	if got := strings.Join(b.Deciders(), ","); got != "bob,carol" {
		t.Errorf("deciders %s", got)
	}
}

// One verified reject ends it, whoever else approved; the requester may reject their own run.
func TestBallotOneRejectRejects(t *testing.T) {
	b := Ballot{Policy: Policy{Approvers: []string{"alice", "bob", "carol"}, FourEyes: true, Quorum: 2}, Requester: "alice"}
	if why := b.Count(signedBy(Approve, "bob"), verified(signedBy(Approve, "bob")), time.Time{}); why != "" {
		t.Fatal(why)
	}
	if why := b.Count(signedBy(Reject, "alice"), verified(signedBy(Reject, "alice")), time.Time{}); why != "" {
		t.Fatal(why)
	}
	if b.Outcome() != Reject || strings.Join(b.Deciders(), ",") != "alice" {
		t.Errorf("outcome %s by %v", b.Outcome(), b.Deciders())
	}
}

// Under four eyes, a run whose requester is unproven cannot be approved by anyone.
func TestBallotUnprovenRequester(t *testing.T) {
	b := Ballot{Policy: Policy{Approvers: []string{"alice", "bob"}, FourEyes: true, Quorum: 1}, Claimed: "carol"}
	if why := b.Screen(signedBy(Approve, "bob")); !strings.Contains(why, "requester is unknown") {
		t.Errorf("screen: %q", why)
	}
	// A reject needs no four eyes.
	if why := b.Screen(signedBy(Reject, "bob")); why != "" {
		t.Errorf("reject screened out: %q", why)
	}
}

// While the run's request is being verified, a decision is screened for everything but the unknown
// requester; once the requester is known, the requester's own approval is refused again.
func TestBallotScreenWithRequesterPending(t *testing.T) {
	b := Ballot{Policy: Policy{Approvers: []string{"alice", "bob"}, FourEyes: true, Quorum: 1}}
	for i, tc := range []struct {
		d    Decision
		want string
	}{
		{signedBy(Approve, "bob"), ""},
		{signedBy(Approve, "alice"), ""},
		{signedBy(Approve, "mallory"), "mallory is not an approver"},
		{Decision{Decision: Approve, Approver: "bob"}, "not signed"},
	} {
		if why := b.ScreenWithRequesterPending(tc.d); (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) {
			t.Errorf("%d: ScreenWithRequesterPending(%s by %s) = %q, want %q", i+1, tc.d.Decision, tc.d.Approver, why, tc.want)
		}
	}
	b.Requester = "alice"
	if why := b.ScreenWithRequesterPending(signedBy(Approve, "alice")); !strings.Contains(why, "four eyes: alice requested this run") {
		t.Errorf("with the requester known: %q", why)
	}
	if b.Requester != "alice" {
		t.Errorf("the ballot's requester changed: %q", b.Requester)
	}
}

// allow_unverified takes names at their word (the lab's switch), the requester's claimed name too,
// but a signature that fails is still refused.
func TestBallotAllowUnverified(t *testing.T) {
	b := Ballot{Policy: Policy{Approvers: []string{"alice", "bob"}, FourEyes: true, Quorum: 1, AllowUnverified: true}, Claimed: "alice"}
	bare := func(who string) Decision { return Decision{Decision: Approve, Approver: who} }
	if why := b.Count(bare("alice"), Verdict{Unsigned: true}, time.Time{}); !strings.Contains(why, "alice requested this run") {
		t.Errorf("claimed requester approving: %q", why)
	}
	if why := b.Count(signedBy(Approve, "bob"), Verdict{Reason: "bad signature"}, time.Time{}); !strings.Contains(why, "not verified: bad signature") {
		t.Errorf("a bad signature under allow_unverified: %q", why)
	}
	if why := b.Count(bare("bob"), Verdict{Unsigned: true}, time.Time{}); why != "" || b.Outcome() != Approve {
		t.Errorf("bare bob: %q, outcome %q", why, b.Outcome())
	}
	if !strings.Contains(b.Votes[0].Via, "unverified") {
		t.Errorf("vote %+v", b.Votes[0])
	}
}

func TestBallotNobodyMayApprove(t *testing.T) {
	b := Ballot{Policy: NoFilePolicy("/etc/pigwf/approvals.yml")}
	if why := b.Screen(signedBy(Approve, "alice")); !strings.Contains(why, "nobody may approve: no approvals file at /etc/pigwf/approvals.yml") {
		t.Errorf("screen: %q", why)
	}
}

func TestPolicyDescribe(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Approvers: []string{"alice", "bob"}, Quorum: 1, FourEyes: true}, "one of alice, bob; four eyes (the requester may not approve); signed decisions only"},
		{Policy{Approvers: []string{"alice", "bob", "carol"}, Quorum: 2}, "2 of alice, bob, carol; signed decisions only"},
		{Policy{Approvers: []string{"alice"}, AllowUnverified: true}, "one of alice; UNSIGNED decisions accepted (allow_unverified: lab only)"},
	} {
		if got := tc.p.Describe(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}
