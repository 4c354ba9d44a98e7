package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// GET /cluster as a replica renders it (from what leader n1 published):
// parsed back into haagent.ClusterStatus, the wire type pigwf reads, it is
// exactly what the agent built, and says what n1's pg_stat_replication says.
func TestClusterStatusRoundTrip(t *testing.T) {
	clock := &manualClock{now: 10 * time.Second}
	a := &Agent{clock: clock, cfg: LocalConfig{Cluster: "pg-test", Name: "n2",
		API:      APIConfig{URL: "http://10.0.0.2:8008"},
		Postgres: PostgresConfig{Host: "10.0.0.2", Port: 5432}, Tags: TagsConfig{NoSync: true}}}
	rec := func(host string, mods ...func(*dcs.MemberRecord)) memberEntry {
		r := dcs.MemberRecord{Role: "replica", State: "running", Timeline: 2, Host: host, Port: 5432, APIURL: "http://" + host + ":8008", LagBytes: 7}
		for _, m := range mods {
			m(&r)
		}
		return memberEntry{rec: r, observedAt: clock.now - 40*time.Millisecond}
	}
	a.snap = snapshot{
		view: haagent.ClusterView{Cluster: "pg-test", Config: haagent.DefaultConfig(),
			Leader:  &haagent.LeaderRecord{Holder: "n1", ModRevision: 10, Timeline: 2},
			Members: map[string]haagent.Member{"n1": {Name: "n1"}, "n2": {Name: "n2"}, "n3": {Name: "n3"}}},
		local: haagent.LocalState{Name: "n2", Postgres: haagent.PGRunning, InRecovery: true, Timeline: 2},
		obs:   pgctl.Observation{State: haagent.PGRunning, InRecovery: true, Timeline: 2},
		members: map[string]memberEntry{
			"n1": rec("10.0.0.1", func(r *dcs.MemberRecord) {
				r.Role, r.FlushLSN, r.SynchronousStandbyNames = "primary", 5000, `FIRST 1 ("n2")`
				r.Replication = map[string]dcs.ReplicationReport{
					"n2": {State: "streaming", SyncState: "sync", ReplayLSN: 4900},
					"n3": {State: "catchup", SyncState: "async", ReplayLSN: 1000},
				}
			}),
			"n2": rec("10.0.0.2"),
			"n3": rec("10.0.0.3", func(r *dcs.MemberRecord) { r.Tags.NoFailover, r.Note = true, "cloning from leader n1" }),
		},
	}
	built, err := a.clusterStatus(t.Context(), a.snap, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	a.handleCluster(w, httptest.NewRequest(http.MethodGet, "/cluster", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /cluster: %d %s", w.Code, w.Body)
	}
	var got haagent.ClusterStatus
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("parse GET /cluster: %v\n%s", err, w.Body)
	}
	if !reflect.DeepEqual(got, built) {
		t.Fatalf("round trip:\n  got   %+v\n  built %+v", got, built)
	}
	if got.Leader != "n1" || got.SynchronousStandbyNames != `FIRST 1 ("n2")` || !strings.HasPrefix(got.SyncSource, "dcs: ") {
		t.Errorf("cluster: %+v", got)
	}
	type row struct {
		role  haagent.ClusterRole
		state string
		lag   uint64
		tags  haagent.ClusterTags
		note  string
	}
	want := map[string]row{
		"n1": {haagent.ClusterRoleLeader, "running", 0, haagent.ClusterTags{}, ""},
		"n2": {haagent.ClusterRoleSyncStandby, "streaming", 100, haagent.ClusterTags{NoSync: true}, ""},
		"n3": {haagent.ClusterRoleReplica, "catchup", 4000, haagent.ClusterTags{NoFailover: true}, "cloning from leader n1"},
	}
	if len(got.Members) != len(want) {
		t.Fatalf("members: %+v", got.Members)
	}
	for _, m := range got.Members {
		if m.LagBytes == nil {
			t.Fatalf("%s: no lag_bytes", m.Name)
		}
		if r := (row{m.Role, m.State, *m.LagBytes, m.Tags, m.Note}); r != want[m.Name] {
			t.Errorf("%s: got %+v, want %+v", m.Name, r, want[m.Name])
		}
	}
}
