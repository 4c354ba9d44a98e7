package dcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
