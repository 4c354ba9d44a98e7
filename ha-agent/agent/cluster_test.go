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
		Postgres: PostgresConfig{Host: "10.0.0.2", Port: 5432}, Tags: TagsConfig{NoSync: true, NoLoadBalance: true, Custom: map[string]string{"dc": "east"}}}}
	rec := func(host string, mods ...func(*dcs.MemberRecord)) memberEntry {
		r := dcs.MemberRecord{Role: "replica", State: "running", Timeline: 2, Host: host, Port: 5432, APIURL: "http://" + host + ":8008",
			LagBytes: 7, ReceivedLSN: 4993, ReplayedLSN: 4993}
		for _, m := range mods {
			m(&r)
		}
		return memberEntry{rec: r, observedAt: clock.now - 40*time.Millisecond}
	}
	a.snap = snapshot{
		view: haagent.ClusterView{Cluster: "pg-test", Config: haagent.DefaultConfig(),
			Leader:   &haagent.LeaderRecord{Holder: "n1", ModRevision: 10, Timeline: 2},
			Failover: &haagent.FailoverRequest{From: "n1", To: "n2", ScheduledAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
			Members:  map[string]haagent.Member{"n1": {Name: "n1"}, "n2": {Name: "n2"}, "n3": {Name: "n3"}, "n4": {Name: "n4"}, "n5": {Name: "n5"}}},
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
			"n3": rec("10.0.0.3", func(r *dcs.MemberRecord) {
				r.Tags, r.Note = dcs.MemberTags{NoFailover: true, Custom: map[string]string{"dc": "west"}}, "cloning from leader n1"
			}),
			// n4 reports its position but the leader has no row for it; n5 reports none (stopped).
			"n4": rec("10.0.0.4"),
			"n5": rec("10.0.0.5", func(r *dcs.MemberRecord) { r.State, r.ReceivedLSN, r.ReplayedLSN, r.LagBytes = "stopped", 0, 0, 5000 }),
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
	// Patroni's fields as Patroni's tools read them.
	for _, want := range []string{`"scope": "pg-test"`, `"lag": "unknown"`, `"lag": 4000`, `"dc": "west"`, `"noloadbalance": true`, `"scheduled_switchover": {`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET /cluster lacks %s:\n%s", want, w.Body)
		}
	}
	if got.Leader != "n1" || got.Scope != "pg-test" || got.SynchronousStandbyNames != `FIRST 1 ("n2")` || !strings.HasPrefix(got.SyncSource, "dcs: ") {
		t.Errorf("cluster: %+v", got)
	}
	if sw := got.ScheduledSwitchover; sw == nil || sw.From != "n1" || sw.To != "n2" || sw.At.Year() != 2030 {
		t.Errorf("scheduled switchover: %+v", sw)
	}
	type row struct {
		role  haagent.ClusterRole
		state string
		lag   uint64
		plag  *haagent.Lag // Patroni's lag
		tags  haagent.ClusterTags
		note  string
	}
	want := map[string]row{
		"n1": {haagent.ClusterRoleLeader, "running", 0, nil, haagent.ClusterTags{}, ""},
		"n2": {haagent.ClusterRoleSyncStandby, "streaming", 100, haagent.KnownLag(100),
			haagent.ClusterTags{NoSync: true, NoLoadBalance: true, Custom: map[string]string{"dc": "east"}}, ""},
		"n3": {haagent.ClusterRoleReplica, "catchup", 4000, haagent.KnownLag(4000),
			haagent.ClusterTags{NoFailover: true, Custom: map[string]string{"dc": "west"}}, "cloning from leader n1"},
		"n4": {haagent.ClusterRoleReplica, "running", 7, haagent.KnownLag(7), haagent.ClusterTags{}, ""},
		"n5": {haagent.ClusterRoleReplica, "stopped", 5000, &haagent.Lag{}, haagent.ClusterTags{}, ""},
	}
	if len(got.Members) != len(want) {
		t.Fatalf("members: %+v", got.Members)
	}
	for _, m := range got.Members {
		if m.LagBytes == nil {
			t.Fatalf("%s: no lag_bytes", m.Name)
		}
		if r := (row{m.Role, m.State, *m.LagBytes, m.Lag, m.Tags, m.Note}); !reflect.DeepEqual(r, want[m.Name]) {
			t.Errorf("%s: got %+v, want %+v", m.Name, r, want[m.Name])
		}
	}
}
