package dcs

import (
	"testing"
	"time"
)

func testMemberLease(t *testing.T, url string) {
	s := newStore(t, url) // member TTL 1 s
	ctx := ctxT(t)
	if _, err := s.PutMember(ctx, "n9", MemberRecord{Role: "replica", State: "running", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // > 2 × TTL: only the keepalive keeps it
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Members["n9"]; !ok {
		t.Fatal("member key expired although its lease was kept alive")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if snap, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Members["n9"]; ok {
		t.Fatal("member key still present after its lease was revoked")
	}
}
