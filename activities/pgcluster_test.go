package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/etcdtest"
	"github.com/pigwf/pigwf/internal/pkitest"
	"go.temporal.io/sdk/temporal"
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

// WaitLeader waits while nobody leads, and fails (not retryable, ErrConflict) once another member
// has held the leader key for otherLeaderFor: a failover since the run read the leader.
func TestWaitLeaderSaysAnotherMemberLeads(t *testing.T) {
	url := etcdtest.Start(t)
	a := &Activities{CA: pkitest.CA(t), AllowPlaintext: true}
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer agent.Close()
	in := WaitLeaderInput{DCS: DCSInput{Endpoints: []string{url}, Namespace: "/pigwf-test", Cluster: "pg-wait", Plaintext: true}, Member: "pg-wait-1", APIURL: agent.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// nobody leads: it keeps waiting
	short, stop := context.WithTimeout(ctx, otherLeaderFor+time.Second)
	_, err := a.WaitLeader(short, in)
	stop()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("without a leader: %v, want it to wait until its deadline", err)
	}

	st, err := dcs.New(etcdtest.Client(t, url), in.DCS.Namespace, in.DCS.Cluster, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "pg-wait-2", Term: 1}, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.WaitLeader(ctx, in)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrConflict || !app.NonRetryable() || !strings.Contains(err.Error(), "pg-wait-2 leads pg-wait, not pg-wait-1") {
		t.Fatalf("with another leader: %v, want a non-retryable %s naming pg-wait-2", err, ErrConflict)
	}
	if waited := time.Since(start); waited < otherLeaderFor || waited > otherLeaderFor+5*time.Second {
		t.Errorf("it said so after %v, want about %v", waited, otherLeaderFor)
	}
}
