package starter

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/pki"
)

// testPKI is a deployment CA (pki's, in a temporary directory) whose files the tests name:
// ca.crt, and name.crt / name.key for what issue wrote.
type testPKI struct{ ca pki.CA }

func newTestPKI(t *testing.T, _ string) *testPKI { return &testPKI{ca: pkitest.CA(t)} }

func (p *testPKI) path(name string) string { return filepath.Join(p.ca.Dir, name) }

// issue writes name.crt and name.key, a server certificate for ips when given, else a client one.
func (p *testPKI) issue(t *testing.T, name string, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	r := pki.ClientRequest(name)
	if len(ips) > 0 {
		r.Usage = pki.Server
		for _, ip := range ips {
			r.IPs = append(r.IPs, ip.String())
		}
	}
	if _, err := p.ca.EnsurePair(r, p.path(name+".crt"), p.path(name+".key"), time.Now()); err != nil {
		t.Fatal(err)
	}
	return p.path(name + ".crt"), p.path(name + ".key")
}

// Each wrong combination is refused before dialing, with the flag to fix named.
func TestConnectionCheckNamesTheSetting(t *testing.T) {
	p := newTestPKI(t, "ca")
	cert, key := p.issue(t, "cli")
	notPEM := p.path("not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Connection{Address: "127.0.0.1:7233", Namespace: "default"}
	with := func(f func(*Connection)) Connection { c := base; f(&c); return c }
	for _, tc := range []struct {
		name    string
		conn    Connection
		setting Setting
		kind    error
	}{
		{"no address", with(func(c *Connection) { c.Address = "" }), SettingAddress, ErrMissing},
		{"address without port", with(func(c *Connection) { c.Address = "temporal.example" }), SettingAddress, ErrUnusable},
		{"no namespace", with(func(c *Connection) { c.Namespace = "" }), SettingNamespace, ErrMissing},
		{"cert without key", with(func(c *Connection) { c.TLS.CertFile = cert }), SettingTLSKey, ErrMissing},
		{"key without cert", with(func(c *Connection) { c.TLS.KeyFile = key }), SettingTLSCert, ErrMissing},
		{"tls off with a cert", with(func(c *Connection) { c.TLS = TLSSettings{Mode: TLSOff, CertFile: cert, KeyFile: key} }), SettingTLS, ErrContradiction},
		{"tls off with an API key", with(func(c *Connection) { c.TLS.Mode = TLSOff; c.APIKey = "k" }), SettingTLS, ErrContradiction},
		{"unreadable CA", with(func(c *Connection) { c.TLS.CAFile = p.path("nope.crt") }), SettingTLSCA, ErrUnusable},
		{"CA not PEM", with(func(c *Connection) { c.TLS.CAFile = notPEM }), SettingTLSCA, ErrUnusable},
		{"unreadable cert", with(func(c *Connection) { c.TLS.CertFile, c.TLS.KeyFile = p.path("nope.crt"), key }), SettingTLSCert, ErrUnusable},
		{"unreadable key", with(func(c *Connection) { c.TLS.CertFile, c.TLS.KeyFile = cert, p.path("nope.key") }), SettingTLSKey, ErrUnusable},
		{"key of another cert", with(func(c *Connection) { c.TLS.CertFile, c.TLS.KeyFile = cert, p.path("other.key"); p.issue(t, "other") }), SettingTLSCert, ErrUnusable},
	} {
		_, err := tc.conn.ClientOptions(nil)
		var se *SettingError
		if !errors.As(err, &se) || se.Setting.Flag != tc.setting.Flag || !errors.Is(err, tc.kind) {
			t.Errorf("%s: got %v, want a %v error on %s", tc.name, err, tc.kind, tc.setting)
			continue
		}
		if !strings.Contains(err.Error(), "--"+tc.setting.Flag) || !strings.Contains(err.Error(), tc.setting.Env[0]) {
			t.Errorf("%s: %q names neither the flag nor the variable", tc.name, err)
		}
	}
}

// TLS follows from any TLS setting or an API key; --tls=false keeps plaintext; the SDK is told
// so explicitly, since an API key alone would otherwise turn TLS on behind pigwf's back.
func TestConnectionTLSEnabled(t *testing.T) {
	p := newTestPKI(t, "ca")
	cert, key := p.issue(t, "cli")
	for _, tc := range []struct {
		name string
		conn Connection
		tls  bool
	}{
		{"nothing", Connection{}, false},
		{"--tls", Connection{TLS: TLSSettings{Mode: TLSOn}}, true},
		{"a certificate", Connection{TLS: TLSSettings{CertFile: cert, KeyFile: key}}, true},
		{"a CA", Connection{TLS: TLSSettings{CAFile: p.path("ca.crt")}}, true},
		{"a server name", Connection{TLS: TLSSettings{ServerName: "temporal"}}, true},
		{"an API key", Connection{APIKey: "k"}, true},
		{"--tls=false", Connection{TLS: TLSSettings{Mode: TLSOff}}, false},
	} {
		tc.conn.Address, tc.conn.Namespace = "127.0.0.1:7233", "default"
		if got := tc.conn.TLSEnabled(); got != tc.tls {
			t.Errorf("%s: TLSEnabled = %v, want %v", tc.name, got, tc.tls)
		}
		opts, err := tc.conn.ClientOptions(nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (opts.ConnectionOptions.TLS != nil) != tc.tls || opts.ConnectionOptions.TLSDisabled == tc.tls {
			t.Errorf("%s: TLS %v, TLSDisabled %v; want TLS %v", tc.name, opts.ConnectionOptions.TLS != nil, opts.ConnectionOptions.TLSDisabled, tc.tls)
		}
		if (opts.Credentials != nil) != (tc.conn.APIKey != "") {
			t.Errorf("%s: credentials %v with API key %q", tc.name, opts.Credentials, tc.conn.APIKey)
		}
	}
}

// The client's tls.Config, against a real TLS server: the CA and the name are checked, and with
// host verification off a certificate naming another host passes while one from another CA
// still fails.
func TestConnectionClientTLSVerifiesTheServer(t *testing.T) {
	p := newTestPKI(t, "ca")
	other := newTestPKI(t, "other-ca")
	good, goodKey := p.issue(t, "server", net.ParseIP("127.0.0.1"))
	wrongHost, wrongHostKey := p.issue(t, "elsewhere", net.ParseIP("10.9.9.9"))
	foreign, foreignKey := other.issue(t, "server", net.ParseIP("127.0.0.1"))
	for _, tc := range []struct {
		name          string
		cert, key     string
		noHostVerify  bool
		wantConnected bool
	}{
		{"our CA, our host", good, goodKey, false, true},
		{"our CA, another host", wrongHost, wrongHostKey, false, false},
		{"our CA, another host, host verification off", wrongHost, wrongHostKey, true, true},
		{"another CA", foreign, foreignKey, false, false},
		{"another CA, host verification off", foreign, foreignKey, true, false},
	} {
		addr := serveTLS(t, tc.cert, tc.key)
		conn := Connection{Address: addr, Namespace: "default", TLS: TLSSettings{CAFile: p.path("ca.crt"), DisableHostVerification: tc.noHostVerify}}
		cfg, err := conn.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.wantConnected {
			t.Errorf("%s: handshake error %v, want connected=%v", tc.name, err, tc.wantConnected)
		}
	}
}

// serveTLS accepts TLS handshakes on a loopback port until the test ends.
func serveTLS(t *testing.T, cert, key string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return l.Addr().String()
}

// The API key never reaches a log line or a formatted value.
func TestAPIKeyIsNeverPrinted(t *testing.T) {
	conn := Connection{Address: "127.0.0.1:7233", Namespace: "default", APIKey: "s3cr3t-key"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("dial", "temporal", conn, "key", conn.APIKey)
	for _, s := range []string{buf.String(), fmt.Sprintf("%v %+v %#v %s", conn, conn, conn, conn.APIKey), conn.describe()} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("API key printed: %s", s)
		}
	}
}

func TestReadAPIKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if key, err := ReadAPIKeyFile(write("ok", "  abc.def\n")); err != nil || key != "abc.def" {
		t.Errorf("ReadAPIKeyFile = %q, %v", string(key), err)
	}
	for _, path := range []string{write("empty", "\n"), write("two", "a\nb\n"), filepath.Join(dir, "missing")} {
		var se *SettingError
		if _, err := ReadAPIKeyFile(path); !errors.As(err, &se) || se.Setting.Flag != SettingAPIKeyFile.Flag {
			t.Errorf("%s: %v, want an error naming --%s", path, err, SettingAPIKeyFile.Flag)
		}
	}
}
