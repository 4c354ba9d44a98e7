package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The integration test runs the real thing on loopback: one etcd, three
// PostgreSQL 15 instances, three supervised agents (this test binary
// re-executed as the postgres OS user), a writer recording every
// acknowledged commit, and three faults: kill -9 of the primary's
// postmaster, kill -9 of the primary's agent, a planned switchover.

func TestIntegrationFailoverSwitchover(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	e := newITEnv(t)
	e.prepare(`{"synchronous_mode": true, "loop_interval_ms": 100, "leader_timeout_ms": 500}`)
	n1 := e.nodes[0]

	started := time.Now()
	for _, n := range e.nodes {
		e.startSupervisor(n)
	}
	waitFor(t, 30*time.Second, n1.name+" to lead and accept writes", func() (bool, string) {
		l, _ := e.leader()
		if l != n1 {
			return false, "no leader yet"
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := conn(ctx, n1.port)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		err = c.Exec(ctx, "INSERT INTO ha_test (id) VALUES (1)")
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("bootstrap adoption: agents started → %s leads and accepts writes in %s", n1.name, time.Since(started).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "replicas streaming with one sync standby, and /cluster agreeing with pg_stat_replication", func() (bool, string) {
		return e.healthy(n1)
	})
	t.Logf("cluster healthy %s after the agents started", time.Since(started).Round(time.Millisecond))
	if _, body := e.get(e.nodes[1].api("/cluster")); body != nil {
		t.Logf("GET /cluster on a replica:\n%s", body)
	}

	w := startWriter(e.nodes)
	defer func() {
		select {
		case <-w.done:
		default:
			w.halt()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	// --- 1. kill -9 the primary's postmaster --------------------------------
	syncBefore := e.syncStandbys()
	if len(syncBefore) != 1 {
		t.Fatalf("sync key standbys before the crash: %v", syncBefore)
	}
	pid := readPid(n1.dataDir)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 postmaster %d: %v", pid, err)
	}
	first := w.waitAckAfter(t, killedAt, n1.name, 15*time.Second)
	failover := first.at.Sub(killedAt)
	t.Logf("FAILOVER (kill -9 postmaster of %s): first write accepted on %s %s after the kill", n1.name, first.node, failover.Round(time.Millisecond))
	if first.node != syncBefore[0] {
		t.Errorf("new primary %s is not the synchronous standby %s", first.node, syncBefore[0])
	}
	l2 := e.node(first.node)
	waitFor(t, 60*time.Second, n1.name+" back as a streaming replica of "+l2.name, func() (bool, string) { return e.healthy(l2) })
	t.Logf("%s rejoined as a streaming replica %s after the kill", n1.name, time.Since(killedAt).Round(time.Millisecond))
	if failover > time.Second {
		t.Errorf("failover took %s, the goal is under 1 s", failover)
	}

	// --- 2. kill -9 the primary's AGENT: no failover ---------------------------
	time.Sleep(500 * time.Millisecond)
	apid := agentPID(l2)
	if apid == 0 {
		t.Fatalf("no agent process under the supervisor of %s", l2.name)
	}
	lastBefore, _ := w.lastAckBy(l2.name, time.Now())
	agentKilledAt := time.Now()
	if err := syscall.Kill(apid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 agent %d: %v", apid, err)
	}
	waitFor(t, 30*time.Second, "cluster healthy again under "+l2.name, func() (bool, string) { return e.healthy(l2) })
	gapFrom, gap, gapNode := w.longestGap(lastBefore.at, time.Now())
	t.Logf("AGENT KILL on %s: longest write gap %s (from %s after the kill), writes resumed on %s",
		l2.name, gap.Round(time.Millisecond), gapFrom.Sub(agentKilledAt).Round(time.Millisecond), gapNode)
	if gapNode != l2.name {
		t.Errorf("killing the primary's agent caused a failover to %s", gapNode)
	}

	// --- 3. planned switchover to the sync standby -----------------------------
	time.Sleep(500 * time.Millisecond)
	target := e.syncStandbys()
	if len(target) != 1 {
		t.Fatalf("sync standbys before the switchover: %v", target)
	}
	// Through the REST API of the candidate (any member writes the request), with api.auth's
	// password: without it the request is refused and changes nothing.
	body := fmt.Sprintf(`{"leader": %q, "candidate": %q}`, l2.name, target[0])
	post := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodPost, e.node(target[0]).api("/switchover"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, cred := range [][2]string{{"", ""}, {itAPIUser, "wrong"}} {
		if code := post(cred[0], cred[1]); code != http.StatusUnauthorized {
			t.Fatalf("POST /switchover with credentials %q: %d, want 401", cred[0], code)
		}
	}
	requested := time.Now()
	if code := post(itAPIUser, itAPIPassword); code != http.StatusAccepted {
		t.Fatalf("POST /switchover: %d", code)
	}
	onNew := w.waitAckAfter(t, requested, l2.name, 15*time.Second)
	lastOld, _ := w.lastAckBy(l2.name, onNew.at)
	t.Logf("SWITCHOVER %s → %s: write unavailability %s (last ack on the old primary → first on the new), %s after the request",
		l2.name, onNew.node, onNew.at.Sub(lastOld.at).Round(time.Millisecond), onNew.at.Sub(requested).Round(time.Millisecond))
	if onNew.node != target[0] {
		t.Errorf("switchover went to %s, requested %s", onNew.node, target[0])
	}
	l3 := e.node(onNew.node)
	waitFor(t, 60*time.Second, "cluster healthy under "+l3.name+" with "+l2.name+" streaming", func() (bool, string) { return e.healthy(l3) })

	// --- 4. the primary loses etcd (isolation): it fences itself at its
	// deadline, the sync standby takes over once the lock is stale ----------
	time.Sleep(500 * time.Millisecond)
	isolatedAt := time.Now()
	l3.proxy.cut()
	onNext := w.waitAckAfter(t, isolatedAt, l3.name, 15*time.Second)
	lastIsolated, _ := w.lastAckBy(l3.name, time.Now())
	t.Logf("ISOLATION of %s from etcd: first write accepted on %s %s after the cut; last write acknowledged by the isolated primary %s after the cut",
		l3.name, onNext.node, onNext.at.Sub(isolatedAt).Round(time.Millisecond), lastIsolated.at.Sub(isolatedAt).Round(time.Millisecond))
	if !lastIsolated.at.Before(onNext.at) {
		t.Errorf("two primaries took writes: %s acknowledged a write at %s, after %s's first at %s",
			l3.name, lastIsolated.at.Format("15:04:05.000"), onNext.node, onNext.at.Format("15:04:05.000"))
	}
	var fenced bool
	waitFor(t, 5*time.Second, l3.name+" to report its fence", func() (bool, string) {
		_, body := e.get(l3.api("/metrics"))
		fenced = strings.Contains(string(body), "pigwf_ha_fence_events_total{cluster=\"pg-it\",member=\""+l3.name+"\"} 1")
		return fenced, ""
	})
	l3.proxy.heal()
	l4 := e.node(onNext.node)
	waitFor(t, 60*time.Second, "cluster healthy under "+l4.name+" with "+l3.name+" back", func() (bool, string) { return e.healthy(l4) })
	t.Logf("%s rejoined %s after the cut was healed", l3.name, time.Since(isolatedAt).Round(time.Millisecond))

	// --- 5. a replica whose data directory is empty clones itself ---------------
	var rep *itNode
	for _, n := range e.nodes {
		if n != l4 {
			rep = n
			break
		}
	}
	_ = rep.sup.Process.Signal(syscall.SIGTERM)
	select {
	case <-rep.supDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s's supervisor did not stop", rep.name)
	}
	if err := os.Rename(rep.dataDir, rep.dataDir+".removed-by-test"); err != nil {
		t.Fatal(err)
	}
	e.mkdir(rep.dataDir, 0o700)
	cloneFrom := time.Now()
	e.startSupervisor(rep)
	waitFor(t, 60*time.Second, rep.name+" cloned from "+l4.name+" and streaming", func() (bool, string) { return e.healthy(l4) })
	if b, _ := os.ReadFile(rep.agentLog); !strings.Contains(string(b), "cloning from leader "+l4.name+": my data directory is empty") {
		t.Errorf("%s's log does not say it cloned from the leader", rep.name)
	}
	t.Logf("EMPTY DATA DIR: %s cloned itself from %s and streams %s after its agent started", rep.name, l4.name, time.Since(cloneFrom).Round(time.Millisecond))

	// --- no acknowledged write lost, never two primaries -----------------------
	time.Sleep(200 * time.Millisecond)
	acks := w.halt()
	e.checkNoLoss(acks, l4)
	if _, count := e.leader(); count != 1 {
		t.Errorf("%d members answer /primary", count)
	}
	fenceMetrics(t, e)
}

// fenceMetrics logs the fence latency the agents measured, if any fenced.
func fenceMetrics(t *testing.T, e *itEnv) {
	for _, n := range e.nodes {
		_, body := e.get(n.api("/metrics"))
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "pigwf_ha_last_fence_latency_seconds{") || strings.HasPrefix(line, "pigwf_ha_fence_events_total{") {
				t.Logf("%s: %s", n.name, line)
			}
		}
	}
}
