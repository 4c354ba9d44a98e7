package libpq

import (
	"reflect"
	"testing"

	"github.com/pigwf/pigwf/pki"
)

// Values that need quoting are quoted so that libpq (Parse, which follows its rules) reads back
// exactly the value, and one value can never add a keyword.
func TestConninfoQuoting(t *testing.T) {
	for i, v := range []string{"10.0.0.1", "", "a b", "it's", `C:\x`, `\'`, "x sslmode=disable", "tab\there", "new\nline", "a=b"} {
		s := Conninfo(P("host", "h"), P("v", v), P("port", "5432"))
		got := Parse(s)
		want := map[string]string{"host": "h", "v": v, "port": "5432"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d: %q renders as %s, which reads back as %v", i, v, s, got)
		}
	}
	if got := Conninfo(P("host", "10.0.0.1"), P("application_name", "pg test's")); got != `host=10.0.0.1 application_name='pg test\'s'` {
		t.Errorf("Conninfo = %s", got)
	}
	if got := Parse(`host=h1 port = 5433 user='a b' options='-c statement_timeout=0' x=a\ b`); !reflect.DeepEqual(got, map[string]string{
		"host": "h1", "port": "5433", "user": "a b", "options": "-c statement_timeout=0", "x": "a b"}) {
		t.Errorf("Parse = %v", got)
	}
}

func TestVerifyFull(t *testing.T) {
	if ps := VerifyFull(pki.Files{}); ps != nil {
		t.Errorf("plain text (zero Files): %v, want none", ps)
	}
	got := Conninfo(VerifyFull(pki.NodeFiles())...)
	want := "sslmode=verify-full sslrootcert=/etc/pki/ca.crt sslcert=/etc/pki/pigwf/node.crt sslkey=/etc/pki/pigwf/node.key"
	if got != want {
		t.Errorf("node files: %s\nwant %s", got, want)
	}
	if got := Conninfo(VerifyFull(pki.Files{CA: "/ca dir/ca.crt"})...); got != "sslmode=verify-full sslrootcert='/ca dir/ca.crt'" {
		t.Errorf("CA only: %s", got)
	}
}

func TestServerSettings(t *testing.T) {
	want := map[string]string{"ssl": "on", "ssl_cert_file": pki.NodeCertPath, "ssl_key_file": pki.NodeKeyPath,
		"ssl_ca_file": pki.NodeCAPath, "ssl_min_protocol_version": "TLSv1.2"}
	if got := ServerSettings(pki.NodeFiles()); !reflect.DeepEqual(got, want) {
		t.Errorf("ServerSettings = %v, want %v", got, want)
	}
	if got := ServerSettings(pki.Files{}); !reflect.DeepEqual(got, map[string]string{"ssl": "off"}) {
		t.Errorf("plain text: %v", got)
	}
}
