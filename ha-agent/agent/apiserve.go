package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/httplimit"
	"github.com/pigwf/pigwf/pki"
)

// How the REST API is served, and how the agent calls the other members' APIs (GET /probe,
// POST /failsafe: the failover path).

// servesTLS: the API serves TLS exactly when the URL it advertises is https (config validation
// wants https unless insecure_plaintext, and TLS files for https).
func (c LocalConfig) servesTLS() bool {
	u, err := url.Parse(c.API.URL)
	return err == nil && u.Scheme == "https"
}

// setupAPI prepares the REST API's TLS and guard and the client of the other members' APIs
// (before Run: bad files fail New, not the first failover).
func (a *Agent) setupAPI() error {
	var err error
	if a.http, err = newPeerClient(a.cfg); err != nil {
		return err
	}
	if a.apiTLS, err = newAPITLS(a.cfg); err != nil {
		return err
	}
	if a.access, err = newAPIGuard(a.cfg, a.apiTLS != nil, a.memberAddrs); err != nil {
		return err
	}
	if a.access.open {
		a.log.Warn("insecure_plaintext: the REST API serves plain text and its mutating endpoints (switchover, failover, failsafe) take no credentials; a lab only")
	}
	return nil
}

// apiServer is the REST API's server: the guard in front of the routes, TLS with the node's
// certificate when the API serves it (client certificates asked for, not required, so load
// balancers' health checks need none), and pigwf's HTTP limits (httplimit: timeouts bounding
// what a slow or stalled client holds; handlers answer within failoverRequestTimeout).
func (a *Agent) apiServer() *http.Server {
	srv := httplimit.Server("", a.access.wrap(a.routes()), failoverRequestTimeout)
	srv.TLSConfig = a.apiTLS
	// Failed handshakes (a scanner, a client of another CA) are not the operator's news.
	srv.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	return srv
}

// serveAPI serves the REST API on lis until the server is closed.
func serveAPI(srv *http.Server, lis net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(lis, "", "") // the certificate comes from TLSConfig (reloaded on renewal)
	}
	return srv.Serve(lis)
}

// newAPITLS is the API's server TLS configuration, nil when it serves plain text.
func newAPITLS(cfg LocalConfig) (*tls.Config, error) {
	if !cfg.servesTLS() {
		return nil, nil
	}
	tc, err := cfg.TLS.Server(tls.VerifyClientCertIfGiven)
	if err != nil {
		return nil, fmt.Errorf("REST API TLS (tls: %s, %s): %w", cfg.TLS.Cert, cfg.TLS.Key, err)
	}
	return tc, nil
}

// newPeerClient is the agent's one client of the other members' APIs: https verified against
// the deployment CA, presenting the node's certificate, and https only unless insecure_plaintext
// (a member's record naming an http URL gets neither a request nor api.auth's password). One
// transport, so connections stay alive between the loop's calls; callers bound each call with
// their own, shorter, context.
func newPeerClient(cfg LocalConfig) (*http.Client, error) {
	tr, err := cfg.TLS.HTTPTransport()
	if err != nil {
		return nil, fmt.Errorf("the client of the other members' APIs (tls): %w", err)
	}
	var rt http.RoundTripper = tr
	if !cfg.InsecurePlaintext {
		rt = pki.HTTPSOnly(tr)
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: rt}, nil
}

// peerRequest builds a request to another member's API at base+path, with the agent's
// credentials when it is a mutating one.
func (a *Agent) peerRequest(ctx context.Context, method, base, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a.access.sign(req)
	return req, nil
}
