// Package devtls is the mutual TLS of pigwf's own Temporal dev server, from the deployment CA in
// $PIGWF_HOME/ca (pki.CA, the one NodeInit installs on the nodes). `pigwf dev` issues (Ensure)
// the frontend's server certificate in $PIGWF_HOME/tls and a client certificate per kind of
// client in the CA's client directory, and serves with mTLS. The frontend certificate is the sign
// that this home's Temporal is mutually authenticated: when it exists, the CLI, the worker and the
// ChatOps bridge use their client files by default (Defaults), so the dev set-up needs no flag.
package devtls

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pigwf/pigwf/pki"
)

// Role is a kind of client of the frontend, named as its certificate's common name: each has its
// own, so the server's logs (and, later, its authorization) tell the callers apart. The worker's
// and the CLI's are the ones pki issues for etcd too.
type Role string

const (
	RoleCLI     Role = pki.CLIClient    // pigwf's commands
	RoleWorker  Role = pki.WorkerClient // pigwf worker
	RoleChatops Role = "pigwf-chatops"  // the ChatOps bridge
	// RoleInternal is the dev server's own clients of its frontend: the system workers, the
	// readiness probe and the Web UI.
	RoleInternal Role = "pigwf-temporal-internal"
)

// Roles are the client roles Ensure issues a certificate for.
var Roles = []Role{RoleCLI, RoleWorker, RoleChatops, RoleInternal}

// frontendName is the frontend certificate's common name.
const frontendName = "pigwf-temporal"

// Layout is the files under one PIGWF_HOME.
type Layout struct{ Home string }

// CA is the deployment CA.
func (l Layout) CA() pki.CA { return pki.CA{Dir: pki.HomeDir(l.Home)} }

// Dir holds the frontend's certificate.
func (l Layout) Dir() string { return filepath.Join(l.Home, "tls") }

// Frontend is the frontend's server certificate, its key and the CA clients must chain to.
func (l Layout) Frontend() pki.Files {
	return pki.Files{CA: l.CA().Files().CA, Cert: filepath.Join(l.Dir(), frontendName+".crt"), Key: filepath.Join(l.Dir(), frontendName+".key")}
}

// Client is a role's client certificate, its key and the CA the frontend's certificate chains to.
func (l Layout) Client(r Role) pki.Files { return l.CA().ClientFiles(string(r)) }

// ErrIncomplete says the dev server has mTLS here but a role's client files are missing.
var ErrIncomplete = errors.New("pigwf's TLS client files are incomplete")

// Defaults are the role's client files when `pigwf dev` set up mTLS in this home (ok), or nothing
// when it did not (the frontend certificate is absent: plain text, or a server configured by
// other means). Missing client files with the frontend certificate present are ErrIncomplete,
// so that a broken set-up is not quietly taken for plain text.
func (l Layout) Defaults(r Role) (f pki.Files, ok bool, err error) {
	switch _, err := os.Stat(l.Frontend().Cert); {
	case errors.Is(err, os.ErrNotExist):
		return pki.Files{}, false, nil
	case err != nil:
		return pki.Files{}, false, err
	}
	f = l.Client(r)
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		if _, err := os.Stat(p); err != nil {
			return pki.Files{}, false, fmt.Errorf("%w: %s: %v (`pigwf dev` issues them at its start)", ErrIncomplete, p, err)
		}
	}
	return f, true, nil
}

// FrontendRequest is the frontend's certificate: the addresses clients dial. ip is where the
// server listens; a wildcard adds nothing beyond loopback (clients on other hosts then need the
// certificate issued for the host's address: run `pigwf dev --ip ADDR`).
func FrontendRequest(ip string) pki.Request {
	r := pki.Request{CommonName: frontendName, IPs: []string{"127.0.0.1", "::1"}, DNS: []string{"localhost"}, Usage: pki.Server}
	if p := net.ParseIP(ip); p != nil && !p.IsUnspecified() && !slices.ContainsFunc(r.IPs, func(s string) bool { return net.ParseIP(s).Equal(p) }) {
		r.IPs = append(r.IPs, p.String())
	}
	return r
}

// Ensure creates the CA if needed and issues what the dev server and its clients need; each
// certificate is issued again only when pki's Check refuses it (missing, another CA, a missing
// address, close to expiry), so a rerun changes nothing. It reports the files it wrote.
func Ensure(l Layout, ip string, now time.Time) (changed []string, err error) {
	ca := l.CA()
	info, err := ca.Ensure()
	if err != nil {
		return nil, fmt.Errorf("the deployment CA in %s: %w", ca.Dir, err)
	}
	if info.Created {
		changed = append(changed, ca.Files().CA)
	}
	fe := l.Frontend()
	if err := os.MkdirAll(l.Dir(), 0o700); err != nil {
		return changed, err
	}
	did, err := ca.EnsurePair(FrontendRequest(ip), fe.Cert, fe.Key, now)
	if err != nil {
		return changed, fmt.Errorf("the Temporal frontend's certificate: %w", err)
	}
	if did {
		changed = append(changed, fe.Cert)
	}
	for _, r := range Roles {
		f, did, err := ca.EnsureClient(string(r), now)
		if err != nil {
			return changed, fmt.Errorf("the client certificate of %s: %w", r, err)
		}
		if did {
			changed = append(changed, f.Cert)
		}
	}
	return changed, nil
}
