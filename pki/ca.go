package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/pigwf/pigwf/internal/atomicfile"
)

// CA is the deployment's certificate authority on the control side (the worker's host).
// The private key stays in Dir (mode 0600) and never leaves it: activities return only the
// certificate's fingerprint, so workflow history never holds key material; certificates it
// issues reach nodes on an SSH command's stdin.
type CA struct {
	Dir string
}

// Info describes the CA without its key.
type Info struct {
	Fingerprint string `json:"fingerprint"` // sha256 of the DER certificate, hex
	Subject     string `json:"subject"`
	NotAfter    string `json:"not_after"`
	Created     bool   `json:"created"`
}

func (s CA) certPath() string { return filepath.Join(s.Dir, "ca.crt") }
func (s CA) keyPath() string  { return filepath.Join(s.Dir, "ca.key") }

// Ensure creates the CA once; later calls report it unchanged.
func (s CA) Ensure() (Info, error) {
	if info, err := s.Load(); err == nil {
		return info, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Info{}, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("while creating the CA directory %s: %w", s.Dir, err)
	}
	// The key is the single source of truth: create it once (atomically, whoever wins), read
	// back the winner, and sign the certificate with it. Whichever certificate then lands first
	// matches the key, however many workers race, and a crash between the two steps is
	// repaired by the next call.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Info{}, fmt.Errorf("while generating the CA key: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Info{}, err
	}
	if err := atomicfile.CreateOnce(s.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return Info{}, err
	}
	if key, err = s.loadKey(); err != nil {
		return Info{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pigwf-ca", Organization: []string{"pigwf"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Info{}, fmt.Errorf("while signing the CA certificate: %w", err)
	}
	if err := atomicfile.CreateOnce(s.certPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return Info{}, err
	}
	if err := s.verifyPair(); err != nil {
		return Info{}, err
	}
	info, err := s.Load()
	info.Created = true
	return info, err
}

func (s CA) loadKey() (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(s.keyPath())
	if err != nil {
		return nil, fmt.Errorf("while reading the CA key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s is not a PEM key", s.keyPath())
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

// verifyPair checks that ca.key belongs to ca.crt.
func (s CA) verifyPair() error {
	_, err := tls.LoadX509KeyPair(s.certPath(), s.keyPath())
	if err != nil {
		return fmt.Errorf("CA in %s: ca.key does not match ca.crt (%v): two workers created a CA at once? remove both files only if no node has /etc/pki/ca.crt yet", s.Dir, err)
	}
	return nil
}

// Load reads the CA certificate; os.ErrNotExist when there is none yet.
func (s CA) Load() (Info, error) {
	_, info, err := s.CertPEM()
	return info, err
}

// CertPEM returns the CA certificate (public) and its description.
func (s CA) CertPEM() ([]byte, Info, error) {
	data, err := os.ReadFile(s.certPath())
	if err != nil {
		return nil, Info{}, err
	}
	if _, err := os.Stat(s.keyPath()); err != nil {
		return nil, Info{}, fmt.Errorf("CA certificate %s has no key beside it (%w): restore ca.key from backup or move the directory away to create a new CA", s.certPath(), err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, Info{}, fmt.Errorf("%s is not a PEM certificate", s.certPath())
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, Info{}, fmt.Errorf("while parsing %s: %w", s.certPath(), err)
	}
	return data, Info{Fingerprint: Fingerprint(block.Bytes), Subject: cert.Subject.String(), NotAfter: cert.NotAfter.UTC().Format(time.RFC3339)}, nil
}

// Fingerprint is the hex sha256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
