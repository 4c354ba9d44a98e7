package main

import (
	"reflect"
	"testing"

	"github.com/pigwf/pigwf/pki"
)

// pigwf dev serves mutual TLS with the files it issued, and registers every search attribute
// pigwf's runs set, with its type.
func TestDevServerArgs(t *testing.T) {
	mtls := &devTLS{
		Server:   pki.Files{CA: "/root/.pigwf/ca/ca.crt", Cert: "/root/.pigwf/tls/pigwf-temporal.crt", Key: "/root/.pigwf/tls/pigwf-temporal.key"},
		Internal: pki.Files{CA: "/root/.pigwf/ca/ca.crt", Cert: "/root/.pigwf/ca/clients/i.crt", Key: "/root/.pigwf/ca/clients/i.key"},
	}
	got := devServerArgs("/opt/pigwf/bin/pigwf-temporal", "127.0.0.1", 7233, 8233, "/root/.pigwf/temporal.db", mtls)
	want := []string{"/opt/pigwf/bin/pigwf-temporal", "--ip", "127.0.0.1", "--port", "7233", "--ui-port", "8233", "--db-filename", "/root/.pigwf/temporal.db",
		"--tls-cert", "/root/.pigwf/tls/pigwf-temporal.crt", "--tls-key", "/root/.pigwf/tls/pigwf-temporal.key", "--tls-ca", "/root/.pigwf/ca/ca.crt",
		"--tls-internal-cert", "/root/.pigwf/ca/clients/i.crt", "--tls-internal-key", "/root/.pigwf/ca/clients/i.key",
		"--search-attribute", "PgCluster=Keyword",
		"--search-attribute", "Runbook=Keyword",
		"--search-attribute", "RunState=Keyword",
		"--search-attribute", "RunSummary=Text",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	plain := devServerArgs("/opt/pigwf/bin/pigwf-temporal", "127.0.0.1", 7233, 8233, "/root/.pigwf/temporal.db", nil)
	if !reflect.DeepEqual(plain, append(want[:9:9], want[19:]...)) {
		t.Errorf("--insecure-plaintext: got %q", plain)
	}
}
