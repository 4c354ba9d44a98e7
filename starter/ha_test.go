package starter

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// pigwf parses an agent's GET /cluster into HAView and prints it back with
// `pigwf ha list --json`: every field of the wire type survives both ways.
func TestHAViewParsesTheAgentsClusterStatus(t *testing.T) {
	lag0, lag2 := uint64(0), uint64(3<<20)
	sent := haagent.ClusterStatus{
		Cluster: "pg-test", Paused: true, Leader: "n1", Timeline: 3,
		SynchronousStandbyNames: `FIRST 1 ("n2")`, SyncSource: "live: pg_stat_replication on n1, read during this request",
		Members: []haagent.ClusterMember{
			{Name: "n1", Host: "10.0.0.1", Port: 5432, Role: haagent.ClusterRoleLeader, State: "running", Timeline: 3, LagBytes: &lag0,
				APIURL: "http://10.0.0.1:8008"},
			{Name: "n2", Host: "10.0.0.2", Port: 5433, Role: haagent.ClusterRoleSyncStandby, State: "streaming", Timeline: 3, LagBytes: &lag2,
				APIURL: "http://10.0.0.2:8008", Tags: haagent.ClusterTags{NoFailover: true, NoSync: true}, Note: "a note"},
		},
	}
	body, err := json.MarshalIndent(sent, "", "  ") // as the agent writes it
	if err != nil {
		t.Fatal(err)
	}
	var v HAView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.ClusterStatus, sent) {
		t.Fatalf("parsed:\n  got  %+v\n  sent %+v", v.ClusterStatus, sent)
	}
	v.Sysid, v.Note = "7289263672843878470", "not in the JSON"
	printed, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(printed, body) {
		t.Fatalf("pigwf ha list --json:\n%s\nwant the agent's answer:\n%s", printed, body)
	}
	var out strings.Builder
	PrintHAList(&out, v)
	for _, want := range []string{"Cluster: pg-test (7289263672843878470)", "| n2     | 10.0.0.2:5433 | Sync Standby | streaming |  3 |         3 |", "Maintenance mode: on"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pigwf ha list lacks %q:\n%s", want, out.String())
		}
	}
}
