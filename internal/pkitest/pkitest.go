// Package pkitest gives tests a deployment CA in a temporary directory, certificates it issued,
// and HTTPS servers that tell who called: the set-up every test of a TLS client or server needs,
// made with pki itself so tests exercise the code the product runs.
package pkitest

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/pigwf/pigwf/pki"
)

// CA is a new deployment CA in a temporary directory.
func CA(t testing.TB) pki.CA {
	t.Helper()
	ca := pki.CA{Dir: t.TempDir()}
	if _, err := ca.Ensure(); err != nil {
		t.Fatal(err)
	}
	return ca
}

// Issue writes a certificate of ca for r into a temporary directory: the files, trusting ca.
func Issue(t testing.TB, ca pki.CA, r pki.Request) pki.Files {
	t.Helper()
	dir := t.TempDir()
	f := pki.Files{CA: ca.Files().CA, Cert: filepath.Join(dir, r.CommonName+".crt"), Key: filepath.Join(dir, r.CommonName+".key")}
	if _, err := ca.EnsurePair(r, f.Cert, f.Key, time.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

// Node is a node certificate of ca for 127.0.0.1 (as NodeInit issues one), named name.
func Node(t testing.TB, ca pki.CA, name string) pki.Files {
	t.Helper()
	return Issue(t, ca, pki.NodeRequest(name, "127.0.0.1"))
}

// Caller is the common name of the request's verified client certificate, "" without one.
func Caller(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return ""
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName
}

// Serve runs h over TLS with server's certificate on 127.0.0.1, asking for (not requiring)
// client certificates as the agents' API does, until the test ends; it returns the base URL.
func Serve(t testing.TB, server pki.Files, h http.Handler) string {
	t.Helper()
	cfg, err := server.Server(tls.VerifyClientCertIfGiven)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}
