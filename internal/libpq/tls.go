package libpq

import "github.com/pigwf/pigwf/pki"

// MinTLSVersion is the oldest TLS a pigwf PostgreSQL server accepts.
const MinTLSVersion = "TLSv1.2"

// VerifyFull are the TLS parameters of a connection to another host: the server's certificate
// must chain to f.CA and name the host dialled (sslmode=verify-full, so neither a stranger's
// server nor one of ours answering for another address passes), and the client presents f's
// certificate when f names one (so a `cert` pg_hba rule can authenticate it). None for zero
// Files: a plain-text lab connects as it always did.
func VerifyFull(f pki.Files) []Param {
	if !f.Enabled() {
		return nil
	}
	ps := []Param{{"sslmode", "verify-full"}, {"sslrootcert", f.CA}}
	if f.Cert != "" {
		ps = append(ps, Param{"sslcert", f.Cert}, Param{"sslkey", f.Key})
	}
	return ps
}

// ServerSettings are postgresql.conf's TLS settings: the server presents f's certificate and
// verifies the client certificates it is shown (a `cert` rule requires one) against f.CA. Zero
// Files turn TLS off: a plain-text lab.
func ServerSettings(f pki.Files) map[string]string {
	if !f.Enabled() {
		return map[string]string{"ssl": "off"}
	}
	return map[string]string{
		"ssl":                      "on",
		"ssl_cert_file":            f.Cert,
		"ssl_key_file":             f.Key,
		"ssl_ca_file":              f.CA,
		"ssl_min_protocol_version": MinTLSVersion,
	}
}
