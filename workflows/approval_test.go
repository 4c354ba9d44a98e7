package workflows

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/approval"
)

// The tests' identities: real ed25519 keys made once per test binary, and the approvals file the
// workflow tests' worker reads by default (alice and bob approve anything, no four eyes, quorum
// 1: what the runbooks' own tests need). The gate's activities run for real against it.
var (
	testKeys      = map[string]approval.Key{}
	testPubs      = map[string]string{}
	testApprovals activities.ApprovalTrust
	testKeyDir    string
)

// The run every test signs for: the test environment's workflow and run IDs.
const (
	testWorkflowID = "default-test-workflow-id"
	testRunID      = "default-test-run-id"
)

const defaultTestPolicies = `  - { cluster: "*", approvers: [alice, bob] }` + "\n"

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "pigwf-workflow-keys-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		testKeyDir = dir
		for _, n := range []string{"alice", "bob", "carol", "chatops", "mallory"} {
			pub, _, err := approval.CreateKey(dir, n)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if testKeys[n], err = approval.LoadKey(n, filepath.Join(dir, n)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			testPubs[n] = pub
		}
		if testApprovals, err = writeApprovals(dir, defaultTestPolicies); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// writeApprovals writes an approvals file trusting alice, bob and carol's keys (mallory has a key
// the worker does not know) and chatops as a signer for dave, with policies (YAML list items).
func writeApprovals(dir, policies string) (activities.ApprovalTrust, error) {
	text := "keys:\n"
	for _, n := range []string{"alice", "bob", "carol"} {
		text += fmt.Sprintf("  %s: [%q]\n", n, testPubs[n])
	}
	text += fmt.Sprintf("signers:\n  chatops: { key: %q, vouch_for: [dave] }\npolicies:\n%s", testPubs["chatops"], policies)
	f, err := os.CreateTemp(dir, "approvals-*.yml")
	if err != nil {
		return activities.ApprovalTrust{}, err
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		return activities.ApprovalTrust{}, err
	}
	if _, err := approval.Load(f.Name()); err != nil {
		return activities.ApprovalTrust{}, err
	}
	return activities.ApprovalTrust{File: f.Name()}, nil
}

func approvalsWith(t *testing.T, policies string) activities.ApprovalTrust {
	t.Helper()
	tr, err := writeApprovals(t.TempDir(), policies)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// signedFor signs d for run workflowID/testRunID now, as `pigwf approve` would: with d.Signer's
// key when set (a signer vouching for d.Approver), else the approver's own. A name with no test
// key stays unsigned.
func signedFor(workflowID string, d ApprovalDecision) ApprovalDecision {
	key, ok := testKeys[d.Approver]
	if d.Signer != "" {
		key, ok = testKeys[d.Signer]
	}
	if ok {
		if err := approval.Sign(&d, key, workflowID, testRunID, time.Now()); err != nil {
			panic(err)
		}
	}
	return d
}

func signed(d ApprovalDecision) ApprovalDecision { return signedFor(testWorkflowID, d) }

// signal sends d, signed when its approver has a test key, after a delay.
func signal(env *testsuite.TestWorkflowEnvironment, after time.Duration, d ApprovalDecision) {
	signalFor(env, after, testWorkflowID, d)
}

func signalFor(env *testsuite.TestWorkflowEnvironment, after time.Duration, workflowID string, d ApprovalDecision) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(ApproveSignal, signedFor(workflowID, d)) }, after)
}

// bareSignal sends d unsigned, as the Web UI or `temporal workflow signal` does.
func bareSignal(env *testsuite.TestWorkflowEnvironment, after time.Duration, d ApprovalDecision) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(ApproveSignal, d) }, after)
}

// requestSignal sends the requester's signed request, as `pigwf start` does right after the start.
func requestSignal(env *testsuite.TestWorkflowEnvironment, requester string) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RequestSignal, signed(ApprovalDecision{Decision: approval.Request, Approver: requester}))
	}, time.Second)
}

// update sends d as the Update and returns what the sender hears: refused by the validator, or
// the handler's answer.
type updateAnswer struct {
	refused error
	state   ApprovalState
	err     error
	done    bool
}

func update(env *testsuite.TestWorkflowEnvironment, after time.Duration, id string, d ApprovalDecision, ans *updateAnswer) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ApproveUpdate, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { ans.refused, ans.done = err, true },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				ans.err, ans.done = err, true
				if s, ok := v.(ApprovalState); ok {
					ans.state = s
				}
			},
		}, d)
	}, after)
}

// queryApproval reads the approval query at a delay into st.
func queryApproval(t *testing.T, env *testsuite.TestWorkflowEnvironment, after time.Duration, st *ApprovalState) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ApprovalQuery)
		if err != nil {
			t.Error(err)
			return
		}
		if err := v.Get(st); err != nil {
			t.Error(err)
		}
	}, after)
}

// switchResult is the run's result, from the failure's details when it failed.
func switchResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) (SwitchoverResult, error) {
	t.Helper()
	return runOutcome[SwitchoverResult](t, env)
}

// runOutcome is a finished run's result and error; a failed run's result comes from its
// failure's details (what track.fail puts there).
func runOutcome[R any](t *testing.T, env *testsuite.TestWorkflowEnvironment) (R, error) {
	t.Helper()
	var res R
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.HasDetails() {
		if derr := app.Details(&res); derr != nil {
			t.Fatal(derr)
		}
	} else if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, err
}

func ignoredWith(st ApprovalState, approver, reason string) bool {
	for _, i := range st.Ignored {
		if i.Approver == approver && strings.Contains(i.Reason, reason) {
			return true
		}
	}
	return false
}

// A bare decision (the Web UI's signal, `temporal workflow signal`) is recorded and not acted on;
// the signed one that follows switches. The policy comes from the worker, not the input: the
// input's approvers (alice, bob) do not include carol, who approves.
func TestVerifiedUnsignedIsRecordedNotActedOn(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: pg-test, runbook: switchover, approvers: [carol] }`+"\n"))
	bareSignal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "carol", Comment: "from the web ui"})
	var mid ApprovalState
	queryApproval(t, env, 2*time.Minute, &mid)
	signal(env, 3*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "the input's approver"})
	signal(env, 4*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "carol", Comment: "signed"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if !mid.Waiting || !ignoredWith(mid, "carol", "not signed") || f.notes[0] != "approval-requested" {
		t.Errorf("after the bare decision: %+v", mid)
	}
	ap := res.Approval
	if ap.Approver != "carol" || ap.Comment != "signed" || ap.Policy == nil || !strings.Contains(ap.Policy.Source, "policies[0]") {
		t.Errorf("approval %+v", ap)
	}
	if !ignoredWith(ap, "alice", "alice is not an approver for this run (approvers: carol") || len(ap.Ignored) != 2 {
		t.Errorf("ignored %+v", ap.Ignored)
	}
	if len(ap.Votes) != 1 || !strings.Contains(ap.Votes[0].Via, "carol's key SHA256:") {
		t.Errorf("votes %+v", ap.Votes)
	}
}

// Four eyes: the requester, proven by their signed request, may not approve; another approver may.
func TestVerifiedFourEyes(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob], four_eyes: true }`+"\n"))
	requestSignal(env, "alice")
	var refused updateAnswer
	update(env, time.Minute, "u1", signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice"}), &refused)
	signal(env, 2*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "by signal"})
	signal(env, 3*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if refused.refused == nil || !strings.Contains(refused.refused.Error(), "four eyes: alice requested this run and may not approve it") {
		t.Errorf("alice's Update: %+v", refused)
	}
	if res.Approval.Approver != "bob" || res.Approval.RequestedBy != "alice" || !ignoredWith(res.Approval, "alice", "four eyes: alice requested this run") {
		t.Errorf("approval %+v", res.Approval)
	}
}

// An Update sent the moment the gate opens, while the run's signed request is still being verified
// (`pigwf approve` right after `pigwf pending` showed the run): it waits for the requester instead
// of being refused as "requester unknown". The requester's own approval sent in that window is
// still refused, once the request proves who they are.
func TestVerifiedUpdateWhileTheRequestIsVerified(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob], four_eyes: true }`+"\n"))
	var own, other updateAnswer
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RequestSignal, signed(ApprovalDecision{Decision: approval.Request, Approver: "alice"}))
		for _, u := range []struct {
			id  string
			who string
			ans *updateAnswer
		}{{"u-alice", "alice", &own}, {"u-bob", "bob", &other}} {
			env.UpdateWorkflow(ApproveUpdate, u.id, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { u.ans.refused, u.ans.done = err, true },
				OnAccept: func() {},
				OnComplete: func(v any, err error) {
					u.ans.err, u.ans.done = err, true
					if s, ok := v.(ApprovalState); ok {
						u.ans.state = s
					}
				},
			}, signed(ApprovalDecision{Decision: DecisionApprove, Approver: u.who}))
		}
	}, time.Second)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if other.refused != nil || other.err != nil || other.state.Approver != "bob" {
		t.Errorf("bob's Update, sent while the request was verified: %+v", other)
	}
	if own.refused != nil || own.err == nil || !strings.Contains(own.err.Error(), "four eyes: alice requested this run and may not approve it") {
		t.Errorf("alice's own Update: %+v", own)
	}
	if res.Approval.Approver != "bob" || res.Approval.RequestedBy != "alice" {
		t.Errorf("approval %+v", res.Approval)
	}
}

// Four eyes with no proven requester (the input's requested_by is only a claim): nobody can
// approve, and the run times out with nothing changed. A request signed by a signer, or by
// someone with no key the worker knows, proves nothing.
func TestVerifiedFourEyesNeedsAProvenRequester(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob], four_eyes: true }`+"\n"))
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(RequestSignal, signed(ApprovalDecision{Decision: approval.Request, Approver: "mallory"}))
		env.SignalWorkflow(RequestSignal, signed(ApprovalDecision{Decision: approval.Request, Approver: "carol", Signer: "chatops"}))
	}, time.Second)
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "the approval timed out") || f.executed != 0 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if !ignoredWith(res.Approval, "bob", "requester is unknown") || res.Approval.RequestedBy != "" ||
		!ignoredWith(res.Approval, "mallory", "mallory has no key") || !ignoredWith(res.Approval, "carol", "requester's own key") {
		t.Errorf("ignored %+v", res.Approval.Ignored)
	}
}

// A quorum of two needs two distinct verified approvers; a second vote by the same one does not
// count, and the Update tells its sender where the run stands.
func TestVerifiedQuorum(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: pg-*, approvers: [alice, bob, carol], quorum: 2, four_eyes: true }`+"\n"))
	requestSignal(env, "alice")
	var first, again updateAnswer
	update(env, time.Minute, "u1", signed(ApprovalDecision{Decision: DecisionApprove, Approver: "bob", Comment: "fine"}), &first)
	update(env, 2*time.Minute, "u2", signed(ApprovalDecision{Decision: DecisionApprove, Approver: "bob"}), &again)
	var mid ApprovalState
	queryApproval(t, env, 3*time.Minute, &mid)
	signal(env, 4*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "carol", Comment: "ok"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if first.refused != nil || first.err != nil || !first.state.Waiting || !strings.Contains(first.state.Summary(), "approved so far by bob (1 of 2)") {
		t.Errorf("bob's first Update: %+v, summary %q", first, first.state.Summary())
	}
	if again.refused == nil || !strings.Contains(again.refused.Error(), "bob already approved; the quorum needs 2 distinct approvers") {
		t.Errorf("bob's second Update: %+v", again)
	}
	if !mid.Waiting || f.executed != 1 || len(mid.Votes) != 1 {
		t.Errorf("after bob alone: %+v", mid)
	}
	ap := res.Approval
	if ap.Approver != "bob, carol" || ap.Comment != "bob: fine; carol: ok" || len(ap.Votes) != 2 || !strings.HasPrefix(ap.Summary(), "approved by bob, carol at ") {
		t.Errorf("approval %+v", ap)
	}
}

// One verified reject rejects, even after approvals.
func TestVerifiedOneRejectRejects(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [alice, bob, carol], quorum: 2 }`+"\n"))
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	signal(env, 2*time.Minute, ApprovalDecision{Decision: DecisionReject, Approver: "carol", Comment: "not today"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err == nil || !strings.Contains(err.Error(), `rejected by carol at`) || !strings.Contains(err.Error(), `"not today"`) || f.executed != 0 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if res.Outcome != "rejected" {
		t.Errorf("outcome %q", res.Outcome)
	}
}

// What a signature does not prove is recorded and not acted on: another run's signature, a
// changed decision, an unknown key, a signer vouching beyond its list. A signer vouching for a
// person on its list counts (the ChatOps bridge).
func TestVerifiedSignaturesThatProveNothing(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [bob, dave] }`+"\n"))
	env.RegisterDelayedCallback(func() {
		other := signedFor("switchover/pg-test", ApprovalDecision{Decision: DecisionApprove, Approver: "bob", Comment: "other run"})
		turned := signed(ApprovalDecision{Decision: DecisionReject, Approver: "bob", Comment: "turned"})
		turned.Decision = DecisionApprove
		vouched := signed(ApprovalDecision{Decision: DecisionApprove, Approver: "bob", Signer: "chatops", Comment: "vouched"})
		stranger := signed(ApprovalDecision{Decision: DecisionApprove, Approver: "bob", Signer: "mallory", Comment: "stranger"})
		for _, d := range []ApprovalDecision{other, turned, vouched, stranger} {
			env.SignalWorkflow(ApproveSignal, d)
		}
	}, time.Minute)
	signal(env, 2*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "dave", Signer: "chatops", Comment: "via chat"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	ap := res.Approval
	for _, want := range [][2]string{
		{"bob", "not for this run"}, {"bob", "bad signature"}, {"bob", "signer chatops may not sign for bob"}, {"bob", "mallory is not a trusted signer"},
	} {
		if !ignoredWith(ap, want[0], want[1]) {
			t.Errorf("not ignored: %s with %q: %+v", want[0], want[1], ap.Ignored)
		}
	}
	if ap.Approver != "dave" || len(ap.Votes) != 1 || !strings.HasPrefix(ap.Votes[0].Via, "signer chatops") {
		t.Errorf("approval %+v", ap)
	}
}

// An unsigned Update is refused by the validator; a signed one whose signature fails is taken by
// the handler, verified, refused with the reason and recorded.
func TestVerifiedUpdatePath(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	var unsigned, forged, good updateAnswer
	update(env, time.Minute, "u1", ApprovalDecision{Decision: DecisionApprove, Approver: "alice"}, &unsigned)
	forgedD := signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "original"})
	forgedD.Comment = "edited"
	update(env, 2*time.Minute, "u2", forgedD, &forged)
	update(env, 3*time.Minute, "u3", signed(ApprovalDecision{Decision: DecisionApprove, Approver: "alice", Comment: "via update"}), &good)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if unsigned.refused == nil || !strings.Contains(unsigned.refused.Error(), "not signed") {
		t.Errorf("unsigned Update: %+v", unsigned)
	}
	if forged.refused != nil || forged.err == nil || !strings.Contains(forged.err.Error(), "bad signature") {
		t.Errorf("forged Update: %+v", forged)
	}
	if good.err != nil || good.state.Decision != DecisionApprove || good.state.Approver != "alice" || good.state.Waiting {
		t.Errorf("good Update: %+v", good)
	}
	if !ignoredWith(res.Approval, "alice", "bad signature") || len(res.Approval.Ignored) != 1 {
		t.Errorf("ignored %+v", res.Approval.Ignored)
	}
}

// Without an approvals file nobody can approve: every decision is recorded and the run times
// out with nothing changed.
func TestVerifiedNoApprovalsFile(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, activities.ApprovalTrust{File: filepath.Join(t.TempDir(), "approvals.yml")})
	signal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "alice"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "the approval timed out") || f.executed != 0 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if !ignoredWith(res.Approval, "alice", "nobody may approve: no approvals file at") {
		t.Errorf("ignored %+v", res.Approval.Ignored)
	}
}

// allow_unverified (lab only) acts on bare names, the requester's claimed name included.
func TestVerifiedAllowUnverified(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnvWith(t, f, approvalsWith(t, `  - { cluster: "*", approvers: [carol, dave], four_eyes: true, allow_unverified: true }`+"\n"))
	bareSignal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "dave"})
	in := switchoverInput()
	in.RequestedBy = "dave"
	bareSignal(env, 2*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "carol"})
	env.ExecuteWorkflow(Switchover, in)
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if res.Approval.Approver != "carol" || !ignoredWith(res.Approval, "dave", "four eyes: dave requested") || !strings.Contains(res.Approval.Votes[0].Via, "unverified") {
		t.Errorf("approval %+v", res.Approval)
	}
}

// Runs that reached their gate before verified approvals keep the input's allow-list: names are
// taken at their word, as they were (their histories replay through this path).
func TestApprovalBeforeVerifiedApprovals(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	env.OnGetVersion(verifiedApprovalsChange, workflow.DefaultVersion, verifiedApprovalsVersion).Return(workflow.DefaultVersion)
	bareSignal(env, time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "mallory"})
	bareSignal(env, 3*time.Minute, ApprovalDecision{Decision: DecisionApprove, Approver: "bob"})
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err != nil || f.executed != 1 {
		t.Fatalf("err %v, executed %d", err, f.executed)
	}
	if res.Approval.Approver != "bob" || res.Approval.Policy != nil || len(res.Approval.Ignored) != 1 ||
		!strings.Contains(res.Approval.Ignored[0].Reason, "mallory is not an approver") {
		t.Errorf("approval = %+v", res.Approval)
	}
}

// A signal whose payload is not a decision is dropped and never blocks the gate: the run still
// times out at its deadline, changing nothing.
func TestVerifiedCorruptSignalDoesNotBlock(t *testing.T) {
	f := &switchFake{}
	env := newSwitchEnv(t, f)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(ApproveSignal, 42) }, time.Minute)
	env.ExecuteWorkflow(Switchover, switchoverInput())
	res, err := switchResult(t, env)
	if err == nil || !strings.Contains(err.Error(), "the approval timed out") || f.executed != 0 || res.Approval.Decision != "timeout" {
		t.Fatalf("err %v, executed %d, approval %+v", err, f.executed, res.Approval)
	}
}
