package approval

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is who may approve one run and how, resolved on the worker from its approvals file. A
// run gets it from an activity, so its history records the policy it was decided under.
type Policy struct {
	Source          string   `json:"source"`    // the file and policy it came from, or why there is none
	Approvers       []string `json:"approvers"` // sorted; empty: nobody may approve
	FourEyes        bool     `json:"four_eyes,omitempty"`
	Quorum          int      `json:"quorum"` // distinct approvals needed (at least 1)
	AllowUnverified bool     `json:"allow_unverified,omitempty"`
}

// Lists reports whether name may decide under p.
func (p Policy) Lists(name string) bool { return slices.Contains(p.Approvers, name) }

// quorum is the number of approvals needed, never below 1.
func (p Policy) quorum() int { return max(p.Quorum, 1) }

// Describe is the policy in words, for the run's page, `pigwf pending` and notifications.
func (p Policy) Describe() string {
	if len(p.Approvers) == 0 {
		return "nobody may approve: " + p.Source
	}
	var parts []string
	if q := p.quorum(); q > 1 {
		parts = append(parts, fmt.Sprintf("%d of %s", q, strings.Join(p.Approvers, ", ")))
	} else {
		parts = append(parts, "one of "+strings.Join(p.Approvers, ", "))
	}
	if p.FourEyes {
		parts = append(parts, "four eyes (the requester may not approve)")
	}
	if p.AllowUnverified {
		parts = append(parts, "UNSIGNED decisions accepted (allow_unverified: lab only)")
	} else {
		parts = append(parts, "signed decisions only")
	}
	return strings.Join(parts, "; ")
}

// Vote is a verified decision that counts.
type Vote struct {
	Approver string    `json:"approver"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	Via      string    `json:"via"` // how the approver was verified
	At       time.Time `json:"at"`
}

// Ballot applies a policy to one approval gate's decisions: the allow-list, four eyes, the
// quorum, one reject. It is deterministic (no I/O, no clock), so a workflow runs it; signatures
// are checked before Count, by Trust.Verify in an activity.
type Ballot struct {
	Policy Policy
	// Requester is the run's requester as their signed request proved it; "" while unproven.
	Requester string
	// Claimed is the requester the run's input names, believed only when the policy allows
	// unverified decisions.
	Claimed string
	Votes   []Vote
}

// requester is who four eyes keeps from approving.
func (b *Ballot) requester() string {
	if b.Requester == "" && b.Policy.AllowUnverified {
		return b.Claimed
	}
	return b.Requester
}

// Screen is every check that needs no signature verification: what the Update's validator
// refuses at once, and what a signal's decision is refused for before it is verified. "" means
// verify it.
func (b *Ballot) Screen(d Decision) string {
	if o := b.Outcome(); o != "" {
		return "the run's approval is already decided (" + o + ")"
	}
	if d.Decision != Approve && d.Decision != Reject {
		return fmt.Sprintf("decision %q is neither %q nor %q", d.Decision, Approve, Reject)
	}
	if strings.TrimSpace(d.Approver) == "" {
		return "no approver named"
	}
	if !b.Policy.Lists(d.Approver) {
		if len(b.Policy.Approvers) == 0 {
			return fmt.Sprintf("%s is not an approver for this run: %s", d.Approver, b.Policy.Describe())
		}
		return fmt.Sprintf("%s is not an approver for this run (approvers: %s; %s)", d.Approver, strings.Join(b.Policy.Approvers, ", "), b.Policy.Source)
	}
	if !d.Signed() && !b.Policy.AllowUnverified {
		return "not signed: only decisions signed by the approver's key (`pigwf approve`) or a trusted signer (the ChatOps bridge) are acted on; a bare name from the Web UI or `temporal workflow signal` is recorded, not acted on"
	}
	if d.Decision != Approve {
		return ""
	}
	if b.Policy.FourEyes {
		switch r := b.requester(); r {
		case "":
			return "four eyes: this run's request is not signed by a key the worker trusts, so its requester is unknown and no approval can be shown to come from someone else; start runs with `pigwf start --as NAME` (it signs the request with NAME's key)"
		case d.Approver:
			return fmt.Sprintf("four eyes: %s requested this run and may not approve it", r)
		}
	}
	for _, v := range b.Votes {
		if v.Approver == d.Approver && v.Decision == Approve {
			return fmt.Sprintf("%s already approved; the quorum needs %d distinct approvers", d.Approver, b.Policy.quorum())
		}
	}
	return ""
}

// ScreenWithRequesterPending is Screen while the run's signed request is still being verified:
// every check but four eyes' "requester unknown", which that verification is about to settle.
// A decision it lets through is screened again once the requester is known (Count), so the
// requester approving their own run is still refused then.
func (b *Ballot) ScreenWithRequesterPending(d Decision) string {
	if b.requester() != "" {
		return b.Screen(d)
	}
	pending := *b
	pending.Requester = requesterPending
	return pending.Screen(d)
}

// requesterPending stands for a requester not yet verified: no approver can have this name
// (CheckName refuses control characters).
const requesterPending = "\x00requester being verified"

// Count records d once its verification said v: "" when it counts, else why it does not. Screen
// runs again, since other decisions may have arrived while d was being verified.
func (b *Ballot) Count(d Decision, v Verdict, at time.Time) string {
	if why := b.Screen(d); why != "" {
		return why
	}
	vote := Vote{Approver: v.Identity, Decision: d.Decision, Comment: d.Comment, Via: v.Via, At: at}
	switch {
	case v.Verified && v.Identity != d.Approver:
		return fmt.Sprintf("the signature proves %s, not %s", v.Identity, d.Approver)
	case v.Verified:
	case v.Unsigned && b.Policy.AllowUnverified:
		vote.Approver, vote.Via = d.Approver, "unverified, accepted by allow_unverified (lab only)"
	default:
		return "not verified: " + v.Reason
	}
	b.Votes = append(b.Votes, vote)
	return ""
}

// Outcome is Reject once a counted reject is in, Approve once the quorum of distinct approvers
// approved, "" while undecided.
func (b *Ballot) Outcome() string {
	n := 0
	for _, v := range b.Votes {
		if v.Decision == Reject {
			return Reject
		}
		n++
	}
	if n >= b.Policy.quorum() {
		return Approve
	}
	return ""
}

// Deciders are the approvers whose votes decided: the rejecter, or every approver.
func (b *Ballot) Deciders() []string {
	var out []string
	for _, v := range b.Votes {
		if v.Decision == Reject {
			return []string{v.Approver}
		}
		out = append(out, v.Approver)
	}
	return out
}
