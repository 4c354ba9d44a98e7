package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"time"
)

// Usage is what a certificate may be used for.
type Usage int

const (
	// Server certificates are presented by listeners (etcd, the agent's API, PostgreSQL).
	Server Usage = 1 << iota
	// Client certificates authenticate a caller (the worker, the CLI, an agent to etcd).
	Client
	// ServerAndClient is a node's certificate: its services listen with it and its agent
	// authenticates with it to etcd and to the other members' APIs.
	ServerAndClient = Server | Client
)

// DefaultValidity is how long issued certificates last; RenewBefore is how close to the end a
// rerun of the step that issued one replaces it.
const (
	DefaultValidity = 397 * 24 * time.Hour
	RenewBefore     = 30 * 24 * time.Hour
)

// Request describes a certificate to issue. Names and addresses are checked against strict
// rules (they end up in files and in TLS handshakes).
type Request struct {
	CommonName string
	IPs        []string // IP SANs
	DNS        []string // DNS SANs
	Usage      Usage
	Validity   time.Duration // DefaultValidity when zero
}

// Pair is an issued certificate and its private key, PEM-encoded.
type Pair struct {
	Cert, Key []byte
}

var dnsNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// Validate checks a request; the error names the field.
func (r Request) Validate() error {
	var errs []error
	if !dnsNameRE.MatchString(r.CommonName) {
		errs = append(errs, fmt.Errorf("certificate common name %q: use letters, digits, '-' and '.'", r.CommonName))
	}
	for _, ip := range r.IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("certificate IP address %q is not an IP address", ip))
		}
	}
	for _, d := range r.DNS {
		if !dnsNameRE.MatchString(d) {
			errs = append(errs, fmt.Errorf("certificate DNS name %q: use letters, digits, '-' and '.'", d))
		}
	}
	if r.Usage&ServerAndClient == 0 {
		errs = append(errs, errors.New("certificate usage: say server, client or both"))
	}
	if r.Usage&Server != 0 && len(r.IPs)+len(r.DNS) == 0 {
		errs = append(errs, fmt.Errorf("server certificate %q names no address or DNS name to verify it against", r.CommonName))
	}
	if r.Validity < 0 {
		errs = append(errs, fmt.Errorf("certificate validity %s is negative", r.Validity))
	}
	return errors.Join(errs...)
}

func (r Request) extKeyUsage() []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if r.Usage&Server != 0 {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if r.Usage&Client != 0 {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

// Issue signs a new certificate for r with a fresh P-256 key.
func (s CA) Issue(r Request) (Pair, error) {
	if err := r.Validate(); err != nil {
		return Pair{}, err
	}
	caCert, caKey, err := s.signer()
	if err != nil {
		return Pair{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("while generating a key for %s: %w", r.CommonName, err)
	}
	validity := r.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: r.CommonName, Organization: []string{"pigwf"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clocks a little behind the CA's
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           r.extKeyUsage(),
		BasicConstraintsValid: true,
		DNSNames:              append([]string(nil), r.DNS...),
	}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	for _, ip := range r.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return Pair{}, fmt.Errorf("while signing the certificate of %s: %w", r.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// signer loads the CA's certificate and key for signing.
func (s CA) signer() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, _, err := s.CertPEM()
	if err != nil {
		return nil, nil, fmt.Errorf("CA in %s: %w", s.Dir, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := s.loadKey()
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// parseCert decodes the first PEM certificate in data.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
