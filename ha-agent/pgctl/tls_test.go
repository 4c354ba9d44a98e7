package pgctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/pki"
)

// helperTLS clones from a primary that serves TLS with a certificate for 127.0.0.1 and h1 only,
// and requires a client certificate for replication (a `cert` rule): through the agent's own
// connection string (Clone: pg_basebackup; then streaming with PrimaryConninfo) it must fail
// against a name the certificate lacks, with a CA that did not sign it, without a client
// certificate and with one for another user; and work, then stream over TLS, with the right
// ones.
func helperTLS(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(filepath.Dir(args[1]), "tls") // beside the data directory, from the test
	right := pki.Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "client.crt"), Key: filepath.Join(dir, "client.key")}
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	conn, err := prim.Connect(ctx)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot('"+SlotName("h2")+"')"); err != nil {
		return fail("slot", err)
	}
	clone := func(name, host string, files pki.Files) (*Controller, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg := prim.cfg
		cfg.MemberName, cfg.DataDir, cfg.Port, cfg.TLS = "h2", filepath.Join(filepath.Dir(prim.cfg.DataDir), name), port, files
		cfg.LogFile = cfg.DataDir + ".log"
		c, err := New(cfg, openGate{}, prim.log)
		if err != nil {
			return nil, err
		}
		_, err = c.Clone(ctx, Upstream{Name: "h1", Host: host, Port: prim.cfg.Port}, false)
		return c, err
	}
	r := map[string]any{}
	for _, a := range []struct {
		name, host string
		files      pki.Files
	}{
		{"wrong_name", "localhost", right},
		{"wrong_ca", "127.0.0.1", pki.Files{CA: filepath.Join(dir, "other-ca.crt"), Cert: right.Cert, Key: right.Key}},
		{"no_client_cert", "127.0.0.1", pki.Files{CA: right.CA}},
		{"other_user_cert", "127.0.0.1", pki.Files{CA: right.CA, Cert: filepath.Join(dir, "h9.crt"), Key: filepath.Join(dir, "h9.key")}},
	} {
		if _, err := clone(a.name, a.host, a.files); err != nil {
			r[a.name] = err.Error()
		} else {
			r[a.name] = "cloned"
		}
	}
	sb, err := clone("standby", "127.0.0.1", right)
	if err != nil {
		return fail("clone with the right certificates", err)
	}
	defer func() { _ = sb.Stop(context.Background(), StopFast) }()
	if err := sb.Start(ctx, StartOptions{Upstream: &Upstream{Name: "h1", Host: "127.0.0.1", Port: prim.cfg.Port}}); err != nil {
		return fail("start standby", err)
	}
	if _, err := waitRunning(sb); err != nil {
		return fail("standby", fmt.Errorf("%w%s", err, pgLogTail(sb.cfg.LogFile)))
	}
	// The primary's view: the standby's WAL sender runs over TLS.
	for {
		res, err := conn.Query(ctx, "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl AND r.state = 'streaming'")
		if err == nil && len(res) == 1 && len(res[0].Rows) == 1 && *res[0].Rows[0][0] == "1" {
			break
		}
		if ctx.Err() != nil {
			return fail("streaming over TLS", fmt.Errorf("%v %v%s", err, res, pgLogTail(sb.cfg.LogFile)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sconn, err := sb.Connect(ctx)
	if err != nil {
		return fail("connect standby", err)
	}
	defer sconn.Close()
	res, err := sconn.Query(ctx, "SELECT conninfo FROM pg_stat_wal_receiver")
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || res[0].Rows[0][0] == nil {
		return fail("pg_stat_wal_receiver", fmt.Errorf("%v %v", err, res))
	}
	r["streaming_tls"] = true
	r["receiver_conninfo"] = *res[0].Rows[0][0]
	report(r)
	return 0
}

// Replication between members verifies the server's certificate (sslmode=verify-full) and
// presents the member's own, as the agent connects: against a real PostgreSQL 15 with TLS
// settings from libpq.ServerSettings and a node-style key (root:postgres 0640) on both ends.
func TestReplicationOverVerifiedTLS(t *testing.T) {
	e := newPGEnv(t)
	ca := pki.CA{Dir: t.TempDir()}
	other := pki.CA{Dir: t.TempDir()}
	for _, c := range []pki.CA{ca, other} {
		if _, err := c.Ensure(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(e.dir, "tls")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode, gid int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]pki.CA{"ca.crt": ca, "other-ca.crt": other} {
		pem, _, err := c.CertPEM()
		if err != nil {
			t.Fatal(err)
		}
		write(name, pem, 0o644, 0)
	}
	// The server's certificate names 127.0.0.1 and h1, not localhost; the client's names the
	// role it logs in as (a `cert` rule matches the common name to the user).
	for name, req := range map[string]pki.Request{
		"server": {CommonName: "h1", IPs: []string{"127.0.0.1"}, DNS: []string{"h1"}, Usage: pki.Server},
		"client": pki.ClientRequest("postgres"),
		"h9":     pki.ClientRequest("h9"), // valid, but names another user
	} {
		p, err := ca.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".crt", p.Cert, 0o644, 0)
		write(name+".key", p.Key, 0o640, e.gid) // as NodeInit installs the node's key
	}
	server := libpq.ServerSettings(pki.Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key")})
	var conf strings.Builder
	for _, k := range []string{"ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_min_protocol_version"} {
		fmt.Fprintf(&conf, "%s = '%s'\n", k, server[k])
	}
	appendFile(t, filepath.Join(e.dataDir, "postgresql.conf"), conf.String())
	// Replication as RenderHBA writes an `auth: cert` rule (PostgreSQL implies
	// clientcert=verify-full for cert).
	hba := "local all all trust\nlocal replication all trust\n" +
		"hostssl replication postgres 127.0.0.1/32 cert\n" +
		"hostssl all postgres 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(e.dataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := e.runHelper("tls", "wrong_name", "wrong_ca", "no_client_cert", "other_user_cert", "standby")
	t.Logf("%v", r)
	for name, want := range map[string]string{
		"wrong_name":      `does not match host name "localhost"`,
		"wrong_ca":        "certificate verify failed",
		"no_client_cert":  "requires a valid client certificate",
		"other_user_cert": `certificate authentication failed for user "postgres"`,
	} {
		if got, _ := r[name].(string); !strings.Contains(got, want) {
			t.Errorf("%s: clone %q, want a failure saying %q", name, got, want)
		}
	}
	if r["streaming_tls"] != true {
		t.Errorf("the standby does not stream over TLS: %v", r)
	}
	if ci, _ := r["receiver_conninfo"].(string); !strings.Contains(ci, "sslmode=verify-full") {
		t.Errorf("pg_stat_wal_receiver.conninfo = %q, want sslmode=verify-full", ci)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
