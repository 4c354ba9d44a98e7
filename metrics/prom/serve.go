package prom

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/httplimit"
	"github.com/pigwf/pigwf/pki"
)

// Listen is where a process serves its metrics: plain HTTP on a loopback address only, HTTPS
// anywhere. Metrics name clusters, members and runbooks; off the machine they travel encrypted
// and Prometheus knows it reaches the real worker.
type Listen struct {
	Addr string    // host:port; "" or "off": not served
	TLS  pki.Files // certificate and key (and the CA a client's certificate, when it gives one, is verified against); no certificate: plain HTTP
}

// ErrPlaintextOffLoopback: a listen address other than a loopback one was given without a
// certificate and key.
var ErrPlaintextOffLoopback = errors.New("metrics off the loopback interface are served over HTTPS only: a certificate and key are needed")

// Enabled reports whether metrics are served at all.
func (l Listen) Enabled() bool { return l.Addr != "" && l.Addr != "off" }

// Scheme is what the endpoint serves: https or http.
func (l Listen) Scheme() string {
	if l.TLS.Cert != "" {
		return "https"
	}
	return "http"
}

// Check validates the address and the TLS combination, without touching the network.
func (l Listen) Check() error {
	if !l.Enabled() {
		return nil
	}
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return fmt.Errorf("metrics listen address %q: %w (want host:port, e.g. 127.0.0.1:9477)", l.Addr, err)
	}
	if l.TLS.Cert != "" || l.TLS.Key != "" {
		if err := l.TLS.Validate(); err != nil {
			return fmt.Errorf("metrics TLS: %w", err)
		}
		return nil
	}
	if !IsLoopback(host) {
		return fmt.Errorf("%s: %w", l.Addr, ErrPlaintextOffLoopback)
	}
	return nil
}

// IsLoopback reports whether host (a listen address's host part) is only reachable from this
// machine: a loopback IP or "localhost". An empty host (all interfaces) or any other name is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Server is the /metrics endpoint of h, bound and ready: Serve runs it.
type Server struct {
	lis net.Listener
	srv *http.Server
	url string
}

// answerWithin bounds a scrape's answer (collectors that ask Temporal have their own shorter
// timeouts).
const answerWithin = 15 * time.Second

// Bind checks l and binds its address, so a port in use or a bad certificate stops the process
// at start, not at the first scrape.
func Bind(l Listen, h http.Handler, log *slog.Logger) (*Server, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := httplimit.Server("", mux, answerWithin)
	// Failed handshakes (a scanner, a scraper with the wrong CA) are not the operator's news.
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	if l.TLS.Cert != "" {
		tc, err := l.TLS.Server(tls.VerifyClientCertIfGiven)
		if err != nil {
			return nil, fmt.Errorf("metrics TLS (%s, %s): %w", l.TLS.Cert, l.TLS.Key, err)
		}
		srv.TLSConfig = tc
	}
	lis, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, fmt.Errorf("while listening for metrics on %s: %w", l.Addr, err)
	}
	return &Server{lis: lis, srv: srv, url: l.Scheme() + "://" + lis.Addr().String() + "/metrics"}, nil
}

// URL is the endpoint's address as bound (the port filled in when it was 0).
func (s *Server) URL() string { return s.url }

// Serve serves until ctx is done; its error is the listener's failure, nil after ctx.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	})
	defer stop()
	var err error
	if s.srv.TLSConfig != nil {
		err = s.srv.ServeTLS(s.lis, "", "") // the certificate comes from TLSConfig (reloaded on renewal)
	} else {
		err = s.srv.Serve(s.lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serving metrics on %s: %w", s.lis.Addr(), err)
}
