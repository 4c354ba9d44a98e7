package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/pki"
)

// Request bodies are capped: a 10 MiB body is refused with 413 after reading at most the cap,
// bad JSON with 400, a small body decodes.
func TestDecodeBodyCapsRequests(t *testing.T) {
	big := `{"leader": "` + strings.Repeat("x", 10<<20) + `"}`
	for i, c := range []struct {
		body string
		code int // 0: decoded
	}{
		{`{"leader": "pg-test-1"}`, 0},                                            // 1
		{big, http.StatusRequestEntityTooLarge},                                   // 2
		{`{"leader": `, http.StatusBadRequest},                                    // 3
		{strings.Repeat(" ", maxRequestBody+1), http.StatusRequestEntityTooLarge}, // 4: padding counts too
	} {
		var v struct {
			Leader string `json:"leader"`
		}
		rec := httptest.NewRecorder()
		body := bytes.NewReader([]byte(c.body))
		ok := decodeBody(rec, httptest.NewRequest(http.MethodPost, "/switchover", body), &v)
		switch {
		case c.code == 0 && (!ok || v.Leader != "pg-test-1"):
			t.Errorf("case %d: not decoded: %d %s", i+1, rec.Code, rec.Body)
		case c.code != 0 && (ok || rec.Code != c.code):
			t.Errorf("case %d: ok=%v code %d, want %d", i+1, ok, rec.Code, c.code)
		}
		if read := int64(len(c.body)) - int64(body.Len()); read > maxRequestBody+4096 {
			t.Errorf("case %d: read %d bytes of the body, past the %d cap", i+1, read, maxRequestBody)
		}
	}
}

// serveTestAPI serves the REST API of a bare agent with cfg (no loop: the handlers answer from
// an empty snapshot) as Run does, and returns its base URL.
func serveTestAPI(t *testing.T, cfg LocalConfig) (*Agent, string) {
	t.Helper()
	cfg.Cluster, cfg.Name = "c1", "n1"
	a := &Agent{cfg: cfg, clock: &manualClock{now: time.Hour}, log: slog.New(slog.DiscardHandler)}
	if err := a.setupAPI(); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := a.apiServer()
	go func() { _ = serveAPI(srv, lis) }()
	t.Cleanup(func() { srv.Close() })
	scheme := "http"
	if a.apiTLS != nil {
		scheme = "https"
	}
	return a, scheme + "://" + lis.Addr().String()
}

func writePassword(t *testing.T, pw string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api-password")
	if err := os.WriteFile(path, []byte(pw), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiCall is one request of the table tests below.
type apiCall struct {
	name         string
	client       *http.Client
	method, path string
	body         string
	user, pass   string // basic auth when user != ""
	want         int    // 0: the request must fail (refused at the handshake) or answer 401
	wantBody     string // part of the answer's body
}

func (c apiCall) run(t *testing.T, base string) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if c.want != 0 {
			t.Errorf("%s: %v", c.name, err)
		}
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := c.want
	if want == 0 {
		want = http.StatusUnauthorized
	}
	if resp.StatusCode != want || !strings.Contains(string(b), c.wantBody) {
		t.Errorf("%s: %s %s answered %d %q, want %d with %q", c.name, c.method, c.path, resp.StatusCode, b, want, c.wantBody)
	}
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="pigwf"` {
		t.Errorf("%s: 401 without the Basic challenge: %q", c.name, resp.Header.Get("WWW-Authenticate"))
	}
}

// The REST API over TLS: health checks are open, mutating endpoints want a client certificate
// of the CA or api.auth's password, bodies are capped, plain http is not served.
func TestAPIAuthenticationOverTLS(t *testing.T) {
	p := newTestPKI(t)
	pw := writePassword(t, "s3cret: with spaces\n", 0o600)
	a, base := serveTestAPI(t, LocalConfig{TLS: p.node,
		API: APIConfig{URL: "https://127.0.0.1:8008", Auth: &APIAuth{Username: "admin", PasswordFile: pw}}})
	lb, cli, foreign := httpClient(t, p.lb), httpClient(t, p.client), httpClient(t, p.foreign)
	const refused = "failsafe_mode is off" // the handler ran: a refusal for a semantic reason
	failsafe := `{"leader": "n2"}`
	for _, c := range []apiCall{
		{name: "1 GET without a certificate", client: lb, method: "GET", path: "/patroni", want: 200, wantBody: `"name": "n1"`},
		{name: "2 OPTIONS health check", client: lb, method: "OPTIONS", path: "/primary", want: 503},
		{name: "3 GET /cluster", client: lb, method: "GET", path: "/cluster", want: 200},
		{name: "4 POST without credentials", client: lb, method: "POST", path: "/failsafe", body: failsafe},
		{name: "5 POST /switchover without credentials", client: lb, method: "POST", path: "/switchover", body: `{"leader": "n1"}`},
		{name: "6 DELETE without credentials", client: lb, method: "DELETE", path: "/switchover"},
		{name: "7 client certificate of the CA", client: cli, method: "POST", path: "/failsafe", body: failsafe, want: 409, wantBody: refused},
		{name: "8 client certificate, bad switchover", client: cli, method: "POST", path: "/switchover", body: `{}`, want: 400, wantBody: "needs"},
		{name: "9 certificate of another CA", client: foreign, method: "POST", path: "/failsafe", body: failsafe},
		{name: "10 username and password", client: lb, method: "POST", path: "/failsafe", body: failsafe, user: "admin", pass: "s3cret: with spaces", want: 409, wantBody: refused},
		{name: "11 wrong password", client: lb, method: "POST", path: "/failsafe", body: failsafe, user: "admin", pass: "s3cret"},
		{name: "12 wrong username", client: lb, method: "POST", path: "/failsafe", body: failsafe, user: "root", pass: "s3cret: with spaces"},
		{name: "13 10 MiB body", client: cli, method: "POST", path: "/switchover", body: `{"leader": "` + strings.Repeat("x", 10<<20) + `"}`, want: 413},
		{name: "14 GET after the big body", client: lb, method: "GET", path: "/health", want: 503},
	} {
		c.run(t, base)
	}
	// The agent's own client of the other members presents the node certificate.
	req, err := a.peerRequest(context.Background(), http.MethodPost, base, "/failsafe", strings.NewReader(failsafe))
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") == "" {
		t.Error("the agent does not send api.auth's credentials with its mutating requests")
	}
	req.Header.Del("Authorization") // the certificate alone must do
	if resp, err := a.http.Do(req); err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("the agent's peer client: %v %v, want 409", resp, err)
	} else {
		resp.Body.Close()
	}
	// A member's record naming an http URL gets no request (nor the password) from an agent
	// outside a plain-text lab.
	req, _ = a.peerRequest(context.Background(), http.MethodPost, "http://"+strings.TrimPrefix(base, "https://"), "/failsafe", strings.NewReader(failsafe))
	if _, err := a.http.Do(req); !errors.Is(err, pki.ErrPlainHTTP) {
		t.Errorf("the agent's peer client to an http URL: %v, want pki.ErrPlainHTTP", err)
	}
	// Plain http to the TLS port gets no health answer and changes nothing.
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, m := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(m, "http://"+strings.TrimPrefix(base, "https://")+"/failsafe", strings.NewReader(failsafe))
		if resp, err := plain.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain http %s: %d, want the server's 400 for http on an https port", m, resp.StatusCode)
			}
		}
	}
	// 4, 5, 6, 11 and 12 (9 may be refused at the handshake, before the guard sees it).
	if got := a.access.refused.Load(); got < 5 {
		t.Errorf("refused requests counted: %d, want at least 5", got)
	}
}

// api.allowlist limits mutating requests to its addresses and the cluster's members (403
// otherwise, even with a valid certificate); health checks stay open to anyone.
func TestAPIAllowlist(t *testing.T) {
	p := newTestPKI(t)
	a, base := serveTestAPI(t, LocalConfig{TLS: p.node, API: APIConfig{URL: "https://127.0.0.1:8008", Allowlist: []string{"10.9.9.0/24", "192.0.2.7"}}})
	lb, cli := httpClient(t, p.lb), httpClient(t, p.client)
	failsafe := `{"leader": "n2"}`
	for _, c := range []apiCall{
		{name: "1 GET from outside the list", client: lb, method: "GET", path: "/patroni", want: 200},
		{name: "2 POST with a certificate from outside the list", client: cli, method: "POST", path: "/failsafe", body: failsafe, want: 403, wantBody: "api.allowlist"},
	} {
		c.run(t, base)
	}
	// 127.0.0.1 becomes the address of a member: its failsafe confirmations pass.
	a.mu.Lock()
	a.snap.view.Members = map[string]haagent.Member{"n2": {Name: "n2", APIURL: "https://127.0.0.1:8008"}}
	a.mu.Unlock()
	apiCall{name: "3 POST from a member", client: cli, method: "POST", path: "/failsafe", body: failsafe, want: 409}.run(t, base)
	apiCall{name: "4 a member still needs credentials", client: lb, method: "POST", path: "/failsafe", body: failsafe}.run(t, base)
}

// A plain-text lab: without api.auth there is nothing to authenticate with and the mutating
// endpoints are open; with it, its password is required, and the agent sends it to its peers.
func TestAPIPlaintext(t *testing.T) {
	failsafe := `{"leader": "n2"}`
	plain := &http.Client{Timeout: 5 * time.Second}
	_, base := serveTestAPI(t, LocalConfig{InsecurePlaintext: true, API: APIConfig{URL: "http://127.0.0.1:8008"}})
	apiCall{name: "1 open lab", client: plain, method: "POST", path: "/failsafe", body: failsafe, want: 409}.run(t, base)

	pw := writePassword(t, "pw\n", 0o600)
	a, base := serveTestAPI(t, LocalConfig{InsecurePlaintext: true, API: APIConfig{URL: "http://127.0.0.1:8008", Auth: &APIAuth{Username: "u", PasswordFile: pw}}})
	for _, c := range []apiCall{
		{name: "2 no credentials", client: plain, method: "POST", path: "/failsafe", body: failsafe},
		{name: "3 password", client: plain, method: "POST", path: "/failsafe", body: failsafe, user: "u", pass: "pw", want: 409},
		{name: "4 GET", client: plain, method: "GET", path: "/patroni", want: 200},
	} {
		c.run(t, base)
	}
	req, err := a.peerRequest(context.Background(), http.MethodPost, base, "/failsafe", strings.NewReader(failsafe))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := a.http.Do(req); err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("the agent's peer client with api.auth: %v %v, want 409", resp, err)
	} else {
		resp.Body.Close()
	}
	// Its GETs carry no password.
	if req, _ := a.peerRequest(context.Background(), http.MethodGet, base, "/probe", nil); req.Header.Get("Authorization") != "" {
		t.Error("the agent sends its password with a GET")
	}
}
