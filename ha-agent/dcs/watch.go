package dcs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyKind says which key of the cluster an event is about.
type KeyKind int

const (
	KindUnknown KeyKind = iota
	KindLeader
	KindMember
	KindInitialize
	KindConfig
	KindSync
	KindFailover
	KindPause
	KindHistory
	KindFailsafe
)

var kindNames = [...]string{"unknown", "leader", "member", "initialize", "config", "sync", "failover", "pause", "history", "failsafe"}

func (k KeyKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event is one change of one key.
type Event struct {
	Kind    KeyKind
	Member  string // for KindMember
	Deleted bool
	// ModRevision is the revision of the change (of the deletion for a delete).
	ModRevision    int64
	CreateRevision int64
	Value          []byte // nil for a delete
	// ReceivedAt is when this process received the event; it carries Go's
	// monotonic reading, so time.Since(ReceivedAt) is immune to wall-clock
	// steps. Staleness of the leader is timed from it.
	ReceivedAt time.Time
}

// DecodeEvent decodes an event's value.
func DecodeEvent[T any](e Event) (T, error) {
	var v T
	if e.Deleted {
		return v, fmt.Errorf("dcs decode %s event at revision %d: key was deleted", e.Kind, e.ModRevision)
	}
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return v, fmt.Errorf("dcs decode %s event at revision %d: %w", e.Kind, e.ModRevision, err)
	}
	return v, nil
}

// WatchUpdate is one watch response: events in revision order, or a
// progress notification (no events), or a terminal error after which the
// channel closes and the caller must Load again and re-watch.
type WatchUpdate struct {
	Events   []Event
	Revision int64
	Err      error
}

// Watch streams every change under the cluster prefix after afterRevision
// (normally Snapshot.Revision). The agent reacts to a leader change or
// deletion from here, not by polling. The watch requires an etcd leader: an
// etcd member cut off from its quorum cancels it instead of going silent.
// A compacted start revision ends the stream with an error wrapping
// rpctypes.ErrCompacted.
func (s *Store) Watch(ctx context.Context, afterRevision int64) <-chan WatchUpdate {
	out := make(chan WatchUpdate, 64)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(afterRevision+1), clientv3.WithProgressNotify())
	go func() {
		defer close(out)
		defer cancel()
		send := func(u WatchUpdate) bool {
			select {
			case out <- u:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range wch {
			received := time.Now()
			if err := resp.Err(); err != nil {
				send(WatchUpdate{Revision: resp.Header.Revision, Err: fmt.Errorf("dcs watch %s after revision %d: %w", s.prefix, afterRevision, err)})
				return
			}
			u := WatchUpdate{Revision: resp.Header.Revision}
			for _, ev := range resp.Events {
				kind, member := s.classify(ev.Kv.Key)
				e := Event{Kind: kind, Member: member, ModRevision: ev.Kv.ModRevision, CreateRevision: ev.Kv.CreateRevision, ReceivedAt: received}
				if ev.Type == clientv3.EventTypeDelete {
					e.Deleted = true
				} else {
					e.Value = bytes.Clone(ev.Kv.Value)
				}
				u.Events = append(u.Events, e)
			}
			if !send(u) {
				return
			}
		}
		if ctx.Err() == nil {
			send(WatchUpdate{Err: fmt.Errorf("dcs watch %s after revision %d: channel closed", s.prefix, afterRevision)})
		}
	}()
	return out
}
