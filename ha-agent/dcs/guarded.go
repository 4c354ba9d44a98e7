package dcs

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// guarded runs ops only if the leader key is still what g proves, and the
// extra comparisons hold.
func (s *Store) guarded(ctx context.Context, op string, g Guard, extra []clientv3.Cmp, ops ...clientv3.Op) (int64, error) {
	key := s.Key(KeyLeader)
	cmps := append(g.compares(key), extra...)
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs %s: %w", op, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if !g.matches(elseKV(resp)) {
		return 0, fmt.Errorf("dcs %s (guard revision %d): %w", op, g.Revision, ErrNotLeader)
	}
	return 0, fmt.Errorf("dcs %s: %w", op, ErrChanged)
}

// PutSync writes the sync key as the leader.
func (s *Store) PutSync(ctx context.Context, g Guard, rec SyncRecord) (int64, error) {
	put, err := putJSON("put sync", s.Key(KeySync), rec)
	if err != nil {
		return 0, err
	}
	return s.guarded(ctx, "put sync", g, nil, put)
}

// WriteInitialize records the system identifier as the leader.
func (s *Store) WriteInitialize(ctx context.Context, g Guard, rec InitializeRecord) (int64, error) {
	put, err := putJSON("write initialize", s.Key(KeyInitialize), rec)
	if err != nil {
		return 0, err
	}
	return s.guarded(ctx, "write initialize", g, nil, put)
}

// ClearFailover deletes the failover key as the leader, only if it is
// still the request at failoverRev (a new request is not lost).
func (s *Store) ClearFailover(ctx context.Context, g Guard, failoverRev int64) (int64, error) {
	key := s.Key(KeyFailover)
	return s.guarded(ctx, "clear failover", g,
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", failoverRev)}, clientv3.OpDelete(key))
}

// PutHistory writes the timeline history as the leader.
func (s *Store) PutHistory(ctx context.Context, g Guard, entries []HistoryEntry) (int64, error) {
	put, err := putJSON("put history", s.Key(KeyHistory), entries)
	if err != nil {
		return 0, err
	}
	return s.guarded(ctx, "put history", g, nil, put)
}

// PutFailsafe writes the failsafe member list as the leader.
func (s *Store) PutFailsafe(ctx context.Context, g Guard, rec FailsafeRecord) (int64, error) {
	put, err := putJSON("put failsafe", s.Key(KeyFailsafe), rec)
	if err != nil {
		return 0, err
	}
	return s.guarded(ctx, "put failsafe", g, nil, put)
}
