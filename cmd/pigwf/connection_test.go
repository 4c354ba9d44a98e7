package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/starter"
)

// connectionOf runs pigwf's global flags with args and env and returns what connection() built.
func connectionOf(t *testing.T, role devtls.Role, env map[string]string, args ...string) (starter.Connection, error) {
	t.Helper()
	for _, s := range []starter.Setting{starter.SettingAddress, starter.SettingNamespace, starter.SettingTLS, starter.SettingTLSCert,
		starter.SettingTLSKey, starter.SettingTLSCA, starter.SettingServerName, starter.SettingNoHostName, starter.SettingAPIKey, starter.SettingAPIKeyFile} {
		for _, e := range s.Env {
			t.Setenv(e, "")
			os.Unsetenv(e)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var conn starter.Connection
	var err error
	app := &cli.App{Flags: connectionFlags(), Action: func(c *cli.Context) error {
		conn, err = connection(c, role)
		return nil
	}}
	if runErr := app.Run(append([]string{"pigwf"}, args...)); runErr != nil {
		t.Fatal(runErr)
	}
	return conn, err
}

// touch creates files (empty: connection() only looks for them).
func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Precedence: flags and environment first; pigwf's own client files only when no TLS setting
// and no API key is given at all, and never with --tls=false.
func TestConnectionPrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PIGWF_HOME", home)
	layout := devtls.Layout{Home: home}

	conn, err := connectionOf(t, devtls.RoleWorker, nil)
	if err != nil || conn.TLSEnabled() || conn.Address != "127.0.0.1:7233" || conn.Namespace != "default" {
		t.Fatalf("no files, no flags: %+v %v; want plaintext to 127.0.0.1:7233", conn, err)
	}

	worker, cli := layout.Client(devtls.RoleWorker), layout.Client(devtls.RoleCLI)
	touch(t, worker.CA, worker.Cert, worker.Key, cli.Cert, cli.Key)
	if conn, err := connectionOf(t, devtls.RoleWorker, nil); err != nil || conn.TLSEnabled() {
		t.Errorf("the CA and client certificates alone (NodeInit and the lab's etcd made them; `pigwf dev` did not set up mTLS): %+v %v; want plaintext", conn, err)
	}

	touch(t, layout.Frontend().Cert, layout.Frontend().Key)
	conn, err = connectionOf(t, devtls.RoleWorker, nil)
	if err != nil || conn.TLS.CertFile != worker.Cert || conn.TLS.KeyFile != worker.Key || conn.TLS.CAFile != worker.CA || conn.Defaults != layout.Dir() {
		t.Errorf("worker after `pigwf dev`: %+v %v; want its client files", conn, err)
	}
	if conn, err := connectionOf(t, devtls.RoleCLI, nil); err != nil || conn.TLS.CertFile != cli.Cert {
		t.Errorf("CLI after `pigwf dev`: %+v %v; want its client files", conn, err)
	}
	if _, err := connectionOf(t, devtls.RoleChatops, nil); !errors.Is(err, devtls.ErrIncomplete) {
		t.Errorf("the bridge's files missing: %v; want ErrIncomplete", err)
	}

	if conn, err := connectionOf(t, devtls.RoleWorker, nil, "--tls=false"); err != nil || conn.TLSEnabled() || conn.TLS.CertFile != "" {
		t.Errorf("--tls=false: %+v %v; want plaintext", conn, err)
	}
	if conn, err := connectionOf(t, devtls.RoleWorker, map[string]string{"TEMPORAL_TLS": "false"}); err != nil || conn.TLSEnabled() {
		t.Errorf("TEMPORAL_TLS=false: %+v %v; want plaintext", conn, err)
	}

	if conn, err := connectionOf(t, devtls.RoleChatops, nil, "--tls=false"); err != nil || conn.TLSEnabled() {
		t.Errorf("--tls=false with files missing: %+v %v; want plaintext", conn, err)
	}
	conn, err = connectionOf(t, devtls.RoleWorker, map[string]string{"TEMPORAL_TLS_CA": "/etc/ca.pem"})
	if err != nil || conn.TLS.CAFile != "/etc/ca.pem" || conn.TLS.CertFile != "" || conn.Defaults != "" {
		t.Errorf("TEMPORAL_TLS_CA: %+v %v; want that CA and no default files", conn, err)
	}
	conn, err = connectionOf(t, devtls.RoleWorker, map[string]string{"TEMPORAL_TLS_CERT": "/env.crt", "TEMPORAL_TLS_KEY": "/env.key"},
		"--tls-cert-path", "/flag.crt", "--tls-key-path", "/flag.key")
	if err != nil || conn.TLS.CertFile != "/flag.crt" || conn.TLS.KeyFile != "/flag.key" {
		t.Errorf("flag over env: %+v %v", conn, err)
	}
	conn, err = connectionOf(t, devtls.RoleWorker, map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": "/sdk.crt", "TEMPORAL_TLS_CLIENT_KEY_PATH": "/sdk.key"})
	if err != nil || conn.TLS.CertFile != "/sdk.crt" || conn.TLS.KeyFile != "/sdk.key" {
		t.Errorf("the SDKs' variable names: %+v %v", conn, err)
	}
	var se *starter.SettingError
	if _, err := connectionOf(t, devtls.RoleWorker, nil, "--tls-cert-path", "/flag.crt"); !errors.As(err, &se) || se.Setting.Flag != starter.SettingTLSKey.Flag {
		t.Errorf("a certificate without its key: %v; want an error on %s", err, starter.SettingTLSKey)
	}
}

// The API key comes from the environment or a file; one typed on the command line still works
// (the temporal CLI takes it) but the usage says not to.
func TestConnectionAPIKey(t *testing.T) {
	t.Setenv("PIGWF_HOME", t.TempDir())
	conn, err := connectionOf(t, devtls.RoleCLI, map[string]string{"TEMPORAL_API_KEY": "from-env"})
	if err != nil || conn.APIKey != "from-env" || !conn.TLSEnabled() {
		t.Errorf("TEMPORAL_API_KEY: %v %v tls=%v", string(conn.APIKey), err, conn.TLSEnabled())
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err = connectionOf(t, devtls.RoleCLI, map[string]string{"TEMPORAL_API_KEY": "from-env"}, "--api-key-file", file)
	if err != nil || conn.APIKey != "from-file" {
		t.Errorf("--api-key-file over TEMPORAL_API_KEY: %v %v", string(conn.APIKey), err)
	}
	if _, err := connectionOf(t, devtls.RoleCLI, nil, "--api-key", "k", "--tls=false"); err == nil {
		t.Error("an API key with --tls=false was accepted: it would travel in plaintext")
	}
}
