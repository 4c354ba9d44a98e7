package dcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// createOrCAS writes key if it is absent (expectedRev 0) or still at expectedRev.
func (s *Store) createOrCAS(ctx context.Context, op, key string, v any, expectedRev int64) (int64, error) {
	put, err := putJSON(op, key, v)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Txn(ctx).If(absentOrAt(key, expectedRev)).Then(put).Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs %s: %w", op, err)
	}
	if !resp.Succeeded {
		if expectedRev == 0 {
			return 0, fmt.Errorf("dcs %s: %w", op, ErrExists)
		}
		return 0, fmt.Errorf("dcs %s (expected revision %d): %w", op, expectedRev, ErrChanged)
	}
	return resp.Header.Revision, nil
}

// ClaimInitialize creates the initialize key naming name: the bootstrap
// race. It returns ErrExists when someone else claimed it first.
func (s *Store) ClaimInitialize(ctx context.Context, name string) (int64, error) {
	return s.createOrCAS(ctx, "claim initialize for "+name, s.Key(KeyInitialize), InitializeRecord{ClaimedBy: name}, 0)
}

// AbandonInitialize deletes a claim whose bootstrap failed, if unchanged.
func (s *Store) AbandonInitialize(ctx context.Context, rev int64) error {
	key := s.Key(KeyInitialize)
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("dcs abandon initialize: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("dcs abandon initialize (expected revision %d): %w", rev, ErrChanged)
	}
	return nil
}

// RegisterCluster is the bootstrap contract between the cluster-creation
// workflow and the agents: before any agent starts, the workflow writes
// the dynamic config and the initialize key (the member that initdb'd the
// primary and its system identifier). Both are created only if absent, so
// re-running the workflow changes nothing. It returns the initialize
// record as stored: when it names another system identifier, the prefix
// already belongs to another cluster and the caller must stop.
func (s *Store) RegisterCluster(ctx context.Context, initialize InitializeRecord, config json.RawMessage) (InitializeRecord, error) {
	if initialize.ClaimedBy == "" || initialize.Sysid == "" {
		return InitializeRecord{}, errors.New("dcs register cluster: initialize needs claimed_by and sysid")
	}
	if !json.Valid(config) {
		return InitializeRecord{}, errors.New("dcs register cluster: config is not valid JSON")
	}
	cfgKey, initKey := s.Key(KeyConfig), s.Key(KeyInitialize)
	initVal, err := json.Marshal(initialize)
	if err != nil {
		return InitializeRecord{}, fmt.Errorf("dcs register cluster: encode initialize: %w", err)
	}
	// Config first (agents need it before they act), then initialize;
	// the second transaction's Else branch returns what is stored.
	_, err = s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(cfgKey), "=", 0)).
		Then(clientv3.OpPut(cfgKey, string(config))).Commit()
	if err != nil {
		return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: config: %w", s.prefix, err)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(initKey), "=", 0)).
		Then(clientv3.OpPut(initKey, string(initVal))).
		Else(clientv3.OpGet(initKey)).Commit()
	if err != nil {
		return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: initialize: %w", s.prefix, err)
	}
	if resp.Succeeded {
		return initialize, nil
	}
	kv := elseKV(resp)
	if kv == nil {
		return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: initialize key vanished during registration", s.prefix)
	}
	var existing InitializeRecord
	if err := json.Unmarshal(kv.Value, &existing); err != nil {
		return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: existing initialize key: %w", s.prefix, err)
	}
	return existing, nil
}

// RequestFailover creates a failover request; one at a time.
func (s *Store) RequestFailover(ctx context.Context, rec FailoverRecord) (int64, error) {
	return s.createOrCAS(ctx, "request failover", s.Key(KeyFailover), rec, 0)
}

// PutConfig writes the dynamic config (0 = create) by CAS.
func (s *Store) PutConfig(ctx context.Context, raw json.RawMessage, expectedRev int64) (int64, error) {
	if !json.Valid(raw) {
		return 0, errors.New("dcs put config: invalid JSON")
	}
	return s.createOrCAS(ctx, "put config", s.Key(KeyConfig), raw, expectedRev)
}

// SetPause enters (rec non-nil) or leaves (nil) maintenance mode.
func (s *Store) SetPause(ctx context.Context, rec *PauseRecord) (int64, error) {
	key := s.Key(KeyPause)
	if rec == nil {
		resp, err := s.cli.Delete(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("dcs resume: %w", err)
		}
		return resp.Header.Revision, nil
	}
	put, err := putJSON("pause", key, rec)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Txn(ctx).Then(put).Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs pause: %w", err)
	}
	return resp.Header.Revision, nil
}
