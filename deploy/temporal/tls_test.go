package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certs writes a CA and two certificates it signed (server, internal client) into dir.
func certs(t *testing.T, dir, prefix string) (ca, srvCert, srvKey, intCert, intKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, prefix+name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(name string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	ca = write("ca.crt", "CERTIFICATE", caDER)
	srvCert, srvKey = issue("server", x509.ExtKeyUsageServerAuth)
	intCert, intKey = issue("internal", x509.ExtKeyUsageClientAuth)
	return
}

// The five --tls-* flags come together, and each file is checked at start with the flag named.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, sc, sk, ic, ik := certs(t, dir, "")
	_, osc, _, oic, oik := certs(t, dir, "other-")
	all := func(cert, key, ca, icert, ikey string) []string {
		return []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--tls-internal-cert", icert, "--tls-internal-key", ikey}
	}
	opts, err := parseFlags("pigwf-temporal", all(sc, sk, ca, ic, ik))
	if err != nil || !opts.TLS.enabled() {
		t.Fatalf("a full set: %v", err)
	}
	cfg := opts.TLS.serverConfig("127.0.0.1")
	if !cfg.Frontend.Server.RequireClientAuth || cfg.Frontend.Server.ClientCAFiles[0] != ca || cfg.SystemWorker.CertFile != ic || cfg.SystemWorker.Client.RootCAFiles[0] != ca {
		t.Errorf("server TLS config: %+v", cfg)
	}
	if opts, err := parseFlags("pigwf-temporal", nil); err != nil || opts.TLS.enabled() {
		t.Errorf("no TLS flags: %v, enabled=%v; want plain text", err, opts.TLS.enabled())
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"certificate alone", []string{"--tls-cert", sc}, "without --tls-key, --tls-ca, --tls-internal-cert, --tls-internal-key"},
		{"no internal certificate", []string{"--tls-cert", sc, "--tls-key", sk, "--tls-ca", ca}, "without --tls-internal-cert, --tls-internal-key"},
		{"unreadable CA", all(sc, sk, filepath.Join(dir, "nope"), ic, ik), "--tls-ca"},
		{"CA not PEM", all(sc, sk, sk, ic, ik), "--tls-ca"},
		{"key of another certificate", all(sc, ik, ca, ic, ik), "--tls-cert " + sc + " with --tls-key " + ik},
		{"server certificate from another CA", all(osc, filepath.Join(dir, "other-server.key"), ca, ic, ik), "--tls-cert " + osc + " is not signed by --tls-ca"},
		{"internal certificate from another CA", all(sc, sk, ca, oic, oik), "--tls-internal-cert " + oic + " is not signed by --tls-ca"},
	} {
		_, err := parseFlags("pigwf-temporal", tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}
