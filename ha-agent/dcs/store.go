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
	clientv3 "go.etcd.io/etcd/client/v3"
)

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

// classify is Key's inverse: which key of the cluster key is, and the
// member name for a member key. Load and Watch both go by it.
func (s *Store) classify(key []byte) (KeyKind, string) {
	name := strings.TrimPrefix(string(key), s.prefix)
	switch {
	case name == KeyLeader:
		return KindLeader, ""
	case strings.HasPrefix(name, KeyMembers):
		return KindMember, strings.TrimPrefix(name, KeyMembers)
	case name == KeyInitialize:
		return KindInitialize, ""
	case name == KeyConfig:
		return KindConfig, ""
	case name == KeySync:
		return KindSync, ""
	case name == KeyFailover:
		return KindFailover, ""
	case name == KeyPause:
		return KindPause, ""
	case name == KeyHistory:
		return KindHistory, ""
	case name == KeyFailsafe:
		return KindFailsafe, ""
	}
	return KindUnknown, ""
}

// Load reads every key of the cluster in one linearizable range read.
func (s *Store) Load(ctx context.Context) (*Snapshot, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("dcs load %s: %w", s.prefix, err)
	}
	snap := &Snapshot{Revision: resp.Header.Revision, Members: map[string]Versioned[MemberRecord]{}}
	for _, kv := range resp.Kvs {
		kind, member := s.classify(kv.Key)
		fail := func(err error) {
			snap.Problems = append(snap.Problems, &KeyError{Key: string(kv.Key), Kind: kind, Member: member, Revision: kv.ModRevision, Err: err})
		}
		switch kind {
		case KindLeader:
			v, err := decode[LeaderRecord](kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
			if err != nil {
				fail(err)
			}
			snap.Leader = &v // kept even when malformed: see Snapshot.Problems
		case KindMember:
			v, err := decode[MemberRecord](kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
			if err != nil {
				fail(err)
				continue
			}
			snap.Members[member] = v
		case KindInitialize:
			setDecoded(&snap.Initialize, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case KindConfig:
			raw := json.RawMessage(bytes.Clone(kv.Value))
			if !json.Valid(raw) {
				fail(errors.New("invalid JSON"))
				continue
			}
			snap.Config = &Versioned[json.RawMessage]{Value: raw, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
		case KindSync:
			setDecoded(&snap.Sync, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case KindFailover:
			setDecoded(&snap.Failover, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case KindPause:
			setDecoded(&snap.Pause, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case KindHistory:
			setDecoded(&snap.History, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, fail)
		case KindFailsafe:
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

func putJSON(op, key string, v any) (clientv3.Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("dcs %s: encode: %w", op, err)
	}
	return clientv3.OpPut(key, string(b)), nil
}

// absentOrAt holds in a transaction while key is absent (rev 0) or still
// at mod revision rev: the condition of every create-or-CAS write.
func absentOrAt(key string, rev int64) clientv3.Cmp {
	if rev == 0 {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
}

// elseKV is the key read by a failed transaction's Else branch (an OpGet);
// nil when it was absent.
func elseKV(resp *clientv3.TxnResponse) *mvccpb.KeyValue {
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			return rr.Kvs[0]
		}
	}
	return nil
}
