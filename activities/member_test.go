package activities

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/pki"
)

// fakeAgent is one member's agent API over TLS with a node certificate of the test's CA; answer
// serves each request after checking that the worker presented its client certificate.
func fakeAgent(t *testing.T, ca pki.CA, name string, answer http.HandlerFunc) MemberAPI {
	t.Helper()
	url := pkitest.Serve(t, pkitest.Node(t, ca, name), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && pkitest.Caller(r) != pki.WorkerClient {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		answer(w, r)
	}))
	return MemberAPI{Name: name, APIURL: url}
}

// appErr is err's application error, failing the test when it has none.
func appErr(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v (%T), want an application error", err, err)
	}
	return app
}

func TestMemberRestart(t *testing.T) {
	ca := pkitest.CA(t)
	a := &Activities{CA: ca}
	before := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	started := before.Add(3 * time.Second)
	defer func(d time.Duration) { agentBusyWait = d }(agentBusyWait)
	agentBusyWait = 10 * time.Millisecond

	var mu sync.Mutex
	var got []haagent.RestartRequest
	restart := func(status int, resp haagent.RestartResponse, busy int) MemberAPI {
		calls := 0
		return fakeAgent(t, ca, "pg-test-2", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/restart" {
				http.NotFound(w, r)
				return
			}
			var req haagent.RestartRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, req)
			calls++
			n := calls
			mu.Unlock()
			if n <= busy {
				http.Error(w, "restarting already", http.StatusServiceUnavailable)
				return
			}
			if status != http.StatusOK {
				http.Error(w, "pg-test-2 is the leader: switch over first", status)
				return
			}
			_ = json.NewEncoder(w).Encode(resp)
		})
	}
	run := func(m MemberAPI, pending bool) (StepResult, error) {
		mu.Lock()
		got = nil
		mu.Unlock()
		return a.MemberRestart(context.Background(), MemberRestartInput{Member: m, Pending: pending, StartedBefore: before})
	}

	t.Run("restarted", func(t *testing.T) {
		res, err := run(restart(http.StatusOK, haagent.RestartResponse{Restarted: true, Reason: "restart requested", PostmasterStart: started}, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || !strings.Contains(res.Summary(), "restarted PostgreSQL: restart requested") || res.Facts["postmaster_start"] != started.Format(time.RFC3339Nano) {
			t.Errorf("result %+v", res)
		}
		if len(got) != 1 || !got[0].RestartPending || !got[0].StartedBefore.Equal(before) {
			t.Errorf("the agent got %+v, want restart_pending and started_before %s", got, before)
		}
	})
	t.Run("not due", func(t *testing.T) {
		res, err := run(restart(http.StatusOK, haagent.RestartResponse{Reason: "the postmaster started after started_before", PostmasterStart: started}, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || !strings.Contains(res.Summary(), "not restarted: the postmaster started after started_before") {
			t.Errorf("result %+v, want unchanged with the agent's reason", res)
		}
	})
	t.Run("busy, asked again", func(t *testing.T) {
		res, err := run(restart(http.StatusOK, haagent.RestartResponse{Restarted: true, Reason: "restart requested"}, 2), false)
		if err != nil || !res.Changed || len(got) != 3 {
			t.Errorf("result %+v, err %v, %d requests; want the restart after two busy answers", res, err, len(got))
		}
	})
	t.Run("the leader is refused", func(t *testing.T) {
		_, err := run(restart(http.StatusConflict, haagent.RestartResponse{}, 0), false)
		app := appErr(t, err)
		if app.Type() != ErrLeaderRestartRefused || !app.NonRetryable() || !strings.Contains(app.Message(), "switch over first") {
			t.Errorf("error %v (type %s), want non-retryable %s", err, app.Type(), ErrLeaderRestartRefused)
		}
		if len(got) != 1 {
			t.Errorf("%d requests, want 1: a refusal is not retried", len(got))
		}
	})
	t.Run("no started_before", func(t *testing.T) {
		m := restart(http.StatusOK, haagent.RestartResponse{Restarted: true}, 0)
		_, err := a.MemberRestart(context.Background(), MemberRestartInput{Member: m})
		if app := appErr(t, err); app.Type() != ErrConfig || !app.NonRetryable() || !strings.Contains(app.Message(), "started_before") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("the worker is not authenticated", func(t *testing.T) {
		unauth := fakeAgent(t, ca, "pg-test-3", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "authentication required", http.StatusUnauthorized)
		})
		_, err := a.MemberRestart(context.Background(), MemberRestartInput{Member: unauth, StartedBefore: before})
		if app := appErr(t, err); app.Type() != ErrAgentRefused || !app.NonRetryable() || !strings.Contains(app.Message(), "client certificate") {
			t.Errorf("error %v, want non-retryable %s naming the certificate", err, ErrAgentRefused)
		}
	})
	t.Run("an agent that does not answer is retried", func(t *testing.T) {
		_, err := a.MemberRestart(context.Background(), MemberRestartInput{Member: MemberAPI{Name: "pg-test-9", APIURL: "https://127.0.0.1:1"}, StartedBefore: before})
		var app *temporal.ApplicationError
		if err == nil || (errors.As(err, &app) && app.NonRetryable()) {
			t.Errorf("error %v, want a retryable one", err)
		}
	})
}

func TestMemberReload(t *testing.T) {
	ca := pkitest.CA(t)
	a := &Activities{CA: ca}
	reload := func(resp haagent.ReloadResponse) MemberAPI {
		return fakeAgent(t, ca, "pg-test-1", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/reload" || r.ContentLength > 0 {
				http.Error(w, "want POST /reload with an empty body", http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(resp)
		})
	}
	res, err := a.MemberReload(context.Background(), MemberReloadInput{Member: reload(haagent.ReloadResponse{Changed: true, ConfigRevision: 42,
		PendingRestart: map[string]pgparams.PendingChange{"shared_buffers": {OldValue: "128MB", NewValue: "256MB"}, "max_connections": {OldValue: "100", NewValue: "200"}}})})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Facts["pending_restart"] != "max_connections,shared_buffers" || res.Facts["config_revision"] != "42" ||
		!strings.Contains(strings.Join(res.Notes, "\n"), "shared_buffers waits for a restart (128MB in force, 256MB configured)") {
		t.Errorf("result %+v", res)
	}
	res, err = a.MemberReload(context.Background(), MemberReloadInput{Member: reload(haagent.ReloadResponse{ConfigRevision: 42})})
	if err != nil {
		t.Fatal(err)
	}
	if pending, ok := res.Facts["pending_restart"]; res.Changed || !ok || pending != "" || !strings.Contains(res.Summary(), "revision 42 were already in force") {
		t.Errorf("result %+v, want unchanged and an empty pending_restart", res)
	}
	old := fakeAgent(t, ca, "pg-test-2", http.NotFound)
	_, err = a.MemberReload(context.Background(), MemberReloadInput{Member: old})
	if app := appErr(t, err); app.Type() != ErrAgentRefused || !app.NonRetryable() || !strings.Contains(app.Message(), "upgrade the agent") {
		t.Errorf("an agent without /reload: %v", err)
	}
}
