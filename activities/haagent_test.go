package activities

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/agent"
	"github.com/pigwf/pigwf/pki"
)

// The file HAAgent writes is read back by the agent's own loader into exactly the values meant,
// including values YAML would misread unquoted, and it holds no password.
func TestAgentConfigRoundTrip(t *testing.T) {
	// The agent checks that bin_dir holds a postgres binary.
	binDir := filepath.Join(t.TempDir(), "pg bin: #15")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, "postgres"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	plain := AgentInput{
		Node:    Node{Addr: "10.213.0.11", Name: "pg-test-1", SSHHost: "10.213.0.11", SSHPort: 22, SSHUser: "root"},
		Member:  "pg-test-1",
		Spec:    PGSpec{Cluster: "pg-test", Port: 5432, DataDir: "/pg/data", BinDir: binDir, ReplicationUser: "replicator", AdminUser: "dbuser_dba"},
		DCS:     DCSInput{Endpoints: []string{"https://10.213.0.11:2379", "https://10.213.0.12:2379"}, Namespace: "/pigwf", Cluster: "pg-test"},
		APIPort: 8008,
	}
	tricky := plain
	tricky.Member = "*pg-1"
	tricky.DCS = DCSInput{Endpoints: []string{"https://etcd-1:2379/a,b", "https://etcd-2:2379"}, Namespace: "/pigwf: #2", Cluster: "null"}
	tricky.Spec.DataDir = "/pg/data: main #1"
	tricky.Spec.ReplicationUser = "@repl"
	tricky.Spec.Port = 6543
	tricky.NoFailover = true
	noPrefix := plain
	noPrefix.DCS.Namespace = ""
	plaintext := plain
	plaintext.DCS.Endpoints = []string{"http://10.213.0.11:2379"}
	plaintext.DCS.Plaintext = true
	tagged := plain
	tagged.NoFailover = true // an offline member
	tagged.Tags = haagent.ClusterTags{NoSync: true, NoLoadBalance: true, Custom: map[string]string{"dc": "east", "weight": "5", "ssd": "true", "rack": "r1: #2"}}

	want := func(in AgentInput, prefix string) agent.LocalConfig {
		c := agent.LocalConfig{
			Cluster: in.DCS.Cluster, Name: in.Member, Prefix: prefix,
			Etcd: agent.EtcdConfig{Endpoints: in.DCS.Endpoints},
			API:  agent.APIConfig{Listen: "10.213.0.11:8008", URL: "https://10.213.0.11:8008"},
			Postgres: agent.PostgresConfig{BinDir: binDir, DataDir: in.Spec.DataDir, Host: "10.213.0.11", Port: in.Spec.Port,
				SocketDir: "/var/run/postgresql", ReplicationUser: in.Spec.ReplicationUser, LogFile: "/pg/log/postgres/postgresql.log"},
			Tags: agent.TagsConfig{NoFailover: in.NoFailover || in.Tags.NoFailover, NoSync: in.Tags.NoSync,
				NoLoadBalance: in.Tags.NoLoadBalance, Custom: in.Tags.Custom},
			LogFile: "/pg/log/ha-agent/ha-agent.log",
			TLS:     pki.NodeFiles(),
		}
		if in.DCS.Plaintext {
			c.API.URL, c.TLS, c.InsecurePlaintext = "http://10.213.0.11:8008", pki.Files{}, true
		}
		return c
	}
	for _, tc := range []struct {
		name string
		in   AgentInput
		want agent.LocalConfig
	}{
		{"plain", plain, want(plain, "/pigwf")},
		{"values that need quoting", tricky, want(tricky, "/pigwf: #2")},
		{"no namespace: the agent's default prefix", noPrefix, want(noPrefix, "/pigwf")},
		{"a plain-text lab", plaintext, want(plaintext, "/pigwf")},
		{"tags, custom values YAML would read as other types", tagged, want(tagged, "/pigwf")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, err := RenderAgentConfig(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := agent.ParseConfig(AgentConfigPath, []byte(text))
			if err != nil {
				t.Fatalf("the agent refuses the rendered config: %v\n%s", err, text)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("the agent reads\n%+v\nwant\n%+v\nfrom\n%s", got, tc.want, text)
			}
			if strings.Contains(strings.ToLower(text), "password") {
				t.Errorf("the rendered config mentions a password:\n%s", text)
			}
			// Untagged members' files are what they were before tags existed (a changed file
			// restarts the agent).
			if len(tc.in.Tags.Patroni()) == 0 {
				if !strings.Contains(text, "\ntags:\n  nofailover: "+strconv.FormatBool(tc.in.NoFailover)+"\n  nosync: false\nlog_file: ") {
					t.Errorf("an untagged member's tags section changed:\n%s", text)
				}
			}
		})
	}
}

// An agent's URL parses back to its host and port, an IPv6 host included, over https unless
// the cluster is a plain-text lab.
func TestAgentAPIURL(t *testing.T) {
	for _, host := range []string{"10.213.0.11", "pg-test-1.example.com", "fd00::11"} {
		for plaintext, scheme := range map[bool]string{false: "https", true: "http"} {
			u, err := url.Parse(AgentAPIURL(host, 8008, plaintext))
			if err != nil || u.Scheme != scheme || u.Hostname() != host || u.Port() != "8008" {
				t.Errorf("%s: %q parses as %v, %v", host, AgentAPIURL(host, 8008, plaintext), u, err)
			}
		}
	}
}
