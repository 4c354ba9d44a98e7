package dcs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Guard is the proof of leadership for guarded writes: the leader key's
// mod revision and the exact bytes the holder last wrote. Only
// AcquireLeader and RenewLeader hand one out, so a member that is not the
// holder has no way to pass a guard that matches.
type Guard struct {
	Revision int64
	value    []byte
}

// compares holds in a transaction only while the leader key is still what
// g proves: at g's revision, with g's exact bytes. Every write that needs
// leadership (renew, release, guarded) goes by it.
func (g Guard) compares(key string) []clientv3.Cmp {
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(key), "=", g.Revision),
		clientv3.Compare(clientv3.Value(key), "=", string(g.value)),
	}
}

// matches is compares applied to a leader key already read (nil = absent).
func (g Guard) matches(kv *mvccpb.KeyValue) bool {
	return g.Revision != 0 && kv != nil && kv.ModRevision == g.Revision && bytes.Equal(g.value, kv.Value)
}

// AcquireLeader writes rec to the leader key if it is absent
// (expectedRev == 0) or still at expectedRev (a stale record the caller
// observed). It returns the guard for the written record.
func (s *Store) AcquireLeader(ctx context.Context, rec LeaderRecord, expectedRev int64) (Guard, error) {
	return s.casLeader(ctx, "acquire leader", rec, expectedRev, absentOrAt(s.Key(KeyLeader), expectedRev))
}

// RenewLeader rewrites the leader key if it is still what guard proves
// the caller wrote. On success the old guard is spent: use the new one.
func (s *Store) RenewLeader(ctx context.Context, rec LeaderRecord, g Guard) (Guard, error) {
	return s.casLeader(ctx, "renew leader", rec, g.Revision, g.compares(s.Key(KeyLeader))...)
}

func (s *Store) casLeader(ctx context.Context, op string, rec LeaderRecord, expected int64, cmps ...clientv3.Cmp) (Guard, error) {
	key := s.Key(KeyLeader)
	val, err := json.Marshal(rec)
	if err != nil {
		return Guard{}, fmt.Errorf("dcs %s: encode: %w", op, err)
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, string(val))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return Guard{}, fmt.Errorf("dcs %s for %q: %w", op, rec.Holder, err)
	}
	if !resp.Succeeded {
		return Guard{}, &LeaderConflictError{Op: "dcs " + op + " for " + rec.Holder, Expected: expected, Current: leaderFromElse(resp)}
	}
	// A txn's writes all carry the txn's revision.
	return Guard{Revision: resp.Header.Revision, value: val}, nil
}

// ReleaseLeader deletes the leader key if guard still matches. Call it
// only when PostgreSQL cannot acknowledge writes: others take over at once.
func (s *Store) ReleaseLeader(ctx context.Context, g Guard) error {
	key := s.Key(KeyLeader)
	resp, err := s.cli.Txn(ctx).
		If(g.compares(key)...).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("dcs release leader at revision %d: %w", g.Revision, err)
	}
	if !resp.Succeeded {
		return &LeaderConflictError{Op: "dcs release leader", Expected: g.Revision, Current: leaderFromElse(resp)}
	}
	return nil
}

// leaderFromElse is the leader key read by a failed txn's Else branch.
func leaderFromElse(resp *clientv3.TxnResponse) *Versioned[LeaderRecord] {
	return leaderFromKV(elseKV(resp))
}

// leaderFromKV decodes a leader key as read (nil = absent); a value that
// does not decode is still returned, with its revisions.
func leaderFromKV(kv *mvccpb.KeyValue) *Versioned[LeaderRecord] {
	if kv == nil {
		return nil
	}
	v, _ := decode[LeaderRecord](kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	return &v
}

// RecoverGuard returns the guard for a renewal whose response was lost:
// it succeeds only if the leader key holds exactly the bytes of sent
// (holder and sequence number make them unique), i.e. etcd applied that
// very request. The caller times its lease from that request's send time.
func (s *Store) RecoverGuard(ctx context.Context, sent LeaderRecord) (Guard, error) {
	key := s.Key(KeyLeader)
	val, err := json.Marshal(sent)
	if err != nil {
		return Guard{}, fmt.Errorf("dcs recover leader guard: encode: %w", err)
	}
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Guard{}, fmt.Errorf("dcs recover leader guard for %q: %w", sent.Holder, err)
	}
	if len(resp.Kvs) == 0 || !bytes.Equal(resp.Kvs[0].Value, val) {
		var cur *Versioned[LeaderRecord]
		if len(resp.Kvs) > 0 {
			cur = leaderFromKV(resp.Kvs[0])
		}
		return Guard{}, &LeaderConflictError{Op: "dcs recover leader guard for " + sent.Holder, Current: cur}
	}
	return Guard{Revision: resp.Kvs[0].ModRevision, value: val}, nil
}

// GuardFromEvent is RecoverGuard from a watch event instead of a read: the
// holder sees its own renewal applied (the response was lost) and takes
// the guard for it. ok is false unless e is a put of the leader key with
// exactly the bytes of sent.
func GuardFromEvent(e Event, sent LeaderRecord) (Guard, bool) {
	if e.Kind != KindLeader || e.Deleted {
		return Guard{}, false
	}
	val, err := json.Marshal(sent)
	if err != nil || !bytes.Equal(val, e.Value) {
		return Guard{}, false
	}
	return Guard{Revision: e.ModRevision, value: val}, true
}
