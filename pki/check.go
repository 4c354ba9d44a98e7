package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"
)

// Verdict says whether a certificate found in place still serves a request, and why not.
type Verdict struct {
	Valid  bool
	Reason string // for people; control flow uses Valid
}

// Check is the one rule for "issue again": the certificate must parse, chain to this CA, carry
// every name and address of r and r's usages, and be more than RenewBefore from its end. A rerun
// of the step that issued it replaces it otherwise, so renewal is a rerun.
func (s CA) Check(certPEM []byte, r Request, now time.Time) Verdict {
	caPEM, _, err := s.CertPEM()
	if err != nil {
		return Verdict{Reason: fmt.Sprintf("the CA cannot be read: %v", err)}
	}
	return CheckAgainst(caPEM, certPEM, r, now)
}

// CheckAgainst is Check with the CA certificate given (for callers without the CA's key).
func CheckAgainst(caPEM, certPEM []byte, r Request, now time.Time) Verdict {
	if len(certPEM) == 0 {
		return Verdict{Reason: "no certificate yet"}
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return Verdict{Reason: fmt.Sprintf("the certificate does not parse: %v", err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return Verdict{Reason: "the CA certificate does not parse"}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Verdict{Reason: fmt.Sprintf("not a valid certificate of this deployment's CA: %v", err)}
	}
	if cert.Subject.CommonName != r.CommonName {
		return Verdict{Reason: fmt.Sprintf("issued to %q, not %q", cert.Subject.CommonName, r.CommonName)}
	}
	for _, want := range r.extKeyUsage() {
		if !slices.Contains(cert.ExtKeyUsage, want) {
			return Verdict{Reason: "lacks a usage this certificate needs (server or client authentication)"}
		}
	}
	for _, d := range r.DNS {
		if !slices.Contains(cert.DNSNames, d) {
			return Verdict{Reason: fmt.Sprintf("does not name %s", d)}
		}
	}
	for _, ip := range r.IPs {
		want := net.ParseIP(ip)
		if !slices.ContainsFunc(cert.IPAddresses, want.Equal) {
			return Verdict{Reason: fmt.Sprintf("does not name %s", ip)}
		}
	}
	if left := cert.NotAfter.Sub(now); left < RenewBefore {
		return Verdict{Reason: fmt.Sprintf("expires %s (in %s): renewing", cert.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Hour))}
	}
	return Verdict{Valid: true, Reason: fmt.Sprintf("valid until %s", cert.NotAfter.UTC().Format("2006-01-02"))}
}
