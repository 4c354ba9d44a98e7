package dcs

import (
	"errors"
	"testing"
)

func testHandOverLeader(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	rec := LeaderRecord{Holder: "n2", Term: 4, Timeline: 5, Optime: 0x3000060}

	// 1. Not paused: refused, nothing written.
	if _, err := s.HandOverLeader(ctx, rec, 0); !errors.Is(err, ErrNotPaused) {
		t.Fatalf("1: hand-over without the pause key: %v, want ErrNotPaused", err)
	}
	if snap, _ := s.Load(ctx); snap.Leader != nil {
		t.Fatalf("1: a refused hand-over wrote the leader key: %+v", snap.Leader)
	}

	// 2. Paused, with the keys of the cluster as it was: the leader key
	// names n2, the sync, failover and failsafe keys are gone, the rest stays.
	if _, err := s.SetPause(ctx, &PauseRecord{By: "test"}); err != nil {
		t.Fatal(err)
	}
	old, err := s.AcquireLeader(ctx, LeaderRecord{Holder: "n1", Term: 3, Timeline: 4}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSync(ctx, old, SyncRecord{Leader: "n1", Standbys: []string{"n3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFailsafe(ctx, old, FailsafeRecord{Members: []string{"n1", "n3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestFailover(ctx, FailoverRecord{To: "n3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutHistory(ctx, old, []HistoryEntry{{Timeline: 3, LSN: 1}}); err != nil {
		t.Fatal(err)
	}

	// 3. A stale expected revision is refused with what the key holds now.
	var conflict *LeaderConflictError
	if _, err := s.HandOverLeader(ctx, rec, old.Revision-1); !errors.As(err, &conflict) || conflict.Current == nil || conflict.Current.Value.Holder != "n1" {
		t.Fatalf("3: hand-over at a stale revision: %v, want a LeaderConflictError naming n1", err)
	}

	if _, err := s.HandOverLeader(ctx, rec, old.Revision); err != nil {
		t.Fatalf("2: hand-over: %v", err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Leader == nil || snap.Leader.Value != rec {
		t.Fatalf("2: leader key %+v, want %+v", snap.Leader, rec)
	}
	if snap.Sync != nil || snap.Failover != nil || snap.Failsafe != nil {
		t.Fatalf("2: sync %v, failover %v, failsafe %v left behind", snap.Sync, snap.Failover, snap.Failsafe)
	}
	if snap.Pause == nil || snap.History == nil {
		t.Fatalf("2: pause %v or history %v removed", snap.Pause, snap.History)
	}
	// 4. The old holder's guard no longer proves anything.
	if _, err := s.PutSync(ctx, old, SyncRecord{Leader: "n1"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("4: the old holder's guarded write after the hand-over: %v, want ErrNotLeader", err)
	}
}
