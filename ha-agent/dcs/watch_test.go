package dcs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

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
