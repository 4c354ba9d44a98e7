package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// probeResponse is GET /probe: what a racing member needs to know live.
type probeResponse struct {
	Name            string `json:"name"`
	Running         bool   `json:"running"`
	InRecovery      bool   `json:"in_recovery"`
	AcceptingWrites bool   `json:"accepting_writes"`
	WALPosition     uint64 `json:"wal_position"`
	Timeline        uint32 `json:"timeline"`
	FailsafeLeader  string `json:"failsafe_leader,omitempty"`
}

// probeMembers asks every other member's REST API for its live state
// (only while the leader is stale or absent, i.e. before racing).
func (a *Agent) probeMembers(ctx context.Context, view haagent.ClusterView) map[string]haagent.Probe {
	timeout := min(max(a.hacfg.LoopInterval()/2, 20*time.Millisecond), 100*time.Millisecond)
	out := map[string]haagent.Probe{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, m := range view.Members {
		if name == a.cfg.Name || m.APIURL == "" {
			continue
		}
		wg.Add(1)
		go func(name, url string) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			req, err := a.peerRequest(pctx, http.MethodGet, url, "/probe", nil)
			if err != nil {
				return
			}
			resp, err := a.http.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var pr probeResponse
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&pr) != nil {
				return
			}
			mu.Lock()
			out[name] = haagent.Probe{Reachable: true, InRecovery: pr.InRecovery || !pr.Running, AcceptingWrites: pr.AcceptingWrites,
				WALPosition: haagent.LSN(pr.WALPosition), Timeline: pr.Timeline, FailsafeLeader: pr.FailsafeLeader}
			mu.Unlock()
		}(name, m.APIURL)
	}
	wg.Wait()
	return out
}

func (a *Agent) handleProbe(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot()
	now := a.clock.Now()
	pr := probeResponse{Name: a.cfg.Name, Running: s.obs.State == haagent.PGRunning, InRecovery: s.obs.InRecovery,
		AcceptingWrites: s.local.MayAcceptWrites(), WALPosition: uint64(s.local.WALPosition()), Timeline: s.obs.Timeline}
	if f := time.Duration(a.lastFence.Load()); f != 0 && f > s.at {
		// Fenced after this snapshot was taken (the loop may be slow, e.g.
		// waiting on an unreachable etcd): nothing of it is running.
		pr.Running, pr.AcceptingWrites = false, false
	}
	a.mu.Lock()
	if p := a.promise; p.Active(now) {
		pr.FailsafeLeader = p.Leader
	}
	a.mu.Unlock()
	a.writeJSON(w, r, http.StatusOK, pr)
}
