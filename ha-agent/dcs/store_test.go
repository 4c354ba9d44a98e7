package dcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func testLoad(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	if _, err := s.PutMember(ctx, "n1", MemberRecord{Role: "primary", State: "running", Timeline: 1, FlushLSN: 0x3000060, APIURL: "http://n1:8008", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMember(ctx, "n2", MemberRecord{Role: "replica", State: "running", Timeline: 1, ReceivedLSN: 0x3000060, Upstream: "n1", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	initRev, err := s.ClaimInitialize(ctx, "n1")
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if _, err := s.ClaimInitialize(ctx, "n2"); !errors.Is(err, ErrExists) {
		t.Fatalf("second claim: got %v, want ErrExists", err)
	}
	if _, err := s.PutConfig(ctx, json.RawMessage(`{"leader_timeout_ms":500}`), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPause(ctx, &PauseRecord{By: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestFailover(ctx, FailoverRecord{From: "n1", To: "n2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestFailover(ctx, FailoverRecord{To: "n3"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second failover request: got %v, want ErrExists", err)
	}
	// A malformed leader key is reported but still returned with its revision.
	if _, err := s.cli.Put(ctx, s.Key(KeyLeader), "{garbage"); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Members) != 2 || snap.Members["n1"].Value.FlushLSN != 0x3000060 || snap.Members["n2"].Value.Upstream != "n1" {
		t.Errorf("members: %+v", snap.Members)
	}
	if snap.Initialize == nil || snap.Initialize.Value.ClaimedBy != "n1" || snap.Initialize.ModRevision != initRev {
		t.Errorf("initialize: %+v (claimed at revision %d)", snap.Initialize, initRev)
	}
	if snap.Config == nil || !bytes.Equal(snap.Config.Value, []byte(`{"leader_timeout_ms":500}`)) {
		t.Errorf("config: %+v", snap.Config)
	}
	if snap.Pause == nil || snap.Failover == nil || snap.Failover.Value.To != "n2" {
		t.Errorf("pause %+v failover %+v", snap.Pause, snap.Failover)
	}
	if snap.Leader == nil || snap.Leader.ModRevision == 0 || len(snap.Problems) != 1 {
		t.Errorf("malformed leader: leader %+v problems %v", snap.Leader, snap.Problems)
	}
	var ke *KeyError
	if len(snap.Problems) != 1 || !errors.As(snap.Problems[0], &ke) || ke.Kind != KindLeader || ke.Key != s.Key(KeyLeader) || ke.Revision != snap.Leader.ModRevision {
		t.Errorf("malformed leader: problem %#v, want a *KeyError of the leader key at its revision", ke)
	}
	if snap.Revision < snap.Leader.ModRevision {
		t.Errorf("snapshot revision %d older than its leader key %d", snap.Revision, snap.Leader.ModRevision)
	}
	// The malformed record can be replaced by CAS on its revision.
	if _, err := s.AcquireLeader(ctx, LeaderRecord{Holder: "n2", Term: 1}, snap.Leader.ModRevision); err != nil {
		t.Fatalf("replace malformed leader: %v", err)
	}
	if _, err := s.SetPause(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil || snap.Pause != nil || snap.Leader.Value.Holder != "n2" {
		t.Fatalf("after resume: %+v %v", snap, err)
	}
}
