package agent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// decodeBody parses a JSON answer into a generic value (numbers as float64).
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// GET /patroni in Patroni's shape with pigwf's fields beside: a primary and a standby. Every
// health check answers with the same body.
func TestPatroniStatus(t *testing.T) {
	tags := TagsConfig{NoFailover: true, Custom: map[string]string{"dc": "east"}}
	primary := map[string]any{
		"state": "running", "postmaster_start_time": "2030-01-02 03:04:05.123456+00:00", "role": "primary",
		"server_version": 150004.0, "xlog": map[string]any{"location": float64(leaderLSN)}, "timeline": 3.0,
		"replication": []any{map[string]any{"usename": "replicator", "application_name": "n1", "client_addr": "10.0.0.1",
			"state": "streaming", "sync_state": "sync", "sync_priority": 1.0}},
		"dcs_last_seen": float64(time.Date(2030, 1, 2, 3, 5, 0, 0, time.UTC).Unix()),
		"tags":          map[string]any{"nofailover": true, "dc": "east"}, "database_system_identifier": "7000000000000000042",
		"patroni": map[string]any{"version": agentVersion(), "scope": "pg-test", "name": "n2"},
		"name":    "n2", "cluster": "pg-test", "leader": "n2", "last_reason": "no action: I hold the leader lock", "wal_position": "0/50000000",
	}
	replica := map[string]any{
		"state": "running", "postmaster_start_time": "2030-01-02 03:00:00.000000+00:00", "role": "replica", "server_version": 150004.0,
		"xlog": map[string]any{"received_location": float64(leaderLSN - receiveLag), "replayed_location": float64(leaderLSN - replayLag),
			"replayed_timestamp": "2030-01-02 03:04:59.000000+00:00", "paused": false},
		"sync_standby": true, "timeline": 3.0, "replication_state": "streaming", "dcs_last_seen": 0.0,
		"tags":    map[string]any{"nofailover": true, "dc": "east"},
		"patroni": map[string]any{"version": agentVersion(), "scope": "pg-test", "name": "n2"},
		"name":    "n2", "cluster": "pg-test", "leader": "n1", "last_reason": "", "wal_position": "0/4FF80000",
	}
	stopped := map[string]any{
		"state": "stopped", "role": "demoted", "timeline": 0.0, "cluster_unlocked": true, "pause": true, "paused": true, "dcs_last_seen": 0.0,
		"patroni": map[string]any{"version": agentVersion(), "scope": "pg-test", "name": "n2"},
		"name":    "n2", "cluster": "pg-test", "last_reason": "", "wal_position": "0/0",
	}
	for i, c := range []struct {
		snap snapshot
		path string
		want map[string]any
	}{
		{leaderSnap(), "/patroni", primary},                                                        // 1
		{leaderSnap(), "/primary", primary},                                                        // 2: a health check's body
		{replicaSnap("sync"), "/patroni", replica},                                                 // 3
		{replicaSnap("sync"), "/replica?lag=1kB", replica},                                         // 4: also with 503
		{snapshot{view: haagent.ClusterView{Paused: true}, obs: pgStopped()}, "/patroni", stopped}, // 5
	} {
		a := healthAgent(tags)
		if i == 4 {
			a.cfg.Tags = TagsConfig{}
		}
		w := request(a, c.snap, "GET", c.path)
		if got := decodeJSON(t, w.Body.Bytes()); !reflect.DeepEqual(got, any(c.want)) {
			t.Errorf("case %d: GET %s:\n  got  %v\n  want %v", i+1, c.path, got, c.want)
		}
	}
}

func pgStopped() (o pgctl.Observation) {
	o.State = haagent.PGStopped
	return o
}

// pgState and pgRole as Patroni names them, from what the snapshot says.
func TestStateAndRole(t *testing.T) {
	for i, c := range []struct {
		snap        snapshot
		state, role string
	}{
		{leaderSnap(), "running", "primary"},                                                                                         // 1
		{leaderSnap(func(s *snapshot) { s.stopping = true }), "stopping", "primary"},                                                 // 2
		{replicaSnap("async"), "running", "replica"},                                                                                 // 3
		{replicaSnap("async", func(s *snapshot) { s.local.Busy = haagent.BusyCloning }), "creating replica", "replica"},              // 4
		{snapshot{obs: pgctl.Observation{State: haagent.PGStopped, DataDirEmpty: true}}, "stopped", "uninitialized"},                 // 5
		{snapshot{obs: pgctl.Observation{State: haagent.PGCrashed, InRecovery: true}}, "crashed", "replica"},                         // 6
		{leaderSnap(func(s *snapshot) { s.obs.State = haagent.PGCrashed }), "crashed", "primary"},                                    // 7: restarts in place
		{replicaSnap("async", func(s *snapshot) { s.obs.State, s.obs.InRecovery = haagent.PGStopped, false }), "stopped", "demoted"}, // 8
		{snapshot{}, "unknown", "demoted"},                                                                                           // 9
	} {
		if st, role := pgState(c.snap), pgRole(c.snap, "n2"); st != c.state || role != c.role {
			t.Errorf("case %d: state %q role %q, want %q %q", i+1, st, role, c.state, c.role)
		}
	}
}

// GET /history is Patroni's list of [timeline, lsn, reason, timestamp, new_leader] from the
// history key; entries that do not record who led and when have three items.
func TestHistory(t *testing.T) {
	w := request(healthAgent(TagsConfig{}), leaderSnap(), "GET", "/history")
	want := []any{
		[]any{1.0, float64(0x3000148), "no recovery target specified"},
		[]any{2.0, float64(0x5000000), "no recovery target specified", "2030-01-02T03:00:00.000000+00:00", "n2"},
	}
	if got := decodeJSON(t, w.Body.Bytes()); w.Code != 200 || !reflect.DeepEqual(got, any(want)) {
		t.Errorf("GET /history: %d %v, want %v", w.Code, got, want)
	}
	w = request(healthAgent(TagsConfig{}), snapshot{}, "GET", "/history")
	if w.Code != 200 || decodeJSON(t, w.Body.Bytes()) == nil {
		t.Errorf("GET /history without a key: %d %s, want 200 []", w.Code, w.Body)
	}
}

func TestVersionNumber(t *testing.T) {
	for v, want := range map[string]float64{"4.0.4": 40004, "0.0.0": 0, "1.12.3-rc1": 11203, "1.2": 0, "x.y.z": 0, "100.0.0": 0} {
		if got := versionNumber(v); got != want {
			t.Errorf("versionNumber(%q) = %v, want %v", v, got, want)
		}
	}
}
