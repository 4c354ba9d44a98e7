package activities

import (
	"context"
	"reflect"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/etcdtest"
	"github.com/pigwf/pigwf/internal/pkitest"
)

// DCSRegister seeds the config's postgresql.parameters with the inventory's pg_parameters when it
// creates the config, and a rerun with other parameters leaves the config as it is (someone may
// have changed it with pigwf config since), saying so.
func TestDCSRegisterSeedsParameters(t *testing.T) {
	url := etcdtest.Start(t)
	a := &Activities{CA: pkitest.CA(t), AllowPlaintext: true}
	in := DCSRegisterInput{DCS: DCSInput{Endpoints: []string{url}, Namespace: "/pigwf-test", Cluster: "pg-test", Plaintext: true},
		Primary: "pg-test-1", Sysid: "7300000000000000001", SyncMode: true, RPO: 1 << 20, LeaseMs: 3000,
		Parameters: map[string]string{"shared_buffers": "1GB", "work_mem": "64MB"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	read := func() haagent.Config {
		t.Helper()
		st, err := dcs.New(etcdtest.Client(t, url), in.DCS.Namespace, in.DCS.Cluster, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := st.Load(ctx)
		if err != nil || snap.Config == nil {
			t.Fatalf("config: %+v %v", snap, err)
		}
		cfg, err := haagent.ParseConfig(snap.Config.Value)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	res, err := a.DCSRegister(ctx, in)
	if err != nil || !res.Changed {
		t.Fatalf("first registration: %+v %v", res, err)
	}
	if got := read(); !reflect.DeepEqual(got.Postgresql.Parameters, in.Parameters) || !got.SynchronousMode {
		t.Fatalf("config written: %+v, want parameters %v and synchronous mode", got, in.Parameters)
	}
	// pg_rto's lease and the loop period that follows from it
	if got := read(); got.LeaderTimeoutMs != 3000 || got.LoopIntervalMs != 600 {
		t.Errorf("config written: lease %d ms, loop %d ms; want 3000 and 600 (pg_rto 3s)", got.LeaderTimeoutMs, got.LoopIntervalMs)
	}

	again := in
	again.Parameters = map[string]string{"work_mem": "1GB"}
	res, err = a.DCSRegister(ctx, again)
	if err != nil || res.Changed || len(res.Notes) < 2 {
		t.Fatalf("rerun: %+v %v; want unchanged with a note on pg_parameters", res, err)
	}
	if got := read(); !reflect.DeepEqual(got.Postgresql.Parameters, in.Parameters) {
		t.Errorf("a rerun changed the config's parameters to %v", got.Postgresql.Parameters)
	}
}
