package chatops

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/workflows"
)

// fakeBackend stands in for Temporal behind the narrow Backend interface: it applies the same
// allow-list the workflow's validator does.
type fakeBackend struct {
	approvers map[string]bool
	decisions []workflows.ApprovalDecision
	signers   []string // who signed each decision
}

// runURL is the fake run's page.
const runURL = "http://127.0.0.1:8233/namespaces/default/workflows/switchover%2Fpg-test/r1/user-metadata"

func (f *fakeBackend) Decide(_ context.Context, id string, d workflows.ApprovalDecision, signer *approval.Key) (Decided, error) {
	if signer == nil {
		return Decided{}, &RefusedError{Reason: "not signed"}
	}
	if id != "switchover/pg-test" {
		return Decided{}, &NotFoundError{WorkflowID: id}
	}
	if !f.approvers[d.Approver] {
		return Decided{}, &RefusedError{Reason: d.Approver + " is not an approver for this run"}
	}
	f.decisions = append(f.decisions, d)
	f.signers = append(f.signers, signer.Name)
	st := workflows.ApprovalState{Decision: d.Decision, Approver: d.Approver, Comment: d.Comment, DecidedAt: time.Unix(1_800_000_000, 0)}
	return Decided{State: st, RunURL: runURL}, nil
}

func (f *fakeBackend) Status(_ context.Context, id string) (Report, error) {
	if id != "switchover/pg-test" {
		return Report{}, &NotFoundError{WorkflowID: id}
	}
	return Report{Text: "switchover/pg-test (Switchover) is running, phase waiting for approval", RunURL: runURL}, nil
}

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

func sign(ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// bridgeKey is the bridge's own signing key.
func bridgeKey() *approval.Key {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return &approval.Key{Name: "chatops", Signer: signer}
}

func newServer(now time.Time) (*Server, *fakeBackend) {
	fb := &fakeBackend{approvers: map[string]bool{"alice": true}}
	s := New(Config{SlackSigningSecret: secret, WebhookToken: "tok-123", Users: map[string]string{"U111": "alice", "U222": "mallory"}, Signer: bridgeKey()}, fb, nil)
	s.now = func() time.Time { return now }
	return s, fb
}

func slackReq(ts, body, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/slack/command", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", sig)
	return r
}

func form(user, text string) string {
	return url.Values{"command": {"/pigwf"}, "user_id": {user}, "user_name": {"someone"}, "text": {text}}.Encode()
}

func TestVerifySlackSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	body := []byte(form("U111", "approve switchover/pg-test"))
	cases := []struct {
		n       int
		name    string
		ts, sig string
		at      time.Time
		wantErr string
	}{
		{1, "valid", ts, sign(ts, string(body)), now, ""},
		{2, "valid at the edge of the window", ts, sign(ts, string(body)), now.Add(4*time.Minute + 59*time.Second), ""},
		{3, "bad signature", ts, sign(ts, string(body)+"x"), now, "bad signature"},
		{4, "signature for another timestamp", ts, sign(fmt.Sprint(now.Unix()-1), string(body)), now, "bad signature"},
		{5, "expired", ts, sign(ts, string(body)), now.Add(6 * time.Minute), "expired or replayed"},
		{6, "from the future", ts, sign(ts, string(body)), now.Add(-6 * time.Minute), "expired or replayed"},
		{7, "no timestamp", "", sign("", string(body)), now, "malformed X-Slack-Request-Timestamp"},
	}
	for _, c := range cases {
		err := VerifySlackSignature(secret, c.ts, body, c.sig, c.at, 5*time.Minute)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("case %d (%s): err = %v, want %q", c.n, c.name, err, c.wantErr)
		}
	}
}

func TestSlackCommands(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	s, fb := newServer(now)
	h := s.Handler()
	do := func(r *http.Request) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var rep slackReply
		json.Unmarshal(w.Body.Bytes(), &rep)
		return w.Code, rep.Text
	}

	body := form("U111", "approve switchover/pg-test all clear")
	code, text := do(slackReq(ts, body, sign(ts, body)))
	if code != 200 || !strings.Contains(text, "approved by alice") || len(fb.decisions) != 1 || fb.decisions[0].Comment != "all clear" {
		t.Fatalf("valid approve: %d %q %+v", code, text, fb.decisions)
	}
	// The bridge vouches for the chat user's approver with its own key.
	if fb.decisions[0].Approver != "alice" || fb.signers[0] != "chatops" {
		t.Errorf("the decision was not carried as the bridge's for alice: %+v signed by %v", fb.decisions[0], fb.signers)
	}
	if !strings.HasSuffix(text, "\n"+runURL) {
		t.Errorf("the approve reply does not end with the run's page: %q", text)
	}
	// The same signed request again: a replay.
	code, text = do(slackReq(ts, body, sign(ts, body)))
	if code != 401 || !strings.Contains(text, "replay") || len(fb.decisions) != 1 {
		t.Errorf("replay: %d %q, decisions %d", code, text, len(fb.decisions))
	}
	// Badly signed.
	body2 := form("U111", "reject switchover/pg-test")
	code, text = do(slackReq(ts, body2, sign(ts, body2+"tampered")))
	if code != 401 || len(fb.decisions) != 1 {
		t.Errorf("bad signature: %d %q", code, text)
	}
	// Expired (an old, correctly signed request).
	old := fmt.Sprint(now.Add(-10 * time.Minute).Unix())
	code, text = do(slackReq(old, body2, sign(old, body2)))
	if code != 401 || !strings.Contains(text, "expired") || len(fb.decisions) != 1 {
		t.Errorf("expired: %d %q", code, text)
	}
	// Unknown chat user.
	body3 := form("U999", "approve switchover/pg-test")
	code, text = do(slackReq(ts, body3, sign(ts, body3)))
	if code != 403 || !strings.Contains(text, "not mapped to a pigwf approver") || len(fb.decisions) != 1 {
		t.Errorf("unknown user: %d %q", code, text)
	}
	// A mapped user the run does not allow.
	body4 := form("U222", "approve switchover/pg-test")
	code, text = do(slackReq(ts, body4, sign(ts, body4)))
	if code != 403 || !strings.Contains(text, "mallory is not an approver") || len(fb.decisions) != 1 {
		t.Errorf("not an approver: %d %q", code, text)
	}
	// Unknown run.
	body5 := form("U111", "approve switchover/pg-other")
	code, _ = do(slackReq(ts, body5, sign(ts, body5)))
	if code != 404 {
		t.Errorf("unknown run: %d", code)
	}
	// Status, with the run's page.
	body6 := form("U222", "status switchover/pg-test")
	code, text = do(slackReq(ts, body6, sign(ts, body6)))
	if code != 200 || text != "switchover/pg-test (Switchover) is running, phase waiting for approval\n"+runURL {
		t.Errorf("status: %d %q", code, text)
	}
	body7 := form("U222", "status switchover/pg-other")
	if code, text = do(slackReq(ts, body7, sign(ts, body7))); code != 404 || strings.Contains(text, "http") {
		t.Errorf("status of an unknown run: %d %q", code, text)
	}
}

// No Web UI configured: replies carry no link line.
func TestWithLink(t *testing.T) {
	if got := withLink("x: approved", ""); got != "x: approved" {
		t.Errorf("without a UI: %q", got)
	}
	if got := withLink("x: approved", runURL); got != "x: approved\n"+runURL {
		t.Errorf("with a UI: %q", got)
	}
}

func TestApproveCommand(t *testing.T) {
	if got := workflows.ChatApproveCommand("switchover/pg-test"); got != "/pigwf approve switchover/pg-test" {
		t.Errorf("ApproveCommand: %q", got)
	}
	if action, id, _ := parseCommand(strings.TrimPrefix(workflows.ChatApproveCommand("switchover/pg-test"), SlashCommand+" ")); action != "approve" || id != "switchover/pg-test" {
		t.Errorf("the bridge does not read its own approve command: %q %q", action, id)
	}
}

func TestWebhook(t *testing.T) {
	s, fb := newServer(time.Now())
	h := s.Handler()
	call := func(token, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	ok := `{"action":"reject","workflow_id":"switchover/pg-test","user":"U111","comment":"freeze"}`
	if c := call("wrong", ok); c != 401 {
		t.Errorf("wrong token: %d", c)
	}
	if c := call("", ok); c != 401 {
		t.Errorf("no token: %d", c)
	}
	if len(fb.decisions) != 0 {
		t.Fatal("an unauthenticated call was acted on")
	}
	if c := call("tok-123", ok); c != 200 || len(fb.decisions) != 1 || fb.decisions[0].Decision != "reject" {
		t.Errorf("valid: %d %+v", c, fb.decisions)
	}
	if c := call("tok-123", `{"action":"approve","workflow_id":"switchover/pg-test","user":"nobody"}`); c != 403 {
		t.Errorf("unknown user: %d", c)
	}
}
