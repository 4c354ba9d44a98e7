package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/etcdtest"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
)

// pigwf parses an agent's GET /cluster into HAView and prints it back with
// `pigwf ha list --json`: every field of the wire type survives both ways.
func TestHAViewParsesTheAgentsClusterStatus(t *testing.T) {
	lag0, lag2 := uint64(0), uint64(3<<20)
	sent := haagent.ClusterStatus{
		Cluster: "pg-test", Scope: "pg-test", Paused: true, Pause: true, Leader: "n1", Timeline: 3,
		SynchronousStandbyNames: `FIRST 1 ("n2")`, SyncSource: "live: pg_stat_replication on n1, read during this request",
		Members: []haagent.ClusterMember{
			{Name: "n1", Host: "10.0.0.1", Port: 5432, Role: haagent.ClusterRoleLeader, State: "running", Timeline: 3, LagBytes: &lag0,
				APIURL: "http://10.0.0.1:8008"},
			{Name: "n2", Host: "10.0.0.2", Port: 5433, Role: haagent.ClusterRoleSyncStandby, State: "streaming", Timeline: 3, LagBytes: &lag2,
				Lag: haagent.KnownLag(lag2), APIURL: "http://10.0.0.2:8008", Note: "a note",
				Tags:           haagent.ClusterTags{NoFailover: true, NoSync: true, NoLoadBalance: true, Custom: map[string]string{"dc": "east"}},
				PendingRestart: true, PendingRestartReason: map[string]pgparams.PendingChange{"shared_buffers": {OldValue: "128MB", NewValue: "1GB"}}, ConfigRevision: 42},
			{Name: "n3", Host: "10.0.0.3", Role: haagent.ClusterRoleReplica, State: "stopped", LagBytes: &lag2, Lag: &haagent.Lag{}},
		},
		ScheduledSwitchover: &haagent.ScheduledSwitchover{At: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), From: "n1", To: "n2"},
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
	for _, want := range []string{"Cluster: pg-test (7289263672843878470)",
		"| Member | Host          | Role         | State     | TL | Lag in MB | Pending restart |",
		"| n2     | 10.0.0.2:5433 | Sync Standby | streaming |  3 |         3 | *               |",
		"| n3     | 10.0.0.3      | Replica      | stopped   |    |   unknown |                 |", "Maintenance mode: on",
		"Pending restart: `pigwf start pg-restart --cluster pg-test --pending` applies the settings that wait for it"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pigwf ha list lacks %q:\n%s", want, out.String())
		}
	}
}

// As patronictl list, the "Pending restart" column shows only while a member waits for a restart.
func TestHAListPendingRestartColumnOnlyWhenPending(t *testing.T) {
	v := view("n1")
	var out strings.Builder
	PrintHAList(&out, v)
	if strings.Contains(out.String(), "Pending restart") {
		t.Errorf("no member pending, yet:\n%s", out.String())
	}
	v.Members[0].PendingRestart = true
	out.Reset()
	PrintHAList(&out, v)
	if !strings.Contains(out.String(), "| Lag in MB | Pending restart |") || !strings.Contains(out.String(), "| *               |") {
		t.Errorf("n1 pending:\n%s", out.String())
	}
}

// The CLI reaches etcd and the agents with its own client certificate of the deployment CA
// (issued on first use); a plain-text lab needs none; without the CA the error says
// where it looked. agentView, over that certificate, reads an agent that serves TLS.
func TestClientTLSAndAgentView(t *testing.T) {
	ca := pkitest.CA(t)
	secure := &inventory.Inventory{}
	files, err := ClientTLS(secure, ca.Dir)
	if err != nil || files.CA == "" || files.Cert == "" || files.Key == "" {
		t.Fatalf("ClientTLS: %+v %v", files, err)
	}
	if f, err := ClientTLS(&inventory.Inventory{Plaintext: true}, ca.Dir); err != nil || f.Enabled() {
		t.Errorf("a plain-text lab: %+v %v, want no files", f, err)
	}
	missing := filepath.Join(t.TempDir(), "no-ca")
	if _, err := ClientTLS(secure, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("no CA: %v, want an error naming %s", err, missing)
	}

	// An agent that answers /cluster only to a verified client certificate.
	base := pkitest.Serve(t, pkitest.Node(t, ca, "n1"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pkitest.Caller(r) == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(haagent.ClusterStatus{Cluster: "pg-test", Leader: pkitest.Caller(r)})
	}))
	urls := []string{"https://127.0.0.1:1", base + "/"} // the first does not answer
	for _, c := range []struct {
		name   string
		files  pki.Files
		leader string // "": no answer
	}{
		{"the CLI's certificate", files, pki.CLIClient},
		{"no certificate", pki.Files{CA: files.CA}, ""},
		{"plain text", pki.Files{}, ""},
	} {
		tr, err := c.files.HTTPTransport()
		if err != nil {
			t.Fatal(err)
		}
		v, ok := agentView(context.Background(), &http.Client{Transport: tr, Timeout: 2 * time.Second}, urls)
		if ok != (c.leader != "") || v.Leader != c.leader {
			t.Errorf("%s: %+v %v, want leader %q", c.name, v.ClusterStatus, ok, c.leader)
		}
	}
}

// When no agent answers, ha list shows the DCS's member records, their pending restarts and the
// config revision they applied included.
func TestHAViewFromTheDCSShowsPendingRestart(t *testing.T) {
	cli := etcdtest.Client(t, etcdtest.Start(t))
	st, err := dcs.New(cli, "/pigwf-test", "pg-test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pending := map[string]pgparams.PendingChange{"shared_buffers": {OldValue: "128MB", NewValue: "1GB"}}
	dead := "http://127.0.0.1:1" // no agent answers there
	if _, err := st.PutMember(ctx, "n1", dcs.MemberRecord{Role: "primary", State: "running", APIURL: dead, ConfigRevision: 5, PendingRestart: pending}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutMember(ctx, "n2", dcs.MemberRecord{Role: "replica", State: "running", APIURL: dead, ConfigRevision: 5}); err != nil {
		t.Fatal(err)
	}
	h := &HAClient{cluster: "pg-test", cli: cli, store: st, http: &http.Client{Timeout: time.Second}}
	v, err := h.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Note == "" || len(v.Members) != 2 {
		t.Fatalf("view %+v, want the DCS's two records", v)
	}
	n1, n2 := v.Members[0], v.Members[1]
	if !n1.PendingRestart || !reflect.DeepEqual(n1.PendingRestartReason, pending) || n1.ConfigRevision != 5 || n2.PendingRestart || n2.ConfigRevision != 5 {
		t.Errorf("members %+v", v.Members)
	}
}
