package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// HTTPTransport is the transport of every pigwf client of pigwf's own HTTPS services (the HA
// agents' REST API): the agents, the worker's activities, the CLI and the test harnesses. https
// is verified against the CA, presenting the certificate when one is named; connections are kept
// alive, so a caller that reuses the transport pays one handshake per connection, not per call.
//
// Zero Files (a plain-text lab) give a transport that speaks http only: an https URL is refused
// at the handshake (no root is trusted), never verified against the system's roots.
func (f Files) HTTPTransport() (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !f.Enabled() {
		t.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		return t, nil
	}
	cfg, err := f.Client("")
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = cfg
	return t, nil
}

// ErrPlainHTTP is returned by an HTTPSOnly client for an http:// URL.
var ErrPlainHTTP = errors.New("plain http refused: pigwf's services speak https unless a lab says so (pigwf_insecure_plaintext)")

// HTTPSOnly sends https requests only: a client outside a plain-text lab never talks, or sends
// credentials, in plain text to a URL it was given (a run's input, a member's record).
func HTTPSOnly(rt http.RoundTripper) http.RoundTripper { return httpsOnly{rt} }

type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		if r.Body != nil {
			r.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("%s: %w", r.URL.Redacted(), ErrPlainHTTP)
	}
	return h.next.RoundTrip(r)
}
