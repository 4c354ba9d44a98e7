package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	"go.temporal.io/sdk/temporal"
)

// norm joins a pg_hba line's fields with single spaces.
func norm(line string) string { return strings.Join(strings.Fields(line), " ") }

// Each auth kind renders as Pigsty means it; members replicate over TLS unless the lab is plain
// text, and a plain-text lab changes only the members' lines (an ssl or cert rule stays TLS-only).
func TestRenderHBAAuthKinds(t *testing.T) {
	rules := []inventory.HBARule{
		{User: "u_pwd", DB: "all", Addr: "10.1.0.0/16", Auth: "pwd"},
		{User: "u_scram", DB: "all", Addr: "10.1.0.0/16", Auth: "scram"},
		{User: "u_sha", DB: "all", Addr: "10.1.0.0/16", Auth: "sha"},
		{User: "u_ssl", DB: "all", Addr: "10.1.0.0/16", Auth: "ssl"},
		{User: "u_cert", DB: "all", Addr: "10.1.0.0/16", Auth: "cert"},
		{User: "u_trust", DB: "all", Addr: "10.1.0.0/16", Auth: "trust"},
		{User: "u_reject", DB: "all", Addr: "10.1.0.0/16", Auth: "reject"},
		{User: "u_md5", DB: "all", Addr: "10.1.0.0/16", Auth: "md5"},
		{User: "u_local", DB: "all", Addr: "local", Auth: "scram"},
	}
	rulesWant := []string{
		"host all u_pwd 10.1.0.0/16 scram-sha-256",
		"host all u_scram 10.1.0.0/16 scram-sha-256",
		"host all u_sha 10.1.0.0/16 scram-sha-256",
		"hostssl all u_ssl 10.1.0.0/16 scram-sha-256",
		"hostssl all u_cert 10.1.0.0/16 cert",
		"host all u_trust 10.1.0.0/16 trust",
		"host all u_reject 10.1.0.0/16 reject",
		"host all u_md5 10.1.0.0/16 md5",
		"local all u_local scram-sha-256",
	}
	for _, c := range []struct {
		plaintext bool
		members   string
	}{{false, "hostssl"}, {true, "host"}} {
		lines := RenderHBA("replicator", "dbuser_dba", []string{"10.0.0.11"}, rules, c.plaintext)
		got := map[string]bool{}
		for _, l := range lines {
			got[norm(l)] = true
		}
		want := append([]string{
			c.members + " replication replicator 10.0.0.11/32 scram-sha-256",
			c.members + " postgres replicator 10.0.0.11/32 scram-sha-256",
			"host all dbuser_dba 127.0.0.1/32 scram-sha-256", // the loopback: no other host to verify
		}, rulesWant...)
		for _, w := range want {
			if !got[w] {
				t.Errorf("plaintext=%v: pg_hba lacks %q:\n%s", c.plaintext, w, strings.Join(lines, "\n"))
			}
		}
		if len(lines) != 2+len(want) {
			t.Errorf("plaintext=%v: %d lines, want %d:\n%s", c.plaintext, len(lines), 2+len(want), strings.Join(lines, "\n"))
		}
	}
}

// TLS on by default with the node's files; off in a plain-text lab; and neither TLS nor the other
// derived settings can be overridden by pg_parameters (the inventory refuses them first).
func TestParametersTLS(t *testing.T) {
	p := Parameters("pg-test", 5432, false, map[string]string{"ssl": "off", "ssl_cert_file": "/tmp/x.crt", "port": "6000", "work_mem": "64MB"})
	want := map[string]string{"ssl": "on", "ssl_cert_file": pki.NodeCertPath, "ssl_key_file": pki.NodeKeyPath,
		"ssl_ca_file": pki.NodeCAPath, "ssl_min_protocol_version": "TLSv1.2", "port": "5432", "work_mem": "64MB"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	conf := RenderPostgresqlConf(p)
	for _, line := range []string{"ssl = 'on'\n", "ssl_ca_file = '/etc/pki/ca.crt'\n", "ssl_min_protocol_version = 'TLSv1.2'\n"} {
		if !strings.Contains(conf, line) {
			t.Errorf("postgresql.conf lacks %q", line)
		}
	}
	p = Parameters("pg-test", 5432, true, map[string]string{"ssl": "on"})
	if p["ssl"] != "off" || p["ssl_cert_file"] != "" {
		t.Errorf("plain text: ssl = %q, ssl_cert_file = %q", p["ssl"], p["ssl_cert_file"])
	}
}

// The clone's pg_basebackup verifies the primary unless the lab is plain text; values are quoted.
func TestCloneConninfo(t *testing.T) {
	in := PgNodeInput{Node: Node{Name: "pg-test-2"}, Primary: Node{SSHHost: "10.0.0.11"},
		Spec: PGSpec{Port: 5432, ReplicationUser: "replicator"}}
	want := "host=10.0.0.11 port=5432 user=replicator application_name=pg-test-2-clone " +
		"sslmode=verify-full sslrootcert=/etc/pki/ca.crt sslcert=/etc/pki/pigwf/node.crt sslkey=/etc/pki/pigwf/node.key"
	if got := cloneConninfo(in); got != want {
		t.Errorf("cloneConninfo:\n got %s\nwant %s", got, want)
	}
	in.Spec.Plaintext = true
	if got := cloneConninfo(in); strings.Contains(got, "ssl") {
		t.Errorf("plain text: %s", got)
	}
	in.Spec.ReplicationUser = "repl user's"
	if got := libpq.Parse(cloneConninfo(in))["user"]; got != "repl user's" {
		t.Errorf("user read back as %q from %s", got, cloneConninfo(in))
	}
}

// PostgreSQL without TLS (PGSpec.Plaintext) needs the worker's consent like the rest of plain
// text: the steps it changes refuse it before any connection, and an input whose parameters turn
// TLS off without saying Plaintext breaks the inventory's rules.
func TestPlaintextPostgresNeedsTheWorkersConsent(t *testing.T) {
	in := PgNodeInput{Spec: PGSpec{Cluster: "pg-test", Port: 5432, Plaintext: true}}
	for name, step := range map[string]func(*Activities) (StepResult, error){
		"PgPrecheck":  func(a *Activities) (StepResult, error) { return a.PgPrecheck(context.Background(), in) },
		"PgConfigure": func(a *Activities) (StepResult, error) { return a.PgConfigure(context.Background(), in) },
		"PgClone":     func(a *Activities) (StepResult, error) { return a.PgClone(context.Background(), in) },
	} {
		var appErr *temporal.ApplicationError
		if _, err := step(&Activities{}); !errors.As(err, &appErr) || appErr.Type() != ErrPlaintextRefused {
			t.Errorf("%s took a plain-text input: %v", name, err)
		}
	}
	var c inputCheck
	c.pgSpec("spec", PGSpec{Cluster: "pg-test", Port: 5432, Parameters: Parameters("pg-test", 5432, true, nil)})
	found := false
	for _, p := range c.problems {
		found = found || p.Field == "spec.parameters.ssl"
	}
	if !found {
		t.Errorf("ssl off in a spec that does not say Plaintext is not refused: %+v", c.problems)
	}
}
