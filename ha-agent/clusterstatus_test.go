package haagent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func fullClusterStatus() ClusterStatus {
	lag0, lag2 := uint64(0), uint64(2048)
	return ClusterStatus{
		Cluster: "pg-test", Scope: "pg-test", Paused: true, Pause: true, Leader: "n1", Timeline: 3,
		SynchronousStandbyNames: `FIRST 1 ("n2")`, SyncSource: "live: pg_stat_replication on n1, read during this request",
		Members: []ClusterMember{
			{Name: "n1", Host: "10.0.0.1", Port: 5432, Role: ClusterRoleLeader, State: "running", Timeline: 3, LagBytes: &lag0,
				APIURL: "http://10.0.0.1:8008", Tags: ClusterTags{}},
			{Name: "n2", Host: "10.0.0.2", Port: 5433, Role: ClusterRoleSyncStandby, State: "streaming", Timeline: 3, LagBytes: &lag2,
				Lag: KnownLag(2048), APIURL: "http://10.0.0.2:8008", Note: "pg_rewind failed: x; re-cloning next",
				Tags: ClusterTags{NoFailover: true, NoSync: true, NoLoadBalance: true, Custom: map[string]string{"dc": "east"}}},
			{Name: "n3", Role: ClusterRoleReplica, State: "stopped", LagBytes: &lag0, Lag: &Lag{}, Tags: ClusterTags{}},
		},
		ScheduledSwitchover: &ScheduledSwitchover{At: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), From: "n1"},
	}
}

// The JSON field names are the contract between the agents and pigwf:
// they must not change.
func TestClusterStatusJSON(t *testing.T) {
	got, err := json.Marshal(fullClusterStatus())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cluster":"pg-test","scope":"pg-test","paused":true,"pause":true,"leader":"n1","timeline":3,` +
		`"synchronous_standby_names":"FIRST 1 (\"n2\")","sync_source":"live: pg_stat_replication on n1, read during this request",` +
		`"members":[` +
		`{"name":"n1","host":"10.0.0.1","port":5432,"role":"leader","state":"running","timeline":3,"lag_bytes":0,` +
		`"api_url":"http://10.0.0.1:8008","tags":{"nofailover":false,"nosync":false}},` +
		`{"name":"n2","host":"10.0.0.2","port":5433,"role":"sync_standby","state":"streaming","timeline":3,"lag_bytes":2048,"lag":2048,` +
		`"api_url":"http://10.0.0.2:8008","tags":{"dc":"east","nofailover":true,"noloadbalance":true,"nosync":true},"note":"pg_rewind failed: x; re-cloning next"},` +
		`{"name":"n3","host":"","port":0,"role":"replica","state":"stopped","timeline":0,"lag_bytes":0,"lag":"unknown",` +
		`"api_url":"","tags":{"nofailover":false,"nosync":false}}],` +
		`"scheduled_switchover":{"at":"2030-01-02T03:04:05Z","from":"n1"}}`
	if string(got) != want {
		t.Fatalf("JSON\n  got  %s\n  want %s", got, want)
	}
	var back ClusterStatus
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, fullClusterStatus()) {
		t.Fatalf("round trip:\n  got  %+v\n  want %+v", back, fullClusterStatus())
	}
}
