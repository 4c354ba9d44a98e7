// Package chatops is the bridge between chat bots and pigwf runs: Slack-style slash commands
// (`/pigwf approve ID`, `/pigwf reject ID`, `/pigwf status ID`) verified by the signing secret's
// HMAC with a five-minute replay window, and a generic JSON webhook authenticated by a bearer
// token. Chat users map to approver identities in the configuration. Once the chat platform's
// request is verified, the bridge signs the decision as itself (its own key, Config.Signer),
// naming the approver; the worker acts on it only if its approvals file trusts the bridge as a
// signer for that person (signers:) and its policy lists them. Replies about a run link to its Web
// UI page.
package chatops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/internal/httplimit"
	"github.com/pigwf/pigwf/workflows"
)

// Config of the bridge. Secrets come from the environment or files, never the command line.
type Config struct {
	SlackSigningSecret string            // verifies /slack/command
	WebhookToken       string            // bearer token for /webhook
	Users              map[string]string // chat user ID or name -> approver identity
	ReplayWindow       time.Duration     // default 5 minutes
	// Signer is the bridge's own key: it signs every decision it carries, naming the approver.
	// Without it decisions go unsigned, and a worker acts on them only under allow_unverified.
	Signer *approval.Key
}

// SlashCommand is the bridge's chat command, as configured in the chat (Slack's slash command).
const SlashCommand = workflows.ChatCommand

// Backend carries decisions to runs and reads their state.
type Backend interface {
	// Decide sends the decision as the run's "approve" Update, signed by signer for the open run
	// (when signer is not nil); a refusal (not an approver, not waiting, not verified) comes back
	// as an error of type *RefusedError.
	Decide(ctx context.Context, workflowID string, d workflows.ApprovalDecision, signer *approval.Key) (Decided, error)
	// Status is the run's state in a paragraph.
	Status(ctx context.Context, workflowID string) (Report, error)
}

// Decided is a decision a run took: its approval after it, and the run's page.
type Decided struct {
	State  workflows.ApprovalState
	RunURL string // the run's page in the Temporal Web UI; "" when none is configured
}

// Report is a run's status for chat, and the run's page.
type Report struct {
	Text   string
	RunURL string // the run's page in the Temporal Web UI; "" when none is configured
}

// RefusedError is a decision the run refused (the sender gets 403).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// NotFoundError is an unknown run (the sender gets 404).
type NotFoundError struct{ WorkflowID string }

func (e *NotFoundError) Error() string {
	return "no open run " + e.WorkflowID + " (finished, or never started: `pigwf status " + e.WorkflowID + "`)"
}

// Server is the HTTP bridge.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signatures already accepted, for replay protection
}

// New makes a bridge.
func New(cfg Config, backend Backend, log *slog.Logger) *Server {
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = 5 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, backend: backend, log: log, now: time.Now, seen: map[string]time.Time{}}
}

// Handler routes /slack/command, /webhook and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/command", s.slack)
	mux.HandleFunc("POST /webhook", s.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// VerifySlackSignature checks Slack's v0 signature: HMAC-SHA256 over "v0:<timestamp>:<body>"
// with the signing secret, and a timestamp within window of now.
func VerifySlackSignature(secret, timestamp string, body []byte, signature string, now time.Time, window time.Duration) error {
	if secret == "" {
		return errors.New("the bridge has no signing secret configured")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("missing or malformed X-Slack-Request-Timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return fmt.Errorf("request timestamp is %s away from now (window %s): expired or replayed", d.Round(time.Second), window)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", timestamp, body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errors.New("bad signature")
	}
	return nil
}

// remember records an accepted signature; a second use within the window is a replay.
func (s *Server) remember(sig string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, t := range s.seen {
		if now.Sub(t) > 2*s.cfg.ReplayWindow {
			delete(s.seen, k)
		}
	}
	if _, dup := s.seen[sig]; dup {
		return false
	}
	s.seen[sig] = now
	return true
}

type slackReply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func reply(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(slackReply{ResponseType: "ephemeral", Text: text})
}

func (s *Server) slack(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(httplimit.Body(w, r))
	if httplimit.TooLarge(err) {
		reply(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	} else if err != nil {
		reply(w, http.StatusBadRequest, "cannot read the request")
		return
	}
	sig := r.Header.Get("X-Slack-Signature")
	if err := VerifySlackSignature(s.cfg.SlackSigningSecret, r.Header.Get("X-Slack-Request-Timestamp"), body, sig, s.now(), s.cfg.ReplayWindow); err != nil {
		s.log.Warn("chatops: refused a slash command", "reason", err.Error(), "remote", r.RemoteAddr)
		reply(w, http.StatusUnauthorized, "refused: "+err.Error())
		return
	}
	if !s.remember(sig) {
		s.log.Warn("chatops: refused a replayed slash command", "remote", r.RemoteAddr)
		reply(w, http.StatusUnauthorized, "refused: this request was already received (replay)")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		reply(w, http.StatusBadRequest, "malformed form body")
		return
	}
	action, id, comment := parseCommand(form.Get("text"))
	code, text := s.act(r.Context(), action, id, comment, form.Get("user_id"), form.Get("user_name"))
	reply(w, code, text)
}

// parseCommand splits "approve switchover/pg-test looks good" into its parts.
func parseCommand(text string) (action, id, comment string) {
	fields := strings.Fields(text)
	if len(fields) > 0 {
		action = strings.ToLower(fields[0])
	}
	if len(fields) > 1 {
		id = fields[1]
	}
	if len(fields) > 2 {
		comment = strings.Join(fields[2:], " ")
	}
	return
}

// WebhookRequest is the generic JSON webhook's body.
type WebhookRequest struct {
	Action     string `json:"action"` // approve | reject | status
	WorkflowID string `json:"workflow_id"`
	User       string `json:"user"`
	Comment    string `json:"comment,omitempty"`
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.cfg.WebhookToken == "" || !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.WebhookToken)) != 1 {
		s.log.Warn("chatops: refused a webhook call: bad or missing bearer token", "remote", r.RemoteAddr)
		reply(w, http.StatusUnauthorized, "refused: bad or missing bearer token")
		return
	}
	var req WebhookRequest
	if err := json.NewDecoder(httplimit.Body(w, r)).Decode(&req); httplimit.TooLarge(err) {
		reply(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	} else if err != nil {
		reply(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	code, text := s.act(r.Context(), req.Action, req.WorkflowID, req.Comment, req.User, "")
	reply(w, code, text)
}

// act maps the chat user to an approver and carries the command to the run.
func (s *Server) act(ctx context.Context, action, id, comment, userID, userName string) (int, string) {
	if id == "" || (action != "approve" && action != "reject" && action != "status") {
		return http.StatusBadRequest, "usage: " + SlashCommand + " approve|reject|status WORKFLOW-ID [comment]"
	}
	approver := s.cfg.Users[userID]
	if approver == "" && userName != "" {
		approver = s.cfg.Users[userName]
	}
	if approver == "" {
		s.log.Warn("chatops: refused an unknown chat user", "user_id", userID, "user_name", userName, "action", action, "workflow_id", id)
		return http.StatusForbidden, fmt.Sprintf("refused: chat user %s is not mapped to a pigwf approver", firstNonEmpty(userID, userName))
	}
	ctx, cancel := context.WithTimeout(ctx, actTimeout)
	defer cancel()
	if action == "status" {
		rep, err := s.backend.Status(ctx, id)
		if err != nil {
			return codeOf(err), err.Error()
		}
		return http.StatusOK, withLink(rep.Text, rep.RunURL)
	}
	decision := workflows.DecisionApprove
	if action == "reject" {
		decision = workflows.DecisionReject
	}
	dec, err := s.backend.Decide(ctx, id, workflows.ApprovalDecision{Decision: decision, Approver: approver, Comment: comment}, s.cfg.Signer)
	if err != nil {
		s.log.Warn("chatops: decision not taken", "workflow_id", id, "approver", approver, "err", err.Error())
		return codeOf(err), "not taken: " + err.Error()
	}
	s.log.Info("chatops: decision taken", "workflow_id", id, "approver", approver, "decision", decision)
	return http.StatusOK, withLink(fmt.Sprintf("%s: %s", id, dec.State.Summary()), dec.RunURL)
}

// withLink ends a reply about a run with the run's page, when there is one: every reply that
// names a run links to it.
func withLink(text, runURL string) string {
	if runURL == "" {
		return text
	}
	return text + "\n" + runURL
}

func codeOf(err error) int {
	var refused *RefusedError
	var nf *NotFoundError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &refused):
		return http.StatusForbidden
	case errors.As(err, &nf):
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
