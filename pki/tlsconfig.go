package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names a CA certificate and, optionally, a certificate and its key: what a TLS client or
// server of pigwf reads. The one place TLS configurations are built from them.
type Files struct {
	CA   string `yaml:"ca" json:"ca"`
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
}

// ErrNoCA is returned when Files names no CA certificate: pigwf never trusts the system roots
// for its own services, nor skips verification.
var ErrNoCA = errors.New("no CA certificate configured")

// Enabled reports whether any file is named (a zero Files means plain text, where allowed).
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Validate checks the combination (not the files' existence).
func (f Files) Validate() error {
	switch {
	case f.CA == "":
		return ErrNoCA
	case (f.Cert == "") != (f.Key == ""):
		return fmt.Errorf("a certificate needs its key and a key its certificate (cert %q, key %q)", f.Cert, f.Key)
	}
	return nil
}

func (f Files) pool() (*x509.CertPool, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", f.CA)
	}
	return pool, nil
}

// Client is the configuration of a client that verifies the server against the CA (serverName
// is the name or address it must carry; "" takes the dialled host) and presents the certificate
// when one is named.
func (f Files) Client(serverName string) (*tls.Config, error) {
	pool, err := f.pool()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if f.Cert != "" {
		kp, err := newKeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// Server is the configuration of a listener presenting the certificate; clientAuth says whether
// client certificates are asked for (tls.VerifyClientCertIfGiven lets health checks in without one
// while mutating requests demand one) or required, and they are verified against the CA.
func (f Files) Server(clientAuth tls.ClientAuthType) (*tls.Config, error) {
	if f.Cert == "" {
		return nil, errors.New("a TLS server needs a certificate and key")
	}
	pool, err := f.pool()
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientCAs:      pool,
		ClientAuth:     clientAuth,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}, nil
}

// keyPair re-reads its files when they change (a rerun renewed them), checked at most every
// reloadEvery, so long-running agents pick up a renewal without a restart.
type keyPair struct {
	cert, key string
	mu        sync.Mutex
	current   *tls.Certificate
	mtime     time.Time
	checked   time.Time
}

const reloadEvery = 10 * time.Second

func newKeyPair(cert, key string) (*keyPair, error) {
	kp := &keyPair{cert: cert, key: key}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	now := time.Now()
	if kp.current != nil && now.Sub(kp.checked) < reloadEvery {
		return kp.current, nil
	}
	kp.checked = now
	fi, err := os.Stat(kp.cert)
	if err == nil && kp.current != nil && fi.ModTime().Equal(kp.mtime) {
		return kp.current, nil
	}
	c, lerr := tls.LoadX509KeyPair(kp.cert, kp.key)
	if lerr != nil {
		if kp.current != nil {
			return kp.current, nil // a renewal half-written: keep the old pair until the next look
		}
		return nil, fmt.Errorf("certificate %s and key %s: %w", kp.cert, kp.key, lerr)
	}
	kp.current = &c
	if fi != nil {
		kp.mtime = fi.ModTime()
	}
	return kp.current, nil
}
