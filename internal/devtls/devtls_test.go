package devtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"
)

// Ensure issues the frontend's certificate (loopback and the listen address) and every role's
// client certificate from the deployment CA, keys 0600; a rerun changes nothing, and Defaults
// then finds each role's files.
func TestEnsureIsIdempotentAndServesEveryRole(t *testing.T) {
	l := Layout{Home: t.TempDir()}
	if _, ok, err := l.Defaults(RoleCLI); ok || err != nil {
		t.Fatalf("before Ensure: Defaults ok=%v err=%v; want nothing", ok, err)
	}
	now := time.Now()
	changed, err := Ensure(l, "10.0.0.5", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + len(Roles); len(changed) != want { // the CA, the frontend, each role
		t.Errorf("first Ensure wrote %d files %v, want %d", len(changed), changed, want)
	}
	if again, err := Ensure(l, "10.0.0.5", now); err != nil || len(again) != 0 {
		t.Errorf("second Ensure: wrote %v, %v; want nothing", again, err)
	}

	fe := l.Frontend()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(fe.CA)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA %s: %v", fe.CA, err)
	}
	leaf := loadLeaf(t, fe.Cert, fe.Key)
	for _, name := range []string{"127.0.0.1", "localhost", "::1", "10.0.0.5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("frontend certificate for %s: %v", name, err)
		}
	}
	for _, r := range Roles {
		f, ok, err := l.Defaults(r)
		if err != nil || !ok {
			t.Fatalf("Defaults(%s): ok=%v %v", r, ok, err)
		}
		leaf := loadLeaf(t, f.Cert, f.Key)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != string(r) {
			t.Errorf("%s: client certificate %q: %v", r, leaf.Subject.CommonName, err)
		}
	}
	for _, key := range []string{fe.Key, l.Client(RoleWorker).Key, l.Client(RoleInternal).Key} {
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", key, fi.Mode().Perm(), err)
		}
	}

	// Another listen address is added by a rerun (pki's Check refuses a certificate lacking it).
	if changed, err := Ensure(l, "10.0.0.6", now); err != nil || len(changed) != 1 || changed[0] != fe.Cert {
		t.Errorf("Ensure with a new address: wrote %v, %v; want the frontend certificate alone", changed, err)
	}

	if err := os.Remove(l.Client(RoleChatops).Key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Defaults(RoleChatops); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a missing key: %v; want ErrIncomplete", err)
	}
}

func loadLeaf(t *testing.T, cert, key string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
