package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// TestIntegrationParametersAndRestart: the cluster's dynamic parameters reach every member's
// PostgreSQL through the DCS config key (a reloadable one live without a restart; a postmaster
// one shown as pending restart), a value PostgreSQL would refuse never reaches a file, the
// leader refuses an in-place restart, and a replica's planned restart (POST /restart) applies
// the pending setting, runs once per started_before, and loses no acknowledged write.
func TestIntegrationParametersAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	e := newITEnv(t)
	e.prepare(`{"synchronous_mode": true, "loop_interval_ms": 100, "leader_timeout_ms": 500}`)
	for _, n := range e.nodes {
		e.startSupervisor(n)
	}
	waitFor(t, 60*time.Second, "a leader with streaming replicas", func() (bool, string) {
		l, _ := e.leader()
		if l == nil {
			return false, "no leader"
		}
		return e.healthy(l)
	})
	leader, _ := e.leader()
	w := startWriter(e.nodes)
	defer func() {
		select {
		case <-w.done:
		default:
			w.halt()
		}
	}()

	// 1. A reloadable and a postmaster parameter, by CAS on the config key.
	setParams := func(params map[string]string) int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		snap, err := e.store.Load(ctx)
		if err != nil || snap.Config == nil {
			t.Fatalf("load config: %v", err)
		}
		cfg, err := haagent.ParseConfig(snap.Config.Value)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Postgresql.Parameters = params
		raw, _ := json.Marshal(cfg)
		rev, err := e.store.PutConfig(ctx, raw, snap.Config.ModRevision)
		if err != nil {
			t.Fatalf("put config: %v", err)
		}
		return rev
	}
	show := func(n *itNode, name string) string {
		rows := query(t, n.port, "SHOW "+name)
		return *rows[0][0]
	}
	written := time.Now()
	rev := setParams(map[string]string{"work_mem": "7MB", "shared_buffers": "24MB"})
	waitFor(t, 5*time.Second, "work_mem 7MB on every member", func() (bool, string) {
		for _, n := range e.nodes {
			if v := show(n, "work_mem"); v != "7MB" {
				return false, n.name + " has " + v
			}
		}
		return true, ""
	})
	live := time.Since(written)
	t.Logf("RELOAD: work_mem live on all 3 members %s after the config write (revision %d)", live.Round(time.Millisecond), rev)
	if live > 2*time.Second {
		t.Errorf("a reloadable parameter took %s to be live everywhere, the goal is 2 s", live)
	}
	waitFor(t, 10*time.Second, "shared_buffers pending restart on every member, in /cluster", func() (bool, string) {
		st, ok := e.cluster(leader)
		if !ok {
			return false, "no /cluster"
		}
		for _, m := range st.Members {
			if !m.PendingRestart || m.PendingRestartReason["shared_buffers"].NewValue != "24MB" || m.ConfigRevision < rev {
				return false, fmt.Sprintf("%s: pending %v %v revision %d", m.Name, m.PendingRestart, m.PendingRestartReason, m.ConfigRevision)
			}
		}
		return true, ""
	})
	if v := show(leader, "shared_buffers"); v != "16MB" {
		t.Fatalf("shared_buffers changed without a restart: %s", v)
	}
	code, body := e.get(leader.api("/metrics"))
	if code != http.StatusOK || !strings.Contains(string(body), `patroni_pending_restart{name="`+leader.name) {
		t.Errorf("/metrics: %d, no patroni_pending_restart series", code)
	} else if !strings.Contains(string(body), "patroni_pending_restart{name=\""+leader.name+"\",scope=\""+itCluster+"\"} 1") {
		t.Errorf("/metrics does not say pending restart 1:\n%s", grepLines(string(body), "pending_restart"))
	}

	// GET /settings: the server's pg_settings, what `pigwf config set` checks values against.
	code, body = e.get(leader.api("/settings"))
	var rows []pgparams.Setting
	if code != http.StatusOK || json.Unmarshal(body, &rows) != nil {
		t.Fatalf("GET /settings: %d %.200s", code, body)
	}
	if sb := pgparams.NewCatalog(rows)["shared_buffers"]; sb.Unit != "8kB" || sb.Context != "postmaster" || !sb.PendingRestart {
		t.Errorf("GET /settings: shared_buffers %+v, want unit 8kB, context postmaster, pending restart", sb)
	}

	// 2. A value PostgreSQL would refuse never reaches the file.
	before, _ := os.ReadFile(filepath.Join(leader.dataDir, pgparams.DynamicFile))
	setParams(map[string]string{"work_mem": "7 parsecs", "shared_buffers": "24MB"})
	time.Sleep(1500 * time.Millisecond)
	after, _ := os.ReadFile(filepath.Join(leader.dataDir, pgparams.DynamicFile))
	if string(before) != string(after) || show(leader, "work_mem") != "7MB" {
		t.Fatalf("a refused value changed the file:\n%s\n→\n%s", before, after)
	}
	rev = setParams(map[string]string{"work_mem": "7MB", "shared_buffers": "24MB"})

	// 3. The leader is not restarted in place.
	restart := func(n *itNode, req haagent.RestartRequest) (int, haagent.RestartResponse, string) {
		t.Helper()
		b, _ := json.Marshal(req)
		hr, _ := http.NewRequest(http.MethodPost, n.api("/restart"), strings.NewReader(string(b)))
		hr.SetBasicAuth(itAPIUser, itAPIPassword)
		c := &http.Client{Timeout: 2 * restartWait}
		resp, err := c.Do(hr)
		if err != nil {
			t.Fatalf("POST /restart on %s: %v", n.name, err)
		}
		defer resp.Body.Close()
		var out haagent.RestartResponse
		buf, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			_ = json.Unmarshal(buf, &out)
		}
		return resp.StatusCode, out, string(buf)
	}
	if code, _, msg := restart(leader, haagent.RestartRequest{}); code != http.StatusConflict {
		t.Fatalf("POST /restart on the leader: %d %s, want 409", code, msg)
	} else {
		t.Logf("leader refused: %s", strings.TrimSpace(msg))
	}

	// 4. Each replica restarts once, applies shared_buffers, and streams again.
	stamp := time.Now()
	for _, n := range e.nodes {
		if n == leader {
			continue
		}
		began := time.Now()
		code, out, msg := restart(n, haagent.RestartRequest{RestartPending: true, StartedBefore: stamp})
		if code != http.StatusOK || !out.Restarted {
			t.Fatalf("POST /restart on %s: %d %s", n.name, code, msg)
		}
		t.Logf("RESTART %s: answered after %s (%s)", n.name, time.Since(began).Round(time.Millisecond), out.Reason)
		if v := show(n, "shared_buffers"); v != "24MB" {
			t.Errorf("%s after its restart: shared_buffers %s", n.name, v)
		}
		code, out, msg = restart(n, haagent.RestartRequest{StartedBefore: stamp})
		if code != http.StatusOK || out.Restarted {
			t.Errorf("a second POST /restart with the same started_before on %s: %d %s, want no restart", n.name, code, msg)
		}
		waitFor(t, 30*time.Second, "the cluster healthy after restarting "+n.name, func() (bool, string) { return e.healthy(leader) })
	}
	acks := w.halt()
	from, gap, _ := w.longestGap(stamp, time.Now())
	t.Logf("WRITES during the replica restarts: %d acknowledged, longest gap %s (at +%s)", len(acks), gap.Round(time.Millisecond), from.Sub(stamp).Round(time.Millisecond))
	if gap > time.Second {
		t.Errorf("restarting replicas stopped writes for %s", gap)
	}
	e.checkNoLoss(acks, leader)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
