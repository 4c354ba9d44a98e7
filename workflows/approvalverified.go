package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
)

// Verified approvals. At its gate a run asks the worker for its policy (an activity: the worker's
// approvals file decides who may approve, never the run's input), then takes decisions from the
// "approve" signal and Update alike: each is screened (approval.Ballot.Screen: on the list,
// signed, four eyes, not a second vote), then verified by an activity (approval.Trust.Verify: the
// signature, the signer, this run, the time), and only then counted toward the quorum; one
// verified reject rejects. Whatever is not counted is recorded in Ignored with the reason. The
// requester is known only by the signed request `pigwf start` sends right after the start (the
// "request" signal); under four eyes a run without one cannot be approved.

// verifiedApprovalsChange is the GetVersion change ID of verified approvals, taken once per run at
// its first gate: runs that reached a gate before it keep their input's allow-list.
const verifiedApprovalsChange = "verified-approvals"

const verifiedApprovalsVersion workflow.Version = 1

// approvalWaitsForRequestChange is the GetVersion change ID, taken at each verified gate, of
// decisions that arrive while the run's signed request is still being verified: they wait for it.
// Before, an Update sent the moment the gate opened (`pigwf approve` right after `pigwf pending`
// showed the run) could be refused under four eyes as "requester unknown" although the request
// had arrived: its verification, an activity, was still running.
const approvalWaitsForRequestChange = "approval-waits-for-request"

// ApprovalNotTakenType is the error type an Update gets when its decision was screened in but not
// counted (its signature did not verify, say); the run records it in Ignored.
const ApprovalNotTakenType = "ApprovalNotTaken"

// gateActivity is the options of the gate's own activities (its policy, each verification):
// local to the worker, quick, retried briefly.
func gateActivity(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	})
}

// awaitVerified is the gate of runs since verified approvals: the worker's policy, then signed
// decisions until the quorum, a reject or the timeout.
func (g *approvalGate) awaitVerified(ctx workflow.Context, track *tracker, plan string, timeout time.Duration, note *activities.Notification) (ApprovalState, error) {
	var a *activities.Activities
	var pol approval.Policy
	in := activities.ApprovalPolicyInput{Runbook: track.p.Runbook, Cluster: track.p.Cluster}
	if err := workflow.ExecuteActivity(gateActivity(ctx, "approval policy for "+in.Runbook+" on "+in.Cluster), a.ApprovalPolicy, in).Get(ctx, &pol); err != nil {
		return g.state, fmt.Errorf("the worker's approval policy: %w", err)
	}
	if note != nil {
		n := *note
		n.Approvers = pol.Approvers
		n.Text += " (approvers: " + pol.Describe() + ")"
		notify(ctx, n)
	}
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	now := workflow.Now(ctx)
	g.ballot = approval.Ballot{Policy: pol, Requester: g.proven, Claimed: g.claimed}
	g.state = ApprovalState{Waiting: true, Plan: plan, Approvers: pol.Approvers, Requested: now, Deadline: now.Add(timeout),
		Ignored: g.carried, Policy: &pol, RequestedBy: g.proven}
	g.carried = nil
	g.waitForRequest = workflow.GetVersion(ctx, approvalWaitsForRequestChange, workflow.DefaultVersion, 1) >= 1
	g.considerParentRequest(ctx)
	g.open = true
	prevPhase := track.p.Phase
	track.waiting = &awaiting{plan: plan, approvers: pol.Approvers, policy: pol.Describe(), deadline: g.state.Deadline}
	track.setPhase(PhaseWaitingForApproval)

	// The Update's validator refuses at once what screening refuses (validators cannot run
	// activities); its handler verifies and counts like the signal's path, and answers the sender.
	err := workflow.SetUpdateHandlerWithOptions(ctx, ApproveUpdate,
		func(ctx workflow.Context, d ApprovalDecision) (ApprovalState, error) {
			if g.waitForRequest {
				if err := workflow.Await(ctx, func() bool { return !g.requestPending() }); err != nil {
					return g.state, err
				}
			}
			if why := g.consider(ctx, d); why != "" {
				return g.state, temporal.NewApplicationError(why, ApprovalNotTakenType)
			}
			return g.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ApprovalDecision) error {
			if !g.open {
				return fmt.Errorf("this run is not waiting for approval (%s)", g.state.Summary())
			}
			why := g.ballot.Screen(d)
			if why != "" && g.waitForRequest && g.requestPending() {
				why = g.ballot.ScreenWithRequesterPending(d)
			}
			if why != "" {
				return errors.New(why)
			}
			return nil
		}})
	if err != nil {
		return g.state, err
	}

	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimerWithOptions(timerCtx, timeout, workflow.TimerOptions{
		Summary: "waiting for approval until " + g.state.Deadline.UTC().Format("2006-01-02 15:04 MST")})
	for g.open {
		if err := workflow.Await(ctx, func() bool {
			return !g.open || g.requests.Len() > 0 || g.ch.Len() > 0 || timer.IsReady()
		}); err != nil {
			return g.state, err
		}
		// ReceiveAsync: a payload that is not a decision is dropped by the SDK (logged as a corrupt
		// signal) without blocking the gate; Receive would wait for the next one past the timer.
		var d ApprovalDecision
		switch {
		case !g.open:
		case g.requests.Len() > 0: // the requester first: four eyes needs to know them
			if g.requests.ReceiveAsync(&d) {
				g.considerRequest(ctx, d)
			}
		case g.ch.Len() > 0:
			if g.ch.ReceiveAsync(&d) {
				g.consider(ctx, d)
			}
		default: // the timer fired
			g.open = false
		}
	}
	// Decisions taken before the close and still being verified (an Update's) are counted first.
	if err := workflow.Await(ctx, func() bool { return g.inflight == 0 }); err != nil {
		return g.state, err
	}
	g.settle(ctx)
	track.waiting = nil
	track.setPhase(prevPhase)
	return g.state, nil
}

// consider screens, verifies and counts one decision; "" when it counted, else why not (recorded
// in Ignored).
func (g *approvalGate) consider(ctx workflow.Context, d ApprovalDecision) string {
	why := g.ballot.Screen(d)
	if why == "" && !g.open {
		why = "this run is not waiting for approval (" + g.state.Summary() + ")"
	}
	if why == "" {
		g.inflight++
		v, err := g.verify(ctx, d, &g.ballot.Policy, time.Time{})
		g.inflight--
		if err != nil {
			why = "not verified: the verification failed: " + err.Error()
		} else {
			why = g.ballot.Count(d, v, workflow.Now(ctx))
		}
	}
	if why != "" {
		g.ignore(ctx, d, why)
		return why
	}
	g.state.Votes = g.ballot.Votes
	workflow.GetLogger(ctx).Info("approval decision counted", "approver", d.Approver, "decision", d.Decision)
	if g.ballot.Outcome() != "" {
		g.open = false
		g.settle(ctx)
	}
	return ""
}

// considerRequest takes the requester's signed request: the first that verifies names the
// requester for every gate of the run.
func (g *approvalGate) considerRequest(ctx workflow.Context, d ApprovalDecision) {
	info := workflow.GetInfo(ctx)
	g.takeRequest(ctx, d, approval.Run{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}, info.WorkflowStartTime)
}

// takeRequest verifies d as the requester's request for run, signed near at: the one rule of
// what proves a run's requester, whether the request came to this run or to its parent.
func (g *approvalGate) takeRequest(ctx workflow.Context, d ApprovalDecision, run approval.Run, at time.Time) {
	why := ""
	switch {
	case d.Decision != approval.Request:
		why = fmt.Sprintf("a %q signal carries a request, not %q", RequestSignal, d.Decision)
	case g.proven != "":
		why = "the requester is already proven: " + g.proven
	case approval.CheckName(d.Approver) != nil:
		why = "the request names no valid requester"
	default:
		g.verifyingRequest++
		v, err := g.verifyFor(ctx, d, run, nil, at)
		g.verifyingRequest--
		switch {
		case err != nil:
			why = "the request's verification failed: " + err.Error()
		case !v.Verified:
			why = "the request does not prove its requester: " + v.Reason
		default:
			g.proven, g.ballot.Requester, g.state.RequestedBy = v.Identity, v.Identity, v.Identity
			if own := workflow.GetInfo(ctx).WorkflowExecution; run.WorkflowID == own.ID && run.RunID == own.RunID {
				g.provenBy = &d // this run's own request: what it passes on to a gated child
			}
			workflow.GetLogger(ctx).Info("the run's requester is proven", "requester", v.Identity)
			return
		}
	}
	g.ignore(ctx, d, why)
}

// requestPending says a signed request has arrived and is not yet verified: queued for the
// gate's loop or being verified.
func (g *approvalGate) requestPending() bool {
	return g.requests.Len() > 0 || g.verifyingRequest > 0
}

// ParentRequest is what a run that starts a gated runbook as its child (pg-restart's switchover)
// passes on of its own requester: the signed requests it received, each signed for the parent.
// The child verifies them against its parent as the server records it
// (workflow.GetInfo().ParentWorkflowExecution), never the input's word, so a run that no run
// started, or one started by another run, proves nothing by them.
type ParentRequest struct {
	Requests []ApprovalDecision `json:"requests,omitempty"`
	Started  time.Time          `json:"started"` // the parent's start, near which its requester signed
}

// requestGrace is how long after its start a run that passes its requester on to a child waits
// for the signed request `pigwf start` sends right after starting it, when none has come yet.
const requestGrace = 30 * time.Second

// parentRequests is, on the parent's side, what it passes on: the requests sent to it so far.
func parentRequests(ctx workflow.Context) (*ParentRequest, error) {
	started := workflow.GetInfo(ctx).WorkflowStartTime
	ch := workflow.GetSignalChannel(ctx, RequestSignal)
	if wait := started.Add(requestGrace).Sub(workflow.Now(ctx)); ch.Len() == 0 && wait > 0 {
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: wait, TimerOptions: workflow.TimerOptions{Summary: "waiting for the requester's signed request"}},
			func() bool { return ch.Len() > 0 }); err != nil {
			return nil, err
		}
	}
	p := &ParentRequest{Started: started}
	for {
		var d ApprovalDecision
		if !ch.ReceiveAsync(&d) {
			return p, nil
		}
		p.Requests = append(p.Requests, d)
	}
}

// considerParentRequest takes the requests the parent passed on (once, at the first gate), as
// considerRequest takes the run's own: the first that verifies for the parent names the
// requester.
func (g *approvalGate) considerParentRequest(ctx workflow.Context) {
	p := g.parent
	g.parent = nil
	if p == nil {
		return
	}
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	for _, d := range p.Requests {
		if g.proven != "" {
			return
		}
		if parent == nil {
			g.ignore(ctx, d, "a parent run's request, in a run that no run started: it proves nothing here")
			continue
		}
		g.takeRequest(ctx, d, approval.Run{WorkflowID: parent.ID, RunID: parent.RunID}, p.Started)
	}
}

// verify runs the verification activity for d against this run.
func (g *approvalGate) verify(ctx workflow.Context, d ApprovalDecision, pol *approval.Policy, at time.Time) (approval.Verdict, error) {
	info := workflow.GetInfo(ctx)
	return g.verifyFor(ctx, d, approval.Run{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID}, pol, at)
}

// verifyFor runs the verification activity for d against run.
func (g *approvalGate) verifyFor(ctx workflow.Context, d ApprovalDecision, run approval.Run, pol *approval.Policy, at time.Time) (approval.Verdict, error) {
	var a *activities.Activities
	in := activities.VerifyApprovalInput{Decision: d, Run: run, Policy: pol, At: at}
	var v approval.Verdict
	err := workflow.ExecuteActivity(gateActivity(ctx, "verify the "+d.Decision+" of "+d.Approver), a.VerifyApproval, in).Get(ctx, &v)
	return v, err
}

// ignore records a decision that was not acted on.
func (g *approvalGate) ignore(ctx workflow.Context, d ApprovalDecision, why string) {
	g.state.Ignored = append(g.state.Ignored, IgnoredDecision{ApprovalDecision: d, At: workflow.Now(ctx), Reason: why})
	workflow.GetLogger(ctx).Warn("ignored an approval decision", "approver", d.Approver, "decision", d.Decision, "signer", d.Signer, "reason", why)
}

// settle records the gate's outcome once: the quorum's approval, a reject, or the timeout.
func (g *approvalGate) settle(ctx workflow.Context) {
	if !g.state.Waiting {
		return
	}
	g.state.Waiting = false
	out := g.ballot.Outcome()
	if out == "" {
		g.state.Decision = "timeout"
		return
	}
	deciders := g.ballot.Deciders()
	var comments []string
	for _, v := range g.ballot.Votes {
		if v.Comment == "" || (out == DecisionReject && v.Decision != DecisionReject) {
			continue
		}
		if len(deciders) > 1 {
			comments = append(comments, v.Approver+": "+v.Comment)
		} else {
			comments = append(comments, v.Comment)
		}
	}
	g.state.Decision, g.state.Approver, g.state.Comment, g.state.DecidedAt =
		out, strings.Join(deciders, ", "), strings.Join(comments, "; "), workflow.Now(ctx)
}

// parentRequest is what this run passes on to a gated child run of its own (a custom
// runbook's switchover): the signed request that proved its requester, taking a request that
// arrived while no gate was open first; nil while none proved one. The child verifies it again,
// against this run as the server records its parent (considerParentRequest).
func (g *approvalGate) parentRequest(ctx workflow.Context) *ParentRequest {
	for g.proven == "" {
		var d ApprovalDecision
		if !g.requests.ReceiveAsync(&d) {
			break
		}
		g.considerRequest(ctx, d)
	}
	if g.provenBy == nil {
		return nil
	}
	return &ParentRequest{Requests: []ApprovalDecision{*g.provenBy}, Started: workflow.GetInfo(ctx).WorkflowStartTime}
}
