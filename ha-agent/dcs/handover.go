package dcs

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotPaused: a write that is only safe in maintenance mode found the
// pause key absent (someone resumed the cluster), so it changed nothing.
var ErrNotPaused = errors.New("the cluster is not paused")

// HandOverLeader names rec.Holder in the leader key while the cluster is
// paused, for a runbook that rebuilt the cluster's data outside HA (a
// point-in-time restore, or putting the original data directories back
// after a restore failed). The named member's agent takes the key back by
// CAS once the cluster resumes (it holds no lease for it yet), and starts
// its PostgreSQL as the primary; the others follow it. In the same
// transaction it deletes the sync, failover and failsafe keys: they
// describe the members as they were before, and the new holder rewrites
// them from what it sees.
//
// Guarded by two conditions: the pause key exists (so no agent acts on the
// keys while they are rewritten) and the leader key is still at
// expectedLeaderRev (0 = absent), so a concurrent change is refused
// (ErrNotPaused, or a *LeaderConflictError), never overwritten.
func (s *Store) HandOverLeader(ctx context.Context, rec LeaderRecord, expectedLeaderRev int64) (int64, error) {
	op := "hand over the leader key to " + rec.Holder
	if rec.Holder == "" {
		return 0, fmt.Errorf("dcs %s: no holder named", op)
	}
	put, err := putJSON(op, s.Key(KeyLeader), rec)
	if err != nil {
		return 0, err
	}
	pause, leader := s.Key(KeyPause), s.Key(KeyLeader)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(pause), ">", 0), absentOrAt(leader, expectedLeaderRev)).
		Then(put, clientv3.OpDelete(s.Key(KeySync)), clientv3.OpDelete(s.Key(KeyFailover)), clientv3.OpDelete(s.Key(KeyFailsafe))).
		Else(clientv3.OpGet(pause), clientv3.OpGet(leader)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs %s: %w", op, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
		return 0, fmt.Errorf("dcs %s: %w", op, ErrNotPaused)
	}
	var cur *Versioned[LeaderRecord]
	if len(resp.Responses) > 1 {
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			cur = leaderFromKV(kvs[0])
		}
	}
	return 0, &LeaderConflictError{Op: "dcs " + op, Expected: expectedLeaderRev, Current: cur}
}
