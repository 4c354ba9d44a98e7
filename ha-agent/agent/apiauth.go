package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
)

// Who may change what through the REST API. The health checks (GET, HEAD, OPTIONS) stay open:
// load balancers probe them without credentials, as they do Patroni's. Every other request
// changes something (a switchover, a failover, a failsafe confirmation) and is let through only
//
//   - from an address of api.allowlist or of a member of the cluster, when an allowlist is set
//     (else 403), as Patroni's restapi.allowlist; and
//   - with a client certificate verified against the deployment CA (the members' node
//     certificates, the worker's and the CLI's), or api.auth's username and password as
//     Patroni's restapi.authentication (else 401 with a Basic challenge).
//
// A plain-text lab (insecure_plaintext, api.url http://) without api.auth has nothing to
// authenticate with: its mutating endpoints are open, and the agent says so when it starts.

// mutating is the one rule of which requests need credentials: every method but GET, HEAD and
// OPTIONS. Unknown methods count as mutating, so a new handler cannot be left open by mistake.
func mutating(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// basicRealm is the realm of the 401 challenge.
const basicRealm = `Basic realm="pigwf"`

// apiGuard enforces the rule above in front of every handler.
type apiGuard struct {
	user, password string // api.auth; "" when not configured
	allow          []netip.Prefix
	// members are the addresses of the cluster's members' APIs as this agent last saw them:
	// always allowed, so an allowlist that forgets them cannot cut failsafe confirmations.
	members func() []netip.Addr
	// open: a plain-text lab without api.auth (see above).
	open    bool
	refused atomic.Int64
}

// newAPIGuard builds the guard of cfg; tlsServed says whether the API serves TLS.
func newAPIGuard(cfg LocalConfig, tlsServed bool, members func() []netip.Addr) (*apiGuard, error) {
	g := &apiGuard{members: members, open: !tlsServed && cfg.API.Auth == nil}
	if au := cfg.API.Auth; au != nil {
		pw, err := readAPIPassword(au.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("api.auth.password_file: %w", err)
		}
		g.user, g.password = au.Username, pw
	}
	var err error
	if g.allow, err = parseAllowlist(cfg.API.Allowlist); err != nil {
		return nil, err
	}
	return g, nil
}

// wrap puts the guard in front of next.
func (g *apiGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mutating(r) || g.open {
			next.ServeHTTP(w, r)
			return
		}
		if !g.allowed(r) {
			g.refused.Add(1)
			http.Error(w, "forbidden: this address is not in the API's allowlist (api.allowlist)", http.StatusForbidden)
			return
		}
		if !g.authenticated(r) {
			g.refused.Add(1)
			w.Header().Set("WWW-Authenticate", basicRealm)
			http.Error(w, "authentication required: a client certificate of the deployment CA, or the API's username and password (api.auth)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *apiGuard) allowed(r *http.Request) bool {
	if len(g.allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range g.allow {
		if p.Contains(addr) {
			return true
		}
	}
	if g.members != nil {
		for _, m := range g.members() {
			if m == addr {
				return true
			}
		}
	}
	return false
}

func (g *apiGuard) authenticated(r *http.Request) bool {
	// VerifiedChains is set only for a certificate the handshake verified against the CA (the
	// server asks for one with tls.VerifyClientCertIfGiven, and refuses one it cannot verify).
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if g.password == "" {
		return false
	}
	user, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	// Compared as digests, so neither the time taken nor a length difference tells how much
	// of a guess was right.
	wantU, wantP := sha256.Sum256([]byte(g.user)), sha256.Sum256([]byte(g.password))
	gotU, gotP := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pw))
	return subtle.ConstantTimeCompare(wantU[:], gotU[:])&subtle.ConstantTimeCompare(wantP[:], gotP[:]) == 1
}

// sign adds api.auth's credentials to the agent's own mutating requests to other members (the
// members of a cluster share them, as Patroni's do): what a plain-text lab with api.auth
// authenticates by; over TLS the node certificate already does.
func (g *apiGuard) sign(req *http.Request) {
	if g.password != "" && mutating(req) {
		req.SetBasicAuth(g.user, g.password)
	}
}

// readAPIPassword reads api.auth's password file: readable by its owner only (it is a
// credential), one line, not empty.
func readAPIPassword(path string) (string, error) {
	if path == "" {
		return "", errors.New("is required: the file holding the API's password (mode 0600, e.g. /etc/pigwf/api-password)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w (create it with the password, mode 0600, owned by the agent's user)", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s is mode %#o, readable by others: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(b), "\r\n")
	switch {
	case pw == "":
		return "", fmt.Errorf("%s is empty: write the password in it", path)
	case strings.ContainsAny(pw, "\r\n"):
		return "", fmt.Errorf("%s holds more than one line: write the password alone", path)
	}
	return pw, nil
}

// parseAllowlist reads api.allowlist: addresses or CIDR blocks; errors name the entry.
func parseAllowlist(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("api.allowlist[%d]: %q is not an IP address or CIDR block (e.g. 10.213.0.0/24)", i, e))
		}
	}
	return out, errors.Join(errs...)
}

// memberAddrs are the IP addresses in the API URLs of the cluster's members as the last cycle
// saw them (a member whose URL names a host name is not resolved: list its address in the
// allowlist).
func (a *Agent) memberAddrs() []netip.Addr {
	s := a.snapshot()
	out := make([]netip.Addr, 0, len(s.view.Members))
	for _, m := range s.view.Members {
		u, err := url.Parse(m.APIURL)
		if err != nil {
			continue
		}
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
			out = append(out, addr.Unmap())
		}
	}
	return out
}
