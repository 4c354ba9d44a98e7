package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/pki"
)

func validYAML(binDir string) string {
	return `cluster: pg-test
name: pg-test-1
prefix: /pigwf
etcd:
  endpoints: [https://10.213.0.11:2379, https://10.213.0.12:2379, https://10.213.0.13:2379]
api:
  listen: 10.213.0.11:8008
  url: https://10.213.0.11:8008
postgres:
  bin_dir: ` + binDir + `
  data_dir: /pg/data
  host: 10.213.0.11
  port: 5432
  socket_dir: /var/run/postgresql
  replication_user: replicator
  log_file: /pg/log/postgres/postgresql.log
tags: { nofailover: false, nosync: true }
log_file: /pg/log/ha-agent/ha-agent.log
tls: { ca: /etc/pki/ca.crt, cert: /etc/pki/pigwf/node.crt, key: /etc/pki/pigwf/node.key }
`
}

// The file PgClusterCreate writes parses as is; every mistake is refused
// with the field named and the fix said.
func TestLocalConfig(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "postgres"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	good := validYAML(bin)
	c, err := ParseConfig("ha-agent.yml", []byte(good))
	if err != nil {
		t.Fatalf("the contract example does not parse: %v", err)
	}
	if c.Name != "pg-test-1" || len(c.Etcd.Endpoints) != 3 || c.Postgres.Port != 5432 || !c.Tags.NoSync || c.LogFile == "" {
		t.Fatalf("parsed %+v", c)
	}
	// api.auth and api.allowlist: a password file readable by its owner only.
	pwDir := t.TempDir()
	goodPW, openPW := filepath.Join(pwDir, "api-password"), filepath.Join(pwDir, "open-password")
	if err := os.WriteFile(goodPW, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(openPW, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apiURL := "  url: https://10.213.0.11:8008"
	withAuth := apiURL + "\n  auth: {username: admin, password_file: " + goodPW + "}\n  allowlist: [10.213.0.0/24, 192.0.2.7, '2001:db8::/32']"
	// Tags as Patroni writes them: switches and custom tags side by side.
	c, err = ParseConfig("ha-agent.yml", []byte(strings.Replace(good, "nosync: true }", "nosync: true, noloadbalance: true, dc: east, weight: 5 }", 1)))
	if err != nil || !c.Tags.NoLoadBalance || !c.Tags.NoSync || c.Tags.Custom["dc"] != "east" || c.Tags.Custom["weight"] != "5" || len(c.Tags.Custom) != 2 {
		t.Fatalf("tags: %+v %v", c.Tags, err)
	}
	c, err = ParseConfig("ha-agent.yml", []byte(strings.Replace(good, apiURL, withAuth, 1)))
	if err != nil || c.API.Auth == nil || c.API.Auth.Username != "admin" || len(c.API.Allowlist) != 3 {
		t.Fatalf("api.auth and api.allowlist: %+v %v", c.API, err)
	}
	cases := []struct {
		name, from, to string
		want           []string
	}{
		{"API password in the file", apiURL, apiURL + "\n  auth: {username: admin, password: s3cret}", []string{`"password" under api.auth`, "password_file", "0600"}},
		{"API password file readable by others", apiURL, apiURL + "\n  auth: {username: admin, password_file: " + openPW + "}", []string{"api.auth.password_file", "chmod 600"}},
		{"API password file missing", apiURL, apiURL + "\n  auth: {username: admin, password_file: /nonexistent/pw}", []string{"api.auth.password_file", "mode 0600"}},
		{"API password file relative", apiURL, apiURL + "\n  auth: {username: admin, password_file: api-password}", []string{"api.auth.password_file", "absolute"}},
		{"API auth without a username", apiURL, apiURL + "\n  auth: {password_file: " + goodPW + "}", []string{"api.auth.username", "required"}},
		{"API username with a colon", apiURL, apiURL + "\n  auth: {username: 'a:b', password_file: " + goodPW + "}", []string{"api.auth.username", "':'"}},
		{"bad allowlist entry", apiURL, apiURL + "\n  allowlist: [10.213.0.0/24, pg-test-1]", []string{"api.allowlist[1]", "pg-test-1"}},
		{"https API in a plain-text lab without TLS files", "tls: { ca: /etc/pki/ca.crt, cert: /etc/pki/pigwf/node.crt, key: /etc/pki/pigwf/node.key }",
			"insecure_plaintext: true", []string{"tls:", "node.crt"}},
		{"unknown key", "prefix: /pigwf", "prefix: /pigwf\nloop_wait: 10", []string{"ha-agent.yml", "loop_wait"}},
		{"password in the file", "  replication_user: replicator", "  replication_user: replicator\n  replication_password: secret",
			[]string{"replication_password", "~postgres/.pgpass"}},
		{"relative data dir", "data_dir: /pg/data", "data_dir: pg/data", []string{"postgres.data_dir", "absolute"}},
		{"bad port", "port: 5432", "port: 0", []string{"postgres.port"}},
		{"no postgres binary", "bin_dir: " + bin, "bin_dir: /nonexistent/bin", []string{"postgres.bin_dir", "/usr/lib/postgresql/15/bin"}},
		{"bad endpoint", "https://10.213.0.12:2379", "10.213.0.12:2379", []string{"etcd.endpoints[1]"}},
		{"plain-text etcd", "https://10.213.0.12:2379", "http://10.213.0.12:2379", []string{"etcd.endpoints[1]", "plain text", "insecure_plaintext"}},
		{"plain-text API", "url: https://10.213.0.11:8008", "url: http://10.213.0.11:8008", []string{"api.url", "plain text"}},
		{"no TLS files", "tls: { ca: /etc/pki/ca.crt, cert: /etc/pki/pigwf/node.crt, key: /etc/pki/pigwf/node.key }", "", []string{"tls:", "/etc/pki/pigwf/node.crt"}},
		{"certificate without key", "key: /etc/pki/pigwf/node.key", "key: \"\"", []string{"tls:", "needs its key"}},
		{"relative key", "key: /etc/pki/pigwf/node.key", "key: node.key", []string{"tls.key", "absolute"}},
		{"unknown tls key", "key: /etc/pki/pigwf/node.key", "key: /etc/pki/pigwf/node.key, password: x", []string{"password", "under tls"}},
		{"bad api listen", "listen: 10.213.0.11:8008", "listen: 10.213.0.11", []string{"api.listen"}},
		{"slash in name", "name: pg-test-1", "name: pg/test", []string{"name"}},
		{"misspelt tag", "nosync: true }", "nosync: true, nofailovr: true }", []string{"tags.nofailovr", "did you mean nofailover"}},
		{"Patroni tag pigwf ignores", "nosync: true }", "nosync: true, clonefrom: true }", []string{"tags.clonefrom", "does not implement"}},
		{"tag value with a line break", "nosync: true }", "nosync: true, dc: \"east\\nwest\" }", []string{"tags.dc", "U+000A"}},
		{"tag holding a secret", "nosync: true }", "nosync: true, api_token: abc }", []string{"tags.api_token", "public"}},
		{"tag that is a list", "nosync: true }", "nosync: true, dc: [east] }", []string{"ha-agent.yml", "!!seq"}},
		{"prefix without slash", "prefix: /pigwf", "prefix: pigwf", []string{"prefix"}},
		{"several at once", "port: 5432\n  socket_dir: /var/run/postgresql\n  replication_user: replicator",
			"port: 70000\n  socket_dir: /var/run/postgresql\n  replication_user: \"\"", []string{"postgres.port", "postgres.replication_user"}},
	}
	for _, tc := range cases {
		text := strings.Replace(good, tc.from, tc.to, 1)
		if text == good {
			t.Fatalf("%s: fixture did not change", tc.name)
		}
		_, err := ParseConfig("ha-agent.yml", []byte(text))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

type manualClock struct{ now time.Duration }

func (c *manualClock) Now() time.Duration { return c.now }

// After a timing change a holder fences by the earlier deadline and an
// observer waits for the later staleness, until two lease lengths passed.
func TestTimingChangeIsConservative(t *testing.T) {
	clock := &manualClock{now: time.Hour}
	short, long := haagent.DefaultConfig(), haagent.DefaultConfig()
	long.LeaderTimeoutMs = 2000
	a := &Agent{clock: clock, cache: newCache(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.cache.hasConfig, a.cache.configRaw = true, []byte(`{"leader_timeout_ms": 2000}`)
	a.hacfg, a.configValid = short, true
	a.reloadConfig() // 500 → 2000 ms
	if a.hacfg.LeaderTimeoutMs != 2000 {
		t.Fatalf("config not reloaded: %d", a.hacfg.LeaderTimeoutMs)
	}
	if got := a.timing().StaleAfter(); got != long.StaleAfter() {
		t.Errorf("observer after lengthening: stale after %s, want the longer %s", got, long.StaleAfter())
	}
	a.lease = &haagent.Lease{Revision: 1, SentAt: clock.now}
	if got := a.timing().HolderDeadline(0); got != short.HolderDeadline(0) {
		t.Errorf("holder after lengthening: fences after %s, want the shorter %s", got, short.HolderDeadline(0))
	}
	clock.now += 2*long.StaleAfter() + time.Millisecond
	if got := a.timing().HolderDeadline(0); got != long.HolderDeadline(0) {
		t.Errorf("holder after the transition: %s, want the new %s", got, long.HolderDeadline(0))
	}
	// An invalid key changes nothing.
	a.cache.configRaw = []byte(`{"leader_timeout_ms": 10}`)
	a.reloadConfig()
	if a.hacfg.LeaderTimeoutMs != 2000 || !strings.Contains(a.configErr, "leader_timeout_ms") {
		t.Errorf("invalid key: timeout %d, error %q", a.hacfg.LeaderTimeoutMs, a.configErr)
	}
}

// The agent's connections to other members' PostgreSQL verify with the node's files, except in
// a plain-text lab, whose servers run without TLS whatever tls says.
func TestPostgresTLS(t *testing.T) {
	c := LocalConfig{TLS: pki.NodeFiles()}
	if got := c.PostgresTLS(); got != pki.NodeFiles() {
		t.Errorf("PostgresTLS = %+v, want the node's files", got)
	}
	c.InsecurePlaintext = true
	if got := c.PostgresTLS(); got.Enabled() {
		t.Errorf("plain text: PostgresTLS = %+v, want none", got)
	}
}
