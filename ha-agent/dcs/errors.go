package dcs

import (
	"errors"
	"fmt"
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

// KeyError is a value Load could not decode, one per key in Snapshot.Problems: a caller that
// needs one key (`pigwf ha history` the history key) tells its problem from the others' by Kind.
type KeyError struct {
	Key      string
	Kind     KeyKind
	Member   string // for KindMember
	Revision int64  // the value's mod revision
	Err      error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("dcs key %s at revision %d: %v", e.Key, e.Revision, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }
