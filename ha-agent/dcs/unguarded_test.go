package dcs

import (
	"encoding/json"
	"testing"
)

func testRegisterCluster(t *testing.T, url string) {
	s := newStore(t, url)
	wipe(t, s)
	ctx := ctxT(t)
	mine := InitializeRecord{ClaimedBy: "n1", Sysid: "7289263672843878470"}
	got, err := s.RegisterCluster(ctx, mine, json.RawMessage(`{"synchronous_mode":true}`))
	if err != nil || got != mine {
		t.Fatalf("first registration: got %+v, %v", got, err)
	}
	// A second workflow run with another sysid (another cluster) learns the
	// stored one and changes nothing.
	other := InitializeRecord{ClaimedBy: "n2", Sysid: "7000000000000000001"}
	got, err = s.RegisterCluster(ctx, other, json.RawMessage(`{"synchronous_mode":false}`))
	if err != nil || got != mine {
		t.Fatalf("second registration: got %+v, %v; want the stored %+v", got, err, mine)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Config == nil || string(snap.Config.Value) != `{"synchronous_mode":true}` {
		t.Fatalf("config overwritten or missing: %+v", snap.Config)
	}
	if _, err := s.RegisterCluster(ctx, InitializeRecord{ClaimedBy: "n1"}, json.RawMessage(`{}`)); err == nil {
		t.Fatal("registration without a sysid accepted")
	}
}
