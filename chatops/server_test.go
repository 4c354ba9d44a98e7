package chatops

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// On the bridge's own HTTP server, a 10 MiB body is refused with 413 on both endpoints (the
// webhook's after its token is checked), and a normal call still works.
func TestHTTPServerCapsBodies(t *testing.T) {
	now := time.Now()
	s, fb := newServer(now)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.HTTPServer("")
	ts.Start()
	defer ts.Close()

	post := func(path, body string, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		var r slackReply
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.Text
	}
	bearer := map[string]string{"Authorization": "Bearer tok-123", "Content-Type": "application/json"}
	huge := `{"action": "status", "workflow_id": "switchover/pg-test", "user": "U111", "comment": "` + strings.Repeat("x", 10<<20) + `"}`
	if code, text := post("/webhook", huge, bearer); code != http.StatusRequestEntityTooLarge {
		t.Errorf("webhook, 10 MiB: %d %q, want 413", code, text)
	}
	if code, text := post("/webhook", huge, nil); code != http.StatusUnauthorized {
		t.Errorf("webhook, 10 MiB without a token: %d %q, want 401", code, text)
	}
	ts2 := fmt.Sprint(now.Unix())
	body := form("U111", "status switchover/pg-test") + "&pad=" + strings.Repeat("x", 10<<20)
	slack := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts2, "X-Slack-Signature": sign(ts2, body)}
	if code, text := post("/slack/command", body, slack); code != http.StatusRequestEntityTooLarge {
		t.Errorf("slack, 10 MiB: %d %q, want 413", code, text)
	}
	if code, text := post("/webhook", `{"action": "approve", "workflow_id": "switchover/pg-test", "user": "U111"}`, bearer); code != http.StatusOK || len(fb.decisions) != 1 {
		t.Errorf("webhook, a normal call: %d %q, %d decisions", code, text, len(fb.decisions))
	}
}
