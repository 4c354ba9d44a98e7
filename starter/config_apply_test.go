package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/etcdtest"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// ApplyConfig against a real etcd (one process for every case): the write, the wait, a
// concurrent edit, no change, no config.
func TestConfigApplyWithEtcd(t *testing.T) {
	url := etcdtest.Start(t)
	t.Run("WritesThenShowsWhatEachMemberApplied", func(t *testing.T) { testConfigWriteAndWait(t, url) })
	t.Run("ConcurrentEditRefusedNotLost", func(t *testing.T) { testConfigConcurrentEdit(t, url) })
	t.Run("NothingChangedWritesNothing", func(t *testing.T) { testConfigUnchanged(t, url) })
	t.Run("NotConfirmedWritesNothing", func(t *testing.T) { testConfigNotConfirmed(t, url) })
	t.Run("NoConfigKey", func(t *testing.T) { testConfigMissing(t, url) })
	t.Run("EditWritesOnTheRevisionReadBeforeEditing", func(t *testing.T) { testConfigEdit(t, url) })
	t.Run("NewerKeysRefusedNotDropped", func(t *testing.T) { testConfigNewerKeys(t, url) })
}

// A config holding a setting a newer pigwf wrote is not rewritten without it.
func testConfigNewerKeys(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-newer", agent, nil)
	ctx := testCtx(t)
	raw := []byte(`{"loop_interval_ms": 100, "leader_timeout_ms": 500, "quorum_commit_mode": true}`)
	rev1, err := st.PutConfig(ctx, raw, rev0)
	if err != nil {
		t.Fatal(err)
	}
	read, err := h.ReadConfig(ctx)
	if err != nil || len(read.Unknown) != 1 || read.Unknown[0] != "quorum_commit_mode" {
		t.Fatalf("ReadConfig: %+v %v", read, err)
	}
	changes, err := ParseConfigArgs([]string{"work_mem=64MB"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, problems := ApplyConfigChanges(read.Config, changes)
	var out strings.Builder
	_, err = h.ApplyConfig(ctx, read, next, problems, ConfigApplyOptions{Out: &out})
	var refused *ConfigRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "quorum_commit_mode") {
		t.Fatalf("ApplyConfig over a newer key: %v, want it refused naming the key", err)
	}
	if snap, err := st.Load(ctx); err != nil || snap.Config.ModRevision != rev1 {
		t.Fatalf("the config was written anyway: %v", err)
	}
}

// configCluster is a cluster in etcd with a config (parameters params), a leader n1 whose agent
// is agent, and a member n2: the HA client, its store, and the config's revision.
func configCluster(t *testing.T, url, cluster string, agent *settingsAgent, params map[string]string) (*HAClient, *dcs.Store, int64) {
	t.Helper()
	cli := etcdtest.Client(t, url)
	st, err := dcs.New(cli, "/pigwf-test", cluster, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	ctx := testCtx(t)
	cfg := haagent.DefaultConfig()
	cfg.Postgresql.Parameters = params
	raw, _ := json.Marshal(cfg)
	rev, err := st.PutConfig(ctx, raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "n1", Term: 1, Timeline: 1}, 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := st.PutMember(ctx, n, dcs.MemberRecord{Role: "replica", State: "running", APIURL: agent.srv.URL, ConfigRevision: rev}); err != nil {
			t.Fatal(err)
		}
	}
	return &HAClient{cluster: cluster, cli: cli, store: st, http: agent.srv.Client()}, st, rev
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// storedConfig is the cluster's config as etcd holds it now.
func storedConfig(t *testing.T, st *dcs.Store) (haagent.Config, int64) {
	t.Helper()
	snap, err := st.Load(testCtx(t))
	if err != nil || snap.Config == nil {
		t.Fatalf("load: %+v %v", snap, err)
	}
	cfg, err := haagent.ParseConfig(snap.Config.Value)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, snap.Config.ModRevision
}

func testConfigWriteAndWait(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-set", agent, map[string]string{"shared_buffers": "128MB"})
	ctx := testCtx(t)
	read, err := h.ReadConfig(ctx)
	if err != nil || read.Revision != rev0 || read.Leader != "n1" || read.LeaderAPI != agent.srv.URL || len(read.Problems) > 0 {
		t.Fatalf("ReadConfig: %+v %v", read, err)
	}
	changes, err := ParseConfigArgs([]string{"shared_buffers=1GB", "work_mem=64MB"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, problems := ApplyConfigChanges(read.Config, changes)

	// n1's agent applies the new revision and reports shared_buffers pending restart; n2's never does.
	applied := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			snap, err := st.Load(ctx)
			if err == nil && snap.Config != nil && snap.Config.ModRevision > rev0 {
				_, err = st.PutMember(ctx, "n1", dcs.MemberRecord{Role: "primary", State: "running", APIURL: agent.srv.URL, ConfigRevision: snap.Config.ModRevision,
					PendingRestart: map[string]pgparams.PendingChange{"shared_buffers": {OldValue: "128MB", NewValue: "1GB"}}})
				applied <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		applied <- ctx.Err()
	}()
	var out strings.Builder
	asked := false
	outcome, err := h.ApplyConfig(ctx, read, next, problems, ConfigApplyOptions{Out: &out, Confirm: func() (bool, error) { asked = true; return true, nil },
		Wait: 1500 * time.Millisecond, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("ApplyConfig: %v\n%s", err, out.String())
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	got, rev := storedConfig(t, st)
	if !asked || !outcome.Changed || outcome.Revision != rev || rev <= rev0 || !reflect.DeepEqual(got, next) {
		t.Fatalf("asked %v, outcome %+v, stored %+v at %d; want %+v written", asked, outcome, got, rev, next)
	}
	for _, want := range []string{
		fmt.Sprintf("Changes to pg-set's config (read at etcd revision %d):\n", rev0),
		"  shared_buffers  128MB → 1GB   (takes effect at a restart)\n",
		"  work_mem        (not set) → 64MB\n",
		fmt.Sprintf("Written: pg-set's config is at revision %d.\n", rev),
		"  n1  applied; pending restart: shared_buffers 128MB → 1GB\n",
		fmt.Sprintf("  n2  NOT applied within 1.5s (its record reports revision %d)\n", rev0),
		"`pigwf start pg-restart --cluster pg-set --pending` applies them.\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Someone writes between this run's read and its write: its compare-and-swap fails, it says so
// with both revisions, and the other change stays.
func testConfigConcurrentEdit(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-race", agent, nil)
	ctx := testCtx(t)
	read, err := h.ReadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	theirs := read.Config
	theirs.LeaderTimeoutMs = 1000
	raw, _ := json.Marshal(theirs)
	rev1, err := st.PutConfig(ctx, raw, rev0)
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := ApplyConfigChanges(read.Config, []ConfigChange{{Setting: "work_mem", Value: "64MB"}})
	var out strings.Builder
	_, err = h.ApplyConfig(ctx, read, mine, nil, ConfigApplyOptions{Out: &out})
	var conflict *ConfigChangedError
	if !errors.As(err, &conflict) || !errors.Is(err, dcs.ErrChanged) || conflict.Read != rev0 || conflict.Now != rev1 {
		t.Fatalf("err = %v, want a ConfigChangedError %d → %d", err, rev0, rev1)
	}
	if want := fmt.Sprintf("pg-race's config changed since it was read (revision %d → %d); nothing written; run again", rev0, rev1); err.Error() != want {
		t.Errorf("error:\n  %v\nwant\n  %s", err, want)
	}
	if got, rev := storedConfig(t, st); rev != rev1 || !reflect.DeepEqual(got, theirs) {
		t.Errorf("stored %+v at %d, want the other edit (%+v at %d) kept", got, rev, theirs, rev1)
	}
	if strings.Contains(out.String(), "Written") {
		t.Errorf("output claims a write:\n%s", out.String())
	}
}

func testConfigUnchanged(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-same", agent, map[string]string{"work_mem": "64MB"})
	ctx := testCtx(t)
	read, err := h.ReadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := ApplyConfigChanges(read.Config, []ConfigChange{{Setting: "work_mem", Value: "64MB"}, {Setting: "loop_interval_ms", Value: "100"}})
	var out strings.Builder
	outcome, err := h.ApplyConfig(ctx, read, same, nil, ConfigApplyOptions{Out: &out, Wait: time.Second,
		Confirm: func() (bool, error) { t.Error("asked to confirm no change"); return false, nil }})
	if err != nil || outcome.Changed || agent.calls != 0 {
		t.Fatalf("%+v %v (agent asked %d times)", outcome, err, agent.calls)
	}
	if _, rev := storedConfig(t, st); rev != rev0 {
		t.Errorf("revision %d → %d: written", rev0, rev)
	}
	if want := fmt.Sprintf("Nothing changed: pg-same's config already holds these values (revision %d); nothing written.\n", rev0); out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func testConfigNotConfirmed(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-no", agent, nil)
	ctx := testCtx(t)
	read, err := h.ReadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := ApplyConfigChanges(read.Config, []ConfigChange{{Setting: "leader_timeout_ms", Value: "1000"}})
	var out strings.Builder
	_, err = h.ApplyConfig(ctx, read, next, nil, ConfigApplyOptions{Out: &out, Confirm: func() (bool, error) { return false, nil }})
	if !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("err = %v, want ErrNotConfirmed", err)
	}
	if _, rev := storedConfig(t, st); rev != rev0 {
		t.Errorf("revision %d → %d: written without a yes", rev0, rev)
	}
	if !strings.Contains(out.String(), "leader_timeout_ms  500 → 1000") {
		t.Errorf("the changes were not shown before asking:\n%s", out.String())
	}
}

func testConfigMissing(t *testing.T, url string) {
	cli := etcdtest.Client(t, url)
	st, err := dcs.New(cli, "/pigwf-test", "pg-none", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := &HAClient{cluster: "pg-none", cli: cli, store: st}
	if _, err := h.ReadConfig(testCtx(t)); !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), "pigwf start pg-cluster-create --cluster pg-none") {
		t.Errorf("err = %v, want ErrNoConfig naming the fix", err)
	}
	if _, err := cli.Put(testCtx(t), st.Key(dcs.KeyConfig), "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReadConfig(testCtx(t)); err == nil || !strings.Contains(err.Error(), "is not JSON") {
		t.Errorf("err = %v, want the key named as not JSON", err)
	}
}

// The wait reads on through etcd errors until the bound; with no read at all it returns the error.
func TestWaitAppliedRetriesReads(t *testing.T) {
	calls := 0
	snap := &dcs.Snapshot{Members: map[string]dcs.Versioned[dcs.MemberRecord]{
		"b": {Value: dcs.MemberRecord{ConfigRevision: 9}}, "a": {Value: dcs.MemberRecord{ConfigRevision: 12}}}}
	load := func(context.Context) (*dcs.Snapshot, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("etcd unavailable")
		}
		return snap, nil
	}
	got, err := waitApplied(context.Background(), load, 9, 5*time.Second, time.Millisecond)
	want := []MemberApplied{{Member: "a", Applied: true, Revision: 12}, {Member: "b", Applied: true, Revision: 9}}
	if err != nil || !reflect.DeepEqual(got, want) || calls != 3 {
		t.Errorf("got %+v %v after %d reads, want %+v after 3", got, err, calls, want)
	}
	failing := func(context.Context) (*dcs.Snapshot, error) { return nil, errors.New("etcd unavailable") }
	if _, err := waitApplied(context.Background(), failing, 9, 50*time.Millisecond, 10*time.Millisecond); err == nil {
		t.Error("no read succeeded, yet no error")
	}
}
