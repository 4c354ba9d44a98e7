package dcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	// ErrLeaderChanged: a CAS on the leader key failed (someone else
	// wrote or deleted it since the expected revision).
	ErrLeaderChanged = errors.New("leader key changed")
	// ErrNotLeader: a leader-guarded write failed its guard.
	ErrNotLeader = errors.New("not the leader: leader key no longer matches the guard")
	// ErrChanged: a CAS on a non-leader key failed.
	ErrChanged = errors.New("key changed since the expected revision")
	// ErrExists: a create-only write found the key present.
	ErrExists = errors.New("key already exists")
)

// LeaderConflictError carries what the leader key holds after a failed CAS.
type LeaderConflictError struct {
	Op       string
	Expected int64                    // expected mod revision (0 = absent)
	Current  *Versioned[LeaderRecord] // nil = key absent
}

func (e *LeaderConflictError) Error() string {
	now := "absent"
	if e.Current != nil {
		now = fmt.Sprintf("held by %q at revision %d", e.Current.Value.Holder, e.Current.ModRevision)
	}
	return fmt.Sprintf("%s: expected leader key at revision %d, it is %s: %v", e.Op, e.Expected, now, ErrLeaderChanged)
}

func (e *LeaderConflictError) Unwrap() error { return ErrLeaderChanged }

// Guard is the proof of leadership for guarded writes: the leader key's
// mod revision and the exact bytes the holder last wrote. Only
// AcquireLeader and RenewLeader hand one out, so a member that is not the
// holder has no way to pass a guard that matches.
type Guard struct {
	Revision int64
	value    []byte
}

// Store is a typed view of one cluster's keys.
type Store struct {
	cli       *clientv3.Client
	prefix    string // "<prefix>/<cluster>/"
	memberTTL int64  // seconds

	mu          sync.Mutex
	memberLease clientv3.LeaseID
	stopKeep    context.CancelFunc
}

// New returns a store for cluster under prefix (e.g. "/pigwf", "pg-test").
// memberTTL is the cleanup lease on member keys, rounded up to seconds.
func New(cli *clientv3.Client, prefix, cluster string, memberTTL time.Duration) (*Store, error) {
	if cluster == "" || strings.Contains(cluster, "/") {
		return nil, fmt.Errorf("dcs: invalid cluster name %q", cluster)
	}
	ttl := int64((memberTTL + time.Second - 1) / time.Second)
	if ttl < 1 {
		return nil, fmt.Errorf("dcs: member TTL %s must be at least 1s", memberTTL)
	}
	return &Store{cli: cli, prefix: strings.TrimRight(prefix, "/") + "/" + cluster + "/", memberTTL: ttl}, nil
}

// Key returns the full etcd key of name (e.g. Key(KeyLeader)).
func (s *Store) Key(name string) string { return s.prefix + name }

// Prefix is the cluster's key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Load reads every key of the cluster in one linearizable range read.
func (s *Store) Load(ctx context.Context) (*Snapshot, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("dcs load %s: %w", s.prefix, err)
	}
	snap := &Snapshot{Revision: resp.Header.Revision, Members: map[string]Versioned[MemberRecord]{}}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.prefix)
		fail := func(err error) {
			snap.Problems = append(snap.Problems, fmt.Errorf("dcs key %s at revision %d: %w", kv.Key, kv.ModRevision, err))
		}
		switch {
		case name == KeyLeader:
			v, err := decode[LeaderRecord](kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
			if err != nil {
				fail(err)
			}
			snap.Leader = &v // kept even when malformed: see Snapshot.Problems
		case strings.HasPrefix(name, KeyMembers):
			v, err := decode[MemberRecord](kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
			if err != nil {
				fail(err)
				continue
			}
			snap.Members[strings.TrimPrefix(name, KeyMembers)] = v
		case name == KeyInitialize:
			setDecoded(&snap.Initialize, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case name == KeyConfig:
			raw := json.RawMessage(bytes.Clone(kv.Value))
			if !json.Valid(raw) {
				fail(errors.New("invalid JSON"))
				continue
			}
			snap.Config = &Versioned[json.RawMessage]{Value: raw, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
		case name == KeySync:
			setDecoded(&snap.Sync, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case name == KeyFailover:
			setDecoded(&snap.Failover, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case name == KeyPause:
			setDecoded(&snap.Pause, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case name == KeyHistory:
			setDecoded(&snap.History, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case name == KeyFailsafe:
			setDecoded(&snap.Failsafe, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		}
	}
	return snap, nil
}

func decode[T any](raw []byte, create, mod, version int64) (Versioned[T], error) {
	v := Versioned[T]{CreateRevision: create, ModRevision: mod, Version: version}
	err := json.Unmarshal(raw, &v.Value)
	return v, err
}

func setDecoded[T any](dst **Versioned[T], raw []byte, create, mod, version int64, fail func(error)) {
	v, err := decode[T](raw, create, mod, version)
	if err != nil {
		fail(err)
		return
	}
	*dst = &v
}

// --- leader key ------------------------------------------------------------

// AcquireLeader writes rec to the leader key if it is absent
// (expectedRev == 0) or still at expectedRev (a stale record the caller
// observed). It returns the guard for the written record.
func (s *Store) AcquireLeader(ctx context.Context, rec LeaderRecord, expectedRev int64) (Guard, error) {
	key := s.Key(KeyLeader)
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", expectedRev)
	if expectedRev == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return s.casLeader(ctx, "acquire leader", rec, expectedRev, cmp)
}

// RenewLeader rewrites the leader key if it is still what guard proves
// the caller wrote. On success the old guard is spent: use the new one.
func (s *Store) RenewLeader(ctx context.Context, rec LeaderRecord, g Guard) (Guard, error) {
	key := s.Key(KeyLeader)
	return s.casLeader(ctx, "renew leader", rec, g.Revision,
		clientv3.Compare(clientv3.ModRevision(key), "=", g.Revision),
		clientv3.Compare(clientv3.Value(key), "=", string(g.value)))
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
		If(clientv3.Compare(clientv3.ModRevision(key), "=", g.Revision), clientv3.Compare(clientv3.Value(key), "=", string(g.value))).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("dcs release leader at revision %d: %w", g.Revision, err)
	}
	if !resp.Succeeded {
		return &LeaderConflictError{Op: "dcs release leader", Expected: g.Revision, Current: leaderFromElse(resp)}
	}
	return nil
}

// leaderKVFromElse returns the leader key read by a failed txn's Else branch.
func leaderKVFromElse(resp *clientv3.TxnResponse) *mvccpb.KeyValue {
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			return rr.Kvs[0]
		}
	}
	return nil
}

func leaderFromElse(resp *clientv3.TxnResponse) *Versioned[LeaderRecord] {
	kv := leaderKVFromElse(resp)
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
			v, _ := decode[LeaderRecord](resp.Kvs[0].Value, resp.Kvs[0].CreateRevision, resp.Kvs[0].ModRevision, resp.Kvs[0].Version)
			cur = &v
		}
		return Guard{}, &LeaderConflictError{Op: "dcs recover leader guard for " + sent.Holder, Current: cur}
	}
	return Guard{Revision: resp.Kvs[0].ModRevision, value: val}, nil
}

// --- leader-guarded writes ---------------------------------------------------

// guarded runs ops only if the leader key is still what g proves, and the
// extra comparisons hold.
func (s *Store) guarded(ctx context.Context, op string, g Guard, extra []clientv3.Cmp, ops ...clientv3.Op) (int64, error) {
	key := s.Key(KeyLeader)
	cmps := append([]clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(key), "=", g.Revision),
		clientv3.Compare(clientv3.Value(key), "=", string(g.value)),
	}, extra...)
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs %s: %w", op, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if kv := leaderKVFromElse(resp); g.Revision == 0 || kv == nil || kv.ModRevision != g.Revision || !bytes.Equal(g.value, kv.Value) {
		return 0, fmt.Errorf("dcs %s (guard revision %d): %w", op, g.Revision, ErrNotLeader)
	}
	return 0, fmt.Errorf("dcs %s: %w", op, ErrChanged)
}

func putJSON(op, key string, v any) (clientv3.Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("dcs %s: encode: %w", op, err)
	}
	return clientv3.OpPut(key, string(b)), nil
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

// --- unguarded writes --------------------------------------------------------

// createOrCAS writes key if it is absent (expectedRev 0) or still at expectedRev.
func (s *Store) createOrCAS(ctx context.Context, op, key string, v any, expectedRev int64) (int64, error) {
	put, err := putJSON(op, key, v)
	if err != nil {
		return 0, err
	}
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", expectedRev)
	if expectedRev == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	resp, err := s.cli.Txn(ctx).If(cmp).Then(put).Commit()
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
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			var existing InitializeRecord
			if err := json.Unmarshal(rr.Kvs[0].Value, &existing); err != nil {
				return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: existing initialize key: %w", s.prefix, err)
			}
			return existing, nil
		}
	}
	return InitializeRecord{}, fmt.Errorf("dcs register cluster %s: initialize key vanished during registration", s.prefix)
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

// --- member keys -----------------------------------------------------------

// PutMember writes this member's report under a short lease, kept alive
// in the background; the lease only removes members that vanished.
func (s *Store) PutMember(ctx context.Context, name string, rec MemberRecord) (int64, error) {
	if name == "" || strings.Contains(name, "/") {
		return 0, fmt.Errorf("dcs put member: invalid member name %q", name)
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("dcs put member %s: encode: %w", name, err)
	}
	for attempt := 0; ; attempt++ {
		lease, err := s.ensureMemberLease(ctx)
		if err != nil {
			return 0, fmt.Errorf("dcs put member %s: %w", name, err)
		}
		resp, err := s.cli.Put(ctx, s.Key(KeyMembers+name), string(val), clientv3.WithLease(lease))
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			s.dropMemberLease(lease) // expired while we were away: grant a new one
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("dcs put member %s: %w", name, err)
		}
		return resp.Header.Revision, nil
	}
}

// DeleteMember removes a member key (clean shutdown).
func (s *Store) DeleteMember(ctx context.Context, name string) error {
	if _, err := s.cli.Delete(ctx, s.Key(KeyMembers+name)); err != nil {
		return fmt.Errorf("dcs delete member %s: %w", name, err)
	}
	return nil
}

func (s *Store) ensureMemberLease(ctx context.Context) (clientv3.LeaseID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.memberLease != 0 {
		return s.memberLease, nil
	}
	grant, err := s.cli.Grant(ctx, s.memberTTL)
	if err != nil {
		return 0, fmt.Errorf("grant member lease (%ds): %w", s.memberTTL, err)
	}
	keepCtx, stop := context.WithCancel(context.Background())
	ch, err := s.cli.KeepAlive(keepCtx, grant.ID)
	if err != nil {
		stop()
		return 0, fmt.Errorf("keep member lease %x alive: %w", grant.ID, err)
	}
	s.memberLease, s.stopKeep = grant.ID, stop
	go func(id clientv3.LeaseID) {
		for range ch { // drain; the channel closes when the lease is gone
		}
		s.dropMemberLease(id)
	}(grant.ID)
	return grant.ID, nil
}

func (s *Store) dropMemberLease(id clientv3.LeaseID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.memberLease == id {
		s.stopKeep()
		s.memberLease, s.stopKeep = 0, nil
	}
}

// Close revokes the member lease (its keys disappear at once) and stops
// the keepalive. It does not close the etcd client, which the caller owns.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	id, stop := s.memberLease, s.stopKeep
	s.memberLease, s.stopKeep = 0, nil
	s.mu.Unlock()
	if id == 0 {
		return nil
	}
	stop()
	if _, err := s.cli.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("dcs close: revoke member lease %x: %w", id, err)
	}
	return nil
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
