package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// Approval: one mechanism for every runbook that must wait for a person before a risky step.
// A decision arrives as the signal "approve" (from `pigwf approve`, the Web UI's "Send a Signal",
// `temporal workflow signal`, or the ChatOps bridge) or as the Update "approve", whose validator
// answers the sender at once. Only allow-listed approvers are acted on; anyone else's decision is
// recorded and ignored. With no decision before the timeout the run ends with nothing changed.
const (
	ApproveSignal = "approve"
	ApproveUpdate = "approve"
	ApprovalQuery = "approval"

	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// ChatCommand is the ChatOps bridge's chat command (Slack's slash command).
const ChatCommand = "/pigwf"

// ApproveCommand is the command line that approves run id; runs, `pigwf pending` and notices
// tell approvers this, so it is written here once.
func ApproveCommand(id string) string { return "pigwf approve " + id + " --by NAME" }

// ChatApproveCommand is what an approver types in chat to approve run id.
func ChatApproveCommand(id string) string { return ChatCommand + " approve " + id }

// ApprovalDecision is the payload of the signal and the update:
// {"decision": "approve", "approver": "alice", "comment": "go ahead"}.
type ApprovalDecision struct {
	Decision string `json:"decision"`
	Approver string `json:"approver"`
	Comment  string `json:"comment,omitempty"`
}

// ApprovalPolicy says who may decide and how long the run waits.
type ApprovalPolicy struct {
	Approvers []string      `json:"approvers"` // allow-list; empty means nobody can approve
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
	return "waiting for approval from " + strings.Join(s.Approvers, ", ")
}

// validateDecision checks a decision against the policy; "" means it may be acted on.
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
	policy ApprovalPolicy
	ch     workflow.ReceiveChannel
	// carried are decisions discardPending dropped; the next await records them as ignored.
	carried []IgnoredDecision
}

func newApprovalGate(ctx workflow.Context) (*approvalGate, error) {
	g := &approvalGate{ch: workflow.GetSignalChannel(ctx, ApproveSignal)}
	if err := workflow.SetQueryHandler(ctx, ApprovalQuery, func() (ApprovalState, error) { return g.state, nil }); err != nil {
		return nil, err
	}
	return g, nil
}

// await blocks until an allowed approver decides or the timeout passes. Decisions from anyone
// else are recorded in Ignored. The returned state says what happened.
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

// decide is the gate as a step of the run: the step shows the plan while the run waits (await),
// then the decision, failed when it was not an approval.
func (g *approvalGate) decide(ctx workflow.Context, track *tracker, s step, plan string, p ApprovalPolicy) (ApprovalState, error) {
	track.set(s, StateRunning, plan)
	st, err := g.await(ctx, track, plan, p)
	if err != nil {
		return st, err
	}
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
