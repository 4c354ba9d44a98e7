package dcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pigwf/pigwf/internal/etcdtest"
)

func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

func newClient(t *testing.T, url string) *clientv3.Client { return etcdtest.Client(t, url) }

func newStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := New(newClient(t, url), "/pigwf-test", "pg-test", time.Second)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func percentiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99)/100], s[len(s)-1]
}

// All scenarios share one etcd process (starting one costs ~1 s).
func TestEtcdStore(t *testing.T) {
	url := startEtcd(t)
	t.Run("LoadSeesEveryKey", func(t *testing.T) { testLoad(t, url) })
	t.Run("AcquireByTwoContendersExactlyOneWins", func(t *testing.T) { testAcquireRace(t, url) })
	t.Run("RenewWithStaleRevisionFails", func(t *testing.T) { testRenew(t, url) })
	t.Run("WatchSeesReleaseWithinMilliseconds", func(t *testing.T) { testWatchRelease(t, url) })
	t.Run("GuardedWritesByNonHolderFail", func(t *testing.T) { testGuarded(t, url) })
	t.Run("WatchFromCompactedRevisionFails", func(t *testing.T) { testCompacted(t, url) })
	t.Run("MemberLeaseKeptAliveAndRevoked", func(t *testing.T) { testMemberLease(t, url) })
	t.Run("RegisterClusterCreatesOnlyIfAbsent", func(t *testing.T) { testRegisterCluster(t, url) })
	t.Run("RecoverGuardOnlyForOwnAppliedRenewal", func(t *testing.T) { testRecoverGuard(t, url) })
}

func testRegisterCluster(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	mine := InitializeRecord{ClaimedBy: "n1", Sysid: "7289263672843878470"}
	got, err := s.RegisterCluster(ctx, mine, json.RawMessage(`{"synchronous_mode":true}`))
	if err != nil || got != mine {
		t.Fatalf("first registration: got %+v, %v", got, err)
	}
	// A second workflow run with another sysid (another cluster) learns the
	// stored one and changes nothing.
	other := InitializeRecord{ClaimedBy: "n2", Sysid: "7000000000000000001"}
	got, err = s.RegisterCluster(ctx, other, json.RawMessage(`{"synchronous_mode":false}`))
	if err != nil || got != mine {
		t.Fatalf("second registration: got %+v, %v; want the stored %+v", got, err, mine)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Config == nil || string(snap.Config.Value) != `{"synchronous_mode":true}` {
		t.Fatalf("config overwritten or missing: %+v", snap.Config)
	}
	if _, err := s.RegisterCluster(ctx, InitializeRecord{ClaimedBy: "n1"}, json.RawMessage(`{}`)); err == nil {
		t.Fatal("registration without a sysid accepted")
	}
}

func testRecoverGuard(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	g, err := s.AcquireLeader(ctx, LeaderRecord{Holder: "n1", Term: 1, Seq: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	applied := LeaderRecord{Holder: "n1", Term: 1, Seq: 2}
	g2, err := s.RenewLeader(ctx, applied, g)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the response of renewal seq 2 was lost: the holder recovers
	// a guard that works for the next renewal.
	rg, err := s.RecoverGuard(ctx, applied)
	if err != nil || rg.Revision != g2.Revision {
		t.Fatalf("recover applied renewal: %+v, %v (want revision %d)", rg, err, g2.Revision)
	}
	if _, err := s.RenewLeader(ctx, LeaderRecord{Holder: "n1", Term: 1, Seq: 3}, rg); err != nil {
		t.Fatalf("renew with recovered guard: %v", err)
	}
	// A renewal that was never applied (seq 9) yields no guard.
	if _, err := s.RecoverGuard(ctx, LeaderRecord{Holder: "n1", Term: 1, Seq: 9}); !errors.Is(err, ErrLeaderChanged) {
		t.Fatalf("recover unapplied renewal: got %v", err)
	}
}

func wipe(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.cli.Delete(ctxT(t), s.Prefix(), clientv3.WithPrefix()); err != nil {
		t.Fatalf("wipe: %v", err)
	}
}

func testLoad(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	if _, err := s.PutMember(ctx, "n1", MemberRecord{Role: "primary", State: "running", Timeline: 1, FlushLSN: 0x3000060, APIURL: "http://n1:8008", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMember(ctx, "n2", MemberRecord{Role: "replica", State: "running", Timeline: 1, ReceivedLSN: 0x3000060, Upstream: "n1", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	initRev, err := s.ClaimInitialize(ctx, "n1")
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if _, err := s.ClaimInitialize(ctx, "n2"); !errors.Is(err, ErrExists) {
		t.Fatalf("second claim: got %v, want ErrExists", err)
	}
	if _, err := s.PutConfig(ctx, json.RawMessage(`{"leader_timeout_ms":500}`), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPause(ctx, &PauseRecord{By: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestFailover(ctx, FailoverRecord{From: "n1", To: "n2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestFailover(ctx, FailoverRecord{To: "n3"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second failover request: got %v, want ErrExists", err)
	}
	// A malformed leader key is reported but still returned with its revision.
	if _, err := s.cli.Put(ctx, s.Key(KeyLeader), "{garbage"); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Members) != 2 || snap.Members["n1"].Value.FlushLSN != 0x3000060 || snap.Members["n2"].Value.Upstream != "n1" {
		t.Errorf("members: %+v", snap.Members)
	}
	if snap.Initialize == nil || snap.Initialize.Value.ClaimedBy != "n1" || snap.Initialize.ModRevision != initRev {
		t.Errorf("initialize: %+v (claimed at revision %d)", snap.Initialize, initRev)
	}
	if snap.Config == nil || !bytes.Equal(snap.Config.Value, []byte(`{"leader_timeout_ms":500}`)) {
		t.Errorf("config: %+v", snap.Config)
	}
	if snap.Pause == nil || snap.Failover == nil || snap.Failover.Value.To != "n2" {
		t.Errorf("pause %+v failover %+v", snap.Pause, snap.Failover)
	}
	if snap.Leader == nil || snap.Leader.ModRevision == 0 || len(snap.Problems) != 1 {
		t.Errorf("malformed leader: leader %+v problems %v", snap.Leader, snap.Problems)
	}
	if snap.Revision < snap.Leader.ModRevision {
		t.Errorf("snapshot revision %d older than its leader key %d", snap.Revision, snap.Leader.ModRevision)
	}
	// The malformed record can be replaced by CAS on its revision.
	if _, err := s.AcquireLeader(ctx, LeaderRecord{Holder: "n2", Term: 1}, snap.Leader.ModRevision); err != nil {
		t.Fatalf("replace malformed leader: %v", err)
	}
	if _, err := s.SetPause(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil || snap.Pause != nil || snap.Leader.Value.Holder != "n2" {
		t.Fatalf("after resume: %+v %v", snap, err)
	}
}

func testAcquireRace(t *testing.T, url string) {
	a, b := newStore(t, url), newStore(t, url)
	wipe(t, a)
	ctx := ctxT(t)
	expected := int64(0) // first rounds race for an absent key, later ones for a stale record
	wins := map[string]int{}
	for round := range 40 {
		type result struct {
			name string
			g    Guard
			err  error
		}
		results := make(chan result, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, c := range []struct {
			name string
			s    *Store
		}{{"n1", a}, {"n2", b}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				g, err := c.s.AcquireLeader(ctx, LeaderRecord{Holder: c.name, Term: int64(round + 1)}, expected)
				results <- result{c.name, g, err}
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		var winner result
		var losers []result
		for r := range results {
			if r.err == nil {
				if winner.name != "" {
					t.Fatalf("round %d: both %s and %s acquired the leader key", round, winner.name, r.name)
				}
				winner = r
			} else {
				losers = append(losers, r)
			}
		}
		if winner.name == "" || len(losers) != 1 {
			t.Fatalf("round %d: winner %q, losers %+v", round, winner.name, losers)
		}
		var conflict *LeaderConflictError
		if !errors.As(losers[0].err, &conflict) || !errors.Is(losers[0].err, ErrLeaderChanged) {
			t.Fatalf("round %d: loser error %v is not a leader conflict", round, losers[0].err)
		}
		if conflict.Current == nil || conflict.Current.Value.Holder != winner.name || conflict.Current.ModRevision != winner.g.Revision {
			t.Fatalf("round %d: loser sees %+v, winner %s at %d", round, conflict.Current, winner.name, winner.g.Revision)
		}
		wins[winner.name]++
		if round < 20 {
			if err := map[string]*Store{"n1": a, "n2": b}[winner.name].ReleaseLeader(ctx, winner.g); err != nil {
				t.Fatalf("round %d: release: %v", round, err)
			}
		} else {
			expected = winner.g.Revision // the record goes "stale": both race with a CAS on it
		}
	}
	t.Logf("40 rounds (20 absent, 20 stale takeover), exactly one winner each: %v", wins)
}

func testRenew(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	g1, err := s.AcquireLeader(ctx, LeaderRecord{Holder: "n1", Term: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := g1
	lat := make([]time.Duration, 0, 300)
	for i := range 300 {
		sent := time.Now()
		ng, err := s.RenewLeader(ctx, LeaderRecord{Holder: "n1", Term: 1, Seq: uint64(i + 1), Optime: uint64(i)}, g)
		lat = append(lat, time.Since(sent))
		if err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
		if ng.Revision <= g.Revision {
			t.Fatalf("renew %d: revision went from %d to %d", i, g.Revision, ng.Revision)
		}
		g = ng
	}
	p50, p99, mx := percentiles(lat)
	t.Logf("CAS renew latency over 300 renewals: p50 %v, p99 %v, max %v", p50, p99, mx)
	// The design needs a renewal to finish well inside one 100 ms renew period.
	if p99 > 100*time.Millisecond {
		t.Errorf("renew p99 %v: too slow for a 100 ms renew period", p99)
	}
	// A renewal with the spent (stale) guard must fail, and say who holds it.
	_, err = s.RenewLeader(ctx, LeaderRecord{Holder: "n1", Term: 1, Seq: 999}, g1)
	var conflict *LeaderConflictError
	if !errors.As(err, &conflict) || conflict.Current == nil || conflict.Current.ModRevision != g.Revision {
		t.Fatalf("renew with stale revision %d: got %v", g1.Revision, err)
	}
	// Same revision, different bytes (someone else's guard) also fails.
	forged := Guard{Revision: g.Revision, value: []byte(`{"holder":"n2"}`)}
	if _, err := s.RenewLeader(ctx, LeaderRecord{Holder: "n2"}, forged); !errors.Is(err, ErrLeaderChanged) {
		t.Fatalf("renew with forged guard: got %v", err)
	}
	if err := s.ReleaseLeader(ctx, g1); !errors.Is(err, ErrLeaderChanged) {
		t.Fatalf("release with stale guard: got %v", err)
	}
	if err := s.ReleaseLeader(ctx, g); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := s.RenewLeader(ctx, LeaderRecord{Holder: "n1"}, g); !errors.Is(err, ErrLeaderChanged) {
		t.Fatalf("renew after release: got %v", err)
	}
}

func testWatchRelease(t *testing.T, url string) {
	holder, watcher := newStore(t, url), newStore(t, url)
	wipe(t, holder)
	ctx := ctxT(t)
	snap, err := watcher.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := watcher.Watch(wctx, snap.Revision)
	next := func(want func(Event) bool) Event {
		t.Helper()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					t.Fatal("watch closed")
				}
				if u.Err != nil {
					t.Fatalf("watch: %v", u.Err)
				}
				for _, e := range u.Events {
					if want(e) {
						return e
					}
				}
			case <-timeout:
				t.Fatal("no matching watch event within 2s")
			}
		}
	}
	isLeader := func(deleted bool) func(Event) bool {
		return func(e Event) bool { return e.Kind == KindLeader && e.Deleted == deleted }
	}
	var releaseLat, renewLat []time.Duration
	for i := range 30 {
		g, err := holder.AcquireLeader(ctx, LeaderRecord{Holder: "n1", Term: int64(i + 1)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if e := next(isLeader(false)); e.ModRevision != g.Revision {
			t.Fatalf("acquire event at %d, acquired at %d", e.ModRevision, g.Revision)
		}
		sent := time.Now()
		if g, err = holder.RenewLeader(ctx, LeaderRecord{Holder: "n1", Term: int64(i + 1), Seq: 1}, g); err != nil {
			t.Fatal(err)
		}
		e := next(isLeader(false))
		renewLat = append(renewLat, e.ReceivedAt.Sub(sent))
		if rec, err := DecodeEvent[LeaderRecord](e); err != nil || rec.Seq != 1 || e.ModRevision != g.Revision {
			t.Fatalf("renew event %+v: %+v %v", e, rec, err)
		}
		sent = time.Now()
		if err := holder.ReleaseLeader(ctx, g); err != nil {
			t.Fatal(err)
		}
		e = next(isLeader(true))
		releaseLat = append(releaseLat, e.ReceivedAt.Sub(sent))
	}
	p50, p99, mx := percentiles(releaseLat)
	r50, r99, rmx := percentiles(renewLat)
	t.Logf("release → watcher sees the delete: p50 %v, p99 %v, max %v (30 runs)", p50, p99, mx)
	t.Logf("renew → watcher sees the change:   p50 %v, p99 %v, max %v (30 runs)", r50, r99, rmx)
	// Others take a released lock at once: the delete must reach them in
	// a small fraction of the 500 ms lease, not after a poll interval.
	if p50 > 20*time.Millisecond || mx > 250*time.Millisecond {
		t.Errorf("release seen too late: p50 %v max %v", p50, mx)
	}
}

func testGuarded(t *testing.T, url string) {
	a, b := newStore(t, url), newStore(t, url)
	wipe(t, a)
	ctx := ctxT(t)
	// n2 led once: it holds a guard from that time.
	gb, err := b.AcquireLeader(ctx, LeaderRecord{Holder: "n2", Term: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseLeader(ctx, gb); err != nil {
		t.Fatal(err)
	}
	ga, err := a.AcquireLeader(ctx, LeaderRecord{Holder: "n1", Term: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		g    Guard
	}{{"stale guard of a former leader", gb}, {"zero guard", Guard{}}, {"right revision, wrong holder", Guard{Revision: ga.Revision, value: []byte(`{"holder":"n2","term":2,"timeline":0,"optime":0,"seq":0}`)}}} {
		if _, err := b.PutSync(ctx, c.g, SyncRecord{Leader: "n2", Standbys: []string{"n3"}}); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s: PutSync got %v, want ErrNotLeader", c.name, err)
		}
	}
	if _, err := a.PutSync(ctx, ga, SyncRecord{Leader: "n1", Standbys: []string{"n2"}}); err != nil {
		t.Fatalf("holder PutSync: %v", err)
	}
	if _, err := a.WriteInitialize(ctx, ga, InitializeRecord{ClaimedBy: "n1", Sysid: "7289263672843878470"}); err != nil {
		t.Fatalf("holder WriteInitialize: %v", err)
	}
	if _, err := a.PutHistory(ctx, ga, []HistoryEntry{{Timeline: 1, LSN: 0x3000060, Leader: "n1"}}); err != nil {
		t.Fatalf("holder PutHistory: %v", err)
	}
	if _, err := a.PutFailsafe(ctx, ga, FailsafeRecord{Members: []string{"n1", "n2"}}); err != nil {
		t.Fatalf("holder PutFailsafe: %v", err)
	}
	// Clearing a failover request is a CAS on the request too.
	frev, err := b.RequestFailover(ctx, FailoverRecord{From: "n1", To: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ClearFailover(ctx, ga, frev-1); !errors.Is(err, ErrChanged) {
		t.Errorf("clear a different failover request: got %v, want ErrChanged", err)
	}
	if _, err := b.ClearFailover(ctx, gb, frev); !errors.Is(err, ErrNotLeader) {
		t.Errorf("non-holder clears failover: got %v, want ErrNotLeader", err)
	}
	if _, err := a.ClearFailover(ctx, ga, frev); err != nil {
		t.Errorf("holder clears failover: %v", err)
	}
	// After a renewal the previous guard is spent.
	ga2, err := a.RenewLeader(ctx, LeaderRecord{Holder: "n1", Term: 2, Seq: 1}, ga)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutSync(ctx, ga, SyncRecord{Leader: "n1"}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("PutSync with the guard spent by a renewal: got %v", err)
	}
	if _, err := a.PutSync(ctx, ga2, SyncRecord{Leader: "n1"}); err != nil {
		t.Errorf("PutSync with the renewed guard: %v", err)
	}
	snap, err := a.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sync == nil || snap.Sync.Value.Leader != "n1" || len(snap.Sync.Value.Standbys) != 0 ||
		snap.Initialize == nil || snap.Initialize.Value.Sysid == "" || snap.Failover != nil ||
		snap.History == nil || len(snap.History.Value) != 1 || snap.Failsafe == nil {
		t.Errorf("after guarded writes: sync %+v init %+v failover %+v history %+v failsafe %+v",
			snap.Sync, snap.Initialize, snap.Failover, snap.History, snap.Failsafe)
	}
}

func testCompacted(t *testing.T, url string) {
	s := newStore(t, url)
	ctx := ctxT(t)
	old, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.cli.Put(ctx, s.Key(KeyConfig), fmt.Sprintf(`{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Compact(ctx, cur.Revision); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case u := <-s.Watch(wctx, old.Revision-1):
		if !errors.Is(u.Err, rpctypes.ErrCompacted) {
			t.Fatalf("watch from a compacted revision: got %+v", u)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no error from a watch on a compacted revision")
	}
}

func testMemberLease(t *testing.T, url string) {
	s := newStore(t, url) // member TTL 1 s
	ctx := ctxT(t)
	if _, err := s.PutMember(ctx, "n9", MemberRecord{Role: "replica", State: "running", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // > 2 × TTL: only the keepalive keeps it
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Members["n9"]; !ok {
		t.Fatal("member key expired although its lease was kept alive")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Members["n9"]; ok {
		t.Fatal("member key still present after its lease was revoked")
	}
}
