package dcs

import (
	"errors"
	"testing"
)

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
