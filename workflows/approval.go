package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
)

// Approval: one mechanism for every runbook that must wait for a person before a risky step.
// A decision arrives as the signal "approve" (from `pigwf approve --signal`, the Web UI's "Send a
// Signal", `temporal workflow signal`, or the ChatOps bridge) or as the Update "approve", whose
// validator answers the sender at once. With no decision before the timeout the run ends with
// nothing changed.
//
// Since the verified-approvals change (approvalverified.go), who may approve comes from the
// worker's approvals file, never from the run's input, and a decision counts only when its
// signature verifies on the worker (package approval); an unsigned one is recorded and not acted
// on. Runs that reached their gate before the change keep the allow-list of their input
// (await, below), so their histories replay.
const (
	ApproveSignal = "approve"
	ApproveUpdate = "approve"
	ApprovalQuery = "approval"
	// RequestSignal carries the requester's signed statement that they started the run (`pigwf
	// start` sends it right after the start): what four eyes knows the requester by.
	RequestSignal = "request"

	DecisionApprove = approval.Approve
	DecisionReject  = approval.Reject
)

// ChatCommand is the ChatOps bridge's chat command (Slack's slash command).
const ChatCommand = "/pigwf"

// ApproveCommand is the command line that approves run id; runs, `pigwf pending` and notices
// tell approvers this, so it is written here once.
func ApproveCommand(id string) string { return "pigwf approve " + id + " --by NAME" }

// ChatApproveCommand is what an approver types in chat to approve run id.
func ChatApproveCommand(id string) string { return ChatCommand + " approve " + id }

// ApprovalDecision is the payload of the signal and the update:
// {"decision": "approve", "approver": "alice", "comment": "go ahead"}, and the signature fields
// `pigwf approve` and the ChatOps bridge add (approval.Decision: the one wire contract).
type ApprovalDecision = approval.Decision

// ApprovalPolicy is how long the run waits and, in runs from before verified approvals, who may
// decide. Newer runs ignore Approvers (the starter leaves it empty): their approvers come from the
// worker's approvals file.
type ApprovalPolicy struct {
	Approvers []string      `json:"approvers"` // before verified approvals only: the allow-list
	Timeout   time.Duration `json:"timeout"`
}

// DefaultApprovalTimeout applies when neither the inventory nor the command line sets one.
const DefaultApprovalTimeout = time.Hour

// IgnoredDecision is a decision that was not acted on, and why.
type IgnoredDecision struct {
	ApprovalDecision
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// ApprovalState is what the approval query returns and what ends up in the run's result:
// who decided, when, with what comment; what was asked; what was ignored.
type ApprovalState struct {
	Waiting   bool              `json:"waiting"`
	Plan      string            `json:"plan"` // what the run will do once approved
	Approvers []string          `json:"approvers"`
	Requested time.Time         `json:"requested,omitzero"`
	Deadline  time.Time         `json:"deadline,omitzero"`
	Decision  string            `json:"decision,omitempty"` // approve | reject | timeout
	Approver  string            `json:"approver,omitempty"`
	Comment   string            `json:"comment,omitempty"`
	DecidedAt time.Time         `json:"decided_at,omitzero"`
	Ignored   []IgnoredDecision `json:"ignored,omitempty"`

	// Verified approvals (empty in runs from before them):
	Policy      *approval.Policy `json:"policy,omitempty"`       // the worker's policy the gate applied
	RequestedBy string           `json:"requested_by,omitempty"` // the requester, as their signed request proved ("" unproven)
	Votes       []approval.Vote  `json:"votes,omitempty"`        // the verified decisions that counted
}

// Approved reports whether the run may go on.
func (s ApprovalState) Approved() bool { return s.Decision == DecisionApprove }

// Summary is one line for logs and results.
func (s ApprovalState) Summary() string {
	switch s.Decision {
	case DecisionApprove, DecisionReject:
		verb := map[string]string{DecisionApprove: "approved", DecisionReject: "rejected"}[s.Decision]
		out := fmt.Sprintf("%s by %s at %s", verb, s.Approver, s.DecidedAt.UTC().Format(time.RFC3339))
		if s.Comment != "" {
			out += fmt.Sprintf(" (%q)", s.Comment)
		}
		return out
	case "timeout":
		return fmt.Sprintf("no decision by %s: the approval timed out", s.Deadline.UTC().Format(time.RFC3339))
	}
	if s.Policy == nil {
		return "waiting for approval from " + strings.Join(s.Approvers, ", ")
	}
	out := "waiting for approval: " + s.Policy.Describe()
	var so []string
	for _, v := range s.Votes {
		if v.Decision == DecisionApprove {
			so = append(so, v.Approver)
		}
	}
	if len(so) > 0 {
		out += fmt.Sprintf("; approved so far by %s (%d of %d)", strings.Join(so, ", "), len(so), max(s.Policy.Quorum, 1))
	}
	return out
}

// validateDecision checks a decision against the input's allow-list (runs from before verified
// approvals); "" means it may be acted on.
func validateDecision(p ApprovalPolicy, d ApprovalDecision) string {
	if d.Decision != DecisionApprove && d.Decision != DecisionReject {
		return fmt.Sprintf("decision %q is neither %q nor %q", d.Decision, DecisionApprove, DecisionReject)
	}
	if strings.TrimSpace(d.Approver) == "" {
		return "no approver named"
	}
	for _, a := range p.Approvers {
		if a == d.Approver {
			return ""
		}
	}
	return fmt.Sprintf("%s is not an approver for this run (approvers: %s)", d.Approver, strings.Join(p.Approvers, ", "))
}

// approvalStep is the approval gate's step in a run's progress; it runs no activity.
var approvalStep = step{name: "approval"}

// approvalGate holds a run's approval state; its query is registered at the start of the run so
// `pigwf pending` can see every run's state.
type approvalGate struct {
	state  ApprovalState
	policy ApprovalPolicy // before verified approvals: the input's allow-list
	ch     workflow.ReceiveChannel
	// carried are decisions discardPending dropped; the next await records them as ignored.
	carried []IgnoredDecision

	// Verified approvals (approvalverified.go).
	requests workflow.ReceiveChannel // the requester's signed request
	claimed  string                  // the requester the input names (believed only under allow_unverified)
	proven   string                  // the requester a verified request proved, for every gate of the run
	parent   *ParentRequest          // the parent's requests, taken at the first gate (a child run)
	provenBy *ApprovalDecision       // this run's own request that proved the requester (parentRequest)
	ballot   approval.Ballot
	open     bool // taking decisions
	inflight int  // decisions being verified
	// verifyingRequest counts requests being verified; waitForRequest (runs since
	// approvalWaitsForRequestChange) makes a decision that arrives meanwhile wait for the
	// requester instead of being refused for not knowing them.
	verifyingRequest int
	waitForRequest   bool
}

// newApprovalGate makes the run's gate; requestedBy is the requester the input names.
func newApprovalGate(ctx workflow.Context, requestedBy string) (*approvalGate, error) {
	g := &approvalGate{ch: workflow.GetSignalChannel(ctx, ApproveSignal), requests: workflow.GetSignalChannel(ctx, RequestSignal), claimed: requestedBy}
	if err := workflow.SetQueryHandler(ctx, ApprovalQuery, func() (ApprovalState, error) { return g.state, nil }); err != nil {
		return nil, err
	}
	return g, nil
}

// await is the gate of runs from before verified approvals (their histories replay through it):
// it blocks until an approver of the input's allow-list decides or the timeout passes. Decisions
// from anyone else are recorded in Ignored. The returned state says what happened.
func (g *approvalGate) await(ctx workflow.Context, track *tracker, plan string, p ApprovalPolicy) (ApprovalState, error) {
	if p.Timeout <= 0 {
		p.Timeout = DefaultApprovalTimeout
	}
	approvers := append([]string(nil), p.Approvers...)
	sort.Strings(approvers)
	p.Approvers = approvers
	g.policy = p
	now := workflow.Now(ctx)
	g.state = ApprovalState{Waiting: true, Plan: plan, Approvers: approvers, Requested: now, Deadline: now.Add(p.Timeout), Ignored: g.carried}
	g.carried = nil
	prevPhase := track.p.Phase
	track.waiting = &awaiting{plan: plan, approvers: approvers, deadline: g.state.Deadline}
	track.setPhase(PhaseWaitingForApproval)

	// The Update gives the sender an immediate answer; its validator rejects what the signal
	// would only record.
	decided := false
	accept := func(d ApprovalDecision) {
		g.state.Waiting = false
		g.state.Decision, g.state.Approver, g.state.Comment, g.state.DecidedAt = d.Decision, d.Approver, d.Comment, workflow.Now(ctx)
		decided = true
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, ApproveUpdate,
		func(ctx workflow.Context, d ApprovalDecision) (ApprovalState, error) {
			accept(d)
			return g.state, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ApprovalDecision) error {
			if !g.state.Waiting || decided {
				return fmt.Errorf("this run is not waiting for approval (%s)", g.state.Summary())
			}
			if why := validateDecision(g.policy, d); why != "" {
				return fmt.Errorf("%s", why)
			}
			return nil
		}})
	if err != nil {
		return g.state, err
	}

	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimerWithOptions(timerCtx, p.Timeout, workflow.TimerOptions{
		Summary: "waiting for approval until " + g.state.Deadline.UTC().Format("2006-01-02 15:04 MST")})
	for !decided {
		if err := workflow.Await(ctx, func() bool { return decided || g.ch.Len() > 0 || timer.IsReady() }); err != nil {
			return g.state, err
		}
		if decided {
			break
		}
		if g.ch.Len() > 0 {
			var d ApprovalDecision
			g.ch.Receive(ctx, &d)
			if why := validateDecision(p, d); why != "" {
				g.state.Ignored = append(g.state.Ignored, IgnoredDecision{ApprovalDecision: d, At: workflow.Now(ctx), Reason: why})
				workflow.GetLogger(ctx).Warn("ignored an approval decision", "approver", d.Approver, "decision", d.Decision, "reason", why)
				continue
			}
			accept(d)
			break
		}
		break // the timer fired
	}
	if !decided {
		g.state.Waiting = false
		g.state.Decision = "timeout"
	}
	track.waiting = nil
	track.setPhase(prevPhase)
	return g.state, nil
}

// decide is the gate as a step of the run: the step shows the plan while the run waits, then the
// decision, failed when it was not an approval. note, when given, tells the chat that the run
// waits (with the approvers filled in).
func (g *approvalGate) decide(ctx workflow.Context, track *tracker, s step, plan string, p ApprovalPolicy, note *activities.Notification) (ApprovalState, error) {
	track.set(s, StateRunning, plan)
	var st ApprovalState
	var err error
	if workflow.GetVersion(ctx, verifiedApprovalsChange, workflow.DefaultVersion, verifiedApprovalsVersion) == workflow.DefaultVersion {
		if note != nil {
			n := *note
			n.Approvers = p.Approvers
			notify(ctx, n)
		}
		st, err = g.await(ctx, track, plan, p)
	} else {
		st, err = g.awaitVerified(ctx, track, plan, p.Timeout, note)
	}
	if err != nil {
		return st, err
	}
	track.approvalEnded(ctx, st)
	if st.Approved() {
		track.set(s, StateUnchanged, st.Summary())
	} else {
		track.set(s, StateFailed, st.Summary())
	}
	return st, nil
}

// notApproved is the outcome of a run whose approval was not given: rejected or timed out.
func notApproved(s ApprovalState) string {
	return map[string]string{DecisionReject: "rejected", "timeout": "timed out"}[s.Decision]
}

// discardPending drops decisions that arrived while the run was not waiting (a duplicate of an
// earlier approval, say), so a later gate of the same run acts only on decisions sent for it; the
// next await records them as ignored.
func (g *approvalGate) discardPending(ctx workflow.Context) {
	for {
		var d ApprovalDecision
		if !g.ch.ReceiveAsync(&d) {
			return
		}
		g.carried = append(g.carried, IgnoredDecision{ApprovalDecision: d, At: workflow.Now(ctx),
			Reason: "sent while this run was not waiting for a decision"})
	}
}
