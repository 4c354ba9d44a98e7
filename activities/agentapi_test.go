package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/pki"
)

// The worker reaches an agent's TLS API through agentClient: the agent's certificate is
// verified against the deployment CA, the worker presents its own client certificate (issued
// from the CA on first use), and every client shares one transport; plain http only for a
// worker that allows plain text.
func TestAgentClientPresentsTheWorkersCertificate(t *testing.T) {
	ca := pkitest.CA(t)
	caller := pkitest.Caller
	url := pkitest.Serve(t, pkitest.Node(t, ca, "n1"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/primary":
			if caller(r) != pki.WorkerClient {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case "/cluster":
			_ = json.NewEncoder(w).Encode(haagent.ClusterStatus{Leader: caller(r)})
		}
	}))

	a := &Activities{CA: ca}
	ctx := context.Background()
	c1, err := a.agentClient(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !isPrimaryNow(ctx, c1, url) {
		t.Error("GET /primary did not present the worker's certificate")
	}
	c2, err := a.agentClient(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Transport != c2.Transport {
		t.Error("two clients, two transports: connections to the agents are not reused")
	}
	v, err := clusterView(ctx, c2, []MemberAPI{{Name: "n1", APIURL: url + "/"}}, "n1")
	if err != nil || v.Leader != pki.WorkerClient {
		t.Errorf("clusterView: %+v %v", v, err)
	}
	// An agent whose certificate is of another CA is not believed.
	other := pki.CA{Dir: t.TempDir()}
	if _, err := other.Ensure(); err != nil {
		t.Fatal(err)
	}
	c3, err := (&Activities{CA: other}).agentClient(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if agentAnswers(ctx, c3, url) || isPrimaryNow(ctx, c3, url) {
		t.Error("a worker of another CA trusted the agent")
	}
	// Plain http only for a worker that allows plain text.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	if agentAnswers(ctx, c1, plain.URL) {
		t.Error("a worker that does not allow plain text read an agent over http")
	}
	if _, err := c1.Get(plain.URL + "/patroni"); !errors.Is(err, pki.ErrPlainHTTP) {
		t.Errorf("plain http: %v, want pki.ErrPlainHTTP", err)
	}
	lab, err := (&Activities{CA: ca, AllowPlaintext: true}).agentClient(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !agentAnswers(ctx, lab, plain.URL) || !agentAnswers(ctx, lab, url) {
		t.Error("a worker that allows plain text cannot read an agent over http, or over https")
	}
	// No CA on the worker's host: a permanent failure that says where it looked.
	_, err = (&Activities{CA: pki.CA{Dir: filepath.Join(t.TempDir(), "none")}}).agentClient(time.Second)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrConfig {
		t.Errorf("no CA: %v", err)
	}
}
