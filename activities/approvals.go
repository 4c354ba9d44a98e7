package activities

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/approval"
)

// ApprovalTrust is the worker's approvals file (`pigwf worker --approvals`): who may approve and
// whose keys the worker believes. It is read at every call, so an edit takes effect without a
// restart; each run records the policy and the verdicts it got in its history.
type ApprovalTrust struct {
	File string
}

// ApprovalsFileInvalidType is the error type of an approvals file that does not parse: retrying
// cannot fix it, the operator must (the message names each field and the fix).
const ApprovalsFileInvalidType = "ApprovalsFileInvalid"

// load reads the file; missing reports whether there is none (then nobody can approve).
func (t ApprovalTrust) load() (tr *approval.Trust, missing bool, err error) {
	tr, err = approval.Load(t.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, temporal.NewNonRetryableApplicationError(err.Error(), ApprovalsFileInvalidType, nil)
	}
	return tr, false, nil
}

// ApprovalPolicyInput names what a run's approval gate is for.
type ApprovalPolicyInput struct {
	Runbook string `json:"runbook"`
	Cluster string `json:"cluster"`
}

// ApprovalPolicy resolves who may approve runbook on cluster, from the worker's approvals file:
// the approval gate's allow-list, four eyes and quorum never come from the run's input. Without
// a file, nobody may approve (the run waits and times out, changing nothing).
func (a *Activities) ApprovalPolicy(_ context.Context, in ApprovalPolicyInput) (approval.Policy, error) {
	tr, missing, err := a.Approvals.load()
	if err != nil {
		return approval.Policy{}, err
	}
	if missing {
		return approval.NoFilePolicy(a.Approvals.File), nil
	}
	return tr.Policy(in.Runbook, in.Cluster), nil
}

// VerifyApprovalInput is one decision to verify for one run.
type VerifyApprovalInput struct {
	Decision approval.Decision `json:"decision"`
	Run      approval.Run      `json:"run"`
	// Policy the approver must be on (a decision); nil for the requester's signed request.
	Policy *approval.Policy `json:"policy,omitempty"`
	// At is the time the signature must be near; zero: the worker's clock (a decision). A request
	// gives the run's start, since the requester signs it right after starting the run.
	At time.Time `json:"at,omitzero"`
}

// VerifyApproval checks a decision's signature against the worker's approvals file: the run it
// was signed for, its time, the signer and the key (approval.Trust.Verify). The verdict (who it
// proves, or why it proves nothing) is the result, so the run's history records it.
func (a *Activities) VerifyApproval(_ context.Context, in VerifyApprovalInput) (approval.Verdict, error) {
	tr, missing, err := a.Approvals.load()
	if err != nil {
		return approval.Verdict{}, err
	}
	if missing {
		return approval.Verdict{Unsigned: !in.Decision.Signed(), Reason: "the worker has no approvals file at " + a.Approvals.File + ", so it trusts no key"}, nil
	}
	at := in.At
	if at.IsZero() {
		at = time.Now()
	}
	return tr.Verify(in.Decision, in.Run, in.Policy, at), nil
}
