package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// askFailsafe: etcd is unreachable and I hold the lease; every member of
// the failsafe key must confirm me over the REST API. Each confirmation
// counts from the SEND time of its request.
func (a *Agent) askFailsafe(ctx context.Context, view haagent.ClusterView) {
	timeout := min(max(a.hacfg.LoopInterval()/2, 20*time.Millisecond), 100*time.Millisecond)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range view.FailsafeMembers {
		m, ok := view.Members[name]
		if name == a.cfg.Name || !ok || m.APIURL == "" {
			continue
		}
		wg.Add(1)
		go func(name, url string) {
			defer wg.Done()
			sent := a.clock.Now()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			body := strings.NewReader(fmt.Sprintf(`{"leader":%q}`, a.cfg.Name))
			req, err := a.peerRequest(pctx, http.MethodPost, url, "/failsafe", body)
			if err != nil {
				return
			}
			resp, err := a.http.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				a.failsafeAcks[name] = sent
				mu.Unlock()
			}
		}(name, m.APIURL)
	}
	wg.Wait()
}

// handleFailsafe answers a leader that cannot reach etcd (see haagent
// AnswerFailsafe). It is serialized with this agent's own acquire.
func (a *Agent) handleFailsafe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		Leader string `json:"leader"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Leader == "" {
		http.Error(w, `body must be {"leader": "<member>"}`, http.StatusBadRequest)
		return
	}
	a.acquireMu.Lock()
	defer a.acquireMu.Unlock()
	s := a.snapshot()
	now := a.clock.Now()
	ok, until, reason := haagent.AnswerFailsafe(s.view, s.local, req.Leader, now)
	code := http.StatusConflict
	if ok {
		a.mu.Lock()
		a.promise = &haagent.FailsafePromise{Leader: req.Leader, Until: until}
		a.mu.Unlock()
		code = http.StatusOK
	}
	a.writeJSON(w, r, code, map[string]any{"ok": ok, "reason": reason})
}
