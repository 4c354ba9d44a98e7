package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/pki"
)

// checkAgentAPI: the leader's agent API as a user reaches it from outside the nodes, with curl:
// TLS verified with the lab's CA; a health check needs nothing else; a mutating request without
// credentials is refused with 401 and a Basic challenge, one with the lab's client certificate
// is let through (and answered for a semantic reason: the requests are harmless), one of another
// CA is refused at the handshake; a 10 MiB body is refused with 413 and the agent and its
// PostgreSQL keep running (same processes); plain http gets no answer from the API.
func checkAgentAPI(t *testing.T, st *lab.Status) {
	t.Helper()
	if st.Plaintext {
		t.Fatal("checkAgentAPI wants a lab with TLS (the default)")
	}
	files, err := st.ClientTLS()
	if err != nil {
		t.Fatalf("the lab's client certificate: %v", err)
	}
	processes := func() string {
		return strings.TrimSpace(nodeRun(t, st, 1, "pgrep -f '^/usr/local/bin/pg-ha-agent run' | head -n1; head -n1 /pg/data/postmaster.pid"))
	}
	before := processes()
	addr := st.Nodes[0].Addr + ":8008"
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"leader": "`+strings.Repeat("x", 10<<20)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A client certificate of another CA (trusting the lab's, so only the certificate differs).
	other := pki.CA{Dir: filepath.Join(dir, "other-ca")}
	if _, err := other.Ensure(); err != nil {
		t.Fatalf("another CA: %v", err)
	}
	foreign, _, err := other.EnsureClient(pki.CLIClient, time.Now())
	if err != nil {
		t.Fatalf("another CA's client certificate: %v", err)
	}
	tlsArgs := []string{"--cacert", files.CA}
	certArgs := []string{"--cacert", files.CA, "--cert", files.Cert, "--key", files.Key}
	foreignArgs := []string{"--cacert", files.CA, "--cert", foreign.Cert, "--key", foreign.Key}
	post := func(path, body string) []string {
		return []string{"-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, "https://" + addr + path}
	}
	cases := []struct {
		name      string
		args      []string
		code      string // curl's %{http_code}; "000" = no HTTP answer
		body      string // part of the answer's body
		challenge bool   // a Basic challenge in the headers
	}{
		{"1 GET /primary with only the CA", slices.Concat(tlsArgs, []string{"https://" + addr + "/primary"}), "200", `"role": "primary"`, false},
		{"2 POST /switchover without credentials", slices.Concat(tlsArgs, post("/switchover", `{}`)), "401", "authentication required", true},
		{"3 POST /failsafe without credentials", slices.Concat(tlsArgs, post("/failsafe", `{"leader": "pigwf-test"}`)), "401", "authentication required", true},
		{"4 10 MiB body without credentials", slices.Concat(tlsArgs, post("/switchover", "@"+big)), "401", "", true},
		// With the certificate the handlers run and refuse for what the requests say: a
		// switchover naming no leader (400) and a failsafe confirmation the leader does not
		// give (409). Neither writes anything.
		{"5 POST /switchover with the lab's certificate", slices.Concat(certArgs, post("/switchover", `{}`)), "400", `needs "leader"`, false},
		{"6 POST /failsafe with the lab's certificate", slices.Concat(certArgs, post("/failsafe", `{"leader": "pigwf-test"}`)), "409", "refusing failsafe confirmation", false},
		// the agent answers 413 and closes while curl still sends: curl may lose the body (as in 4)
		{"7 10 MiB body with the lab's certificate", slices.Concat(certArgs, post("/switchover", "@"+big)), "413", "", false},
		{"8 a certificate of another CA", slices.Concat(foreignArgs, post("/switchover", `{}`)), "000", "", false},
		{"9 plain http GET", []string{"http://" + addr + "/primary"}, "400", "HTTPS server", false},
		{"10 plain http POST", []string{"-X", "POST", "--data-binary", `{}`, "http://" + addr + "/switchover"}, "400", "HTTPS server", false},
		{"11 GET /health after all that", slices.Concat(tlsArgs, []string{"https://" + addr + "/health"}), "200", "", false},
	}
	for _, c := range cases {
		bodyFile, headerFile := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
		os.Remove(bodyFile)
		os.Remove(headerFile)
		args := slices.Concat([]string{"-sS", "--max-time", "20", "-o", bodyFile, "-D", headerFile, "-w", "%{http_code}"}, c.args)
		out, err := exec.Command("curl", args...).Output()
		code := strings.TrimSpace(string(out))
		body, _ := os.ReadFile(bodyFile)
		headers, _ := os.ReadFile(headerFile)
		// curl may end with an error after the answer (the server closes a connection whose
		// body it did not read); only no answer at all must come with one.
		if code == "000" && err == nil {
			t.Errorf("%s: no HTTP answer and no curl error", c.name)
		}
		if code != c.code || !strings.Contains(string(body), c.body) {
			t.Errorf("%s: %s %q (curl: %v), want %s with %q", c.name, code, truncate(string(body), 300), err, c.code, c.body)
		}
		if got := strings.Contains(strings.ToLower(string(headers)), `www-authenticate: basic realm="pigwf"`); got != c.challenge {
			t.Errorf("%s: Basic challenge %v, want %v; headers:\n%s", c.name, got, c.challenge, headers)
		}
	}
	if after := processes(); after != before {
		t.Errorf("the agent and PostgreSQL (pids %q) were replaced (%q) while the API was probed", before, after)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
