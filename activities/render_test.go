package activities

import (
	"strings"
	"testing"

	"github.com/pigwf/pigwf/inventory"
)

func TestRenderHBA(t *testing.T) {
	lines := RenderHBA("replicator", "dbuser_dba", []string{"10.0.0.12", "10.0.0.11"}, []inventory.HBARule{
		{User: "dbuser_meta", DB: "all", Addr: "intra", Auth: "pwd"},
		{User: "app", DB: "app", Addr: "10.9.0.0/16", Auth: "ssl"},
		{User: "local_user", DB: "all", Addr: "local", Auth: "peer"},
	}, false)
	text := strings.Join(lines, "\n")
	norm := map[string]bool{}
	for _, l := range lines {
		norm[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{
		"hostssl replication  replicator     10.0.0.11/32       scram-sha-256",
		"hostssl replication  replicator     10.0.0.12/32       scram-sha-256",
		"host    all          dbuser_meta    10.0.0.0/8         scram-sha-256",
		"host    all          dbuser_meta    192.168.0.0/16     scram-sha-256",
		"hostssl app          app            10.9.0.0/16        scram-sha-256",
		"local   all          local_user                         peer",
	} {
		if !norm[strings.Join(strings.Fields(want), " ")] {
			t.Errorf("pg_hba lacks %q:\n%s", want, text)
		}
	}
	// Members come sorted, so the file is stable whatever the inventory order.
	if strings.Index(text, "10.0.0.11/32") > strings.Index(text, "10.0.0.12/32") {
		t.Error("member lines are not sorted")
	}
}

// A member the inventory reaches by name is written as the name, an IPv6 one as a /128.
func TestRenderHBAMemberNames(t *testing.T) {
	text := strings.Join(RenderHBA("replicator", "dbuser_dba", []string{"db12.example.com", "fd00::11"}, []inventory.HBARule{
		{User: "app", DB: "app", Addr: "cluster", Auth: "pwd"}}, false), "\n")
	for _, want := range []string{
		"hostssl replication  replicator     db12.example.com   scram-sha-256",
		"hostssl replication  replicator     fd00::11/128       scram-sha-256",
		"host    app          app            db12.example.com   scram-sha-256",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("pg_hba lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "example.com/") {
		t.Errorf("a host name written as a CIDR:\n%s", text)
	}
}

func TestParametersAndConf(t *testing.T) {
	p := Parameters("pg-test", 5433, false, map[string]string{"shared_buffers": "1GB", "work_mem": "64MB"})
	if p["shared_buffers"] != "1GB" || p["work_mem"] != "64MB" || p["port"] != "5433" || p["wal_level"] != "replica" {
		t.Errorf("parameters = %v", p)
	}
	if p["archive_command"] != "pgbackrest --stanza=pg-test archive-push %p" {
		t.Errorf("archive_command = %q", p["archive_command"])
	}
	conf := RenderPostgresqlConf(map[string]string{"b": "it's", "a": "1"})
	if !strings.Contains(conf, "a = '1'\nb = 'it''s'\n") {
		t.Errorf("conf = %q", conf)
	}
}

// The .pgpass line escapes libpq's separator and escape character, and refuses a line break.
func TestPgpassLine(t *testing.T) {
	for i, c := range []struct {
		user, password, want string
		ok                   bool
	}{
		{"replicator", "Zk3p9", `*:*:*:replicator:Zk3p9`, true},   // 1
		{"replicator", `a:b\c`, `*:*:*:replicator:a\:b\\c`, true}, // 2
		{"re:pl", "x", `*:*:*:re\:pl:x`, true},                    // 3
		{"replicator", "a\nlocalhost:*:*:postgres:x", "", false},  // 4: a second line
	} {
		got, err := PgpassLine(c.user, c.password)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("case %d: PgpassLine(%q, %q) = %q, %v; want %q", i+1, c.user, c.password, got, err, c.want)
		}
	}
}
