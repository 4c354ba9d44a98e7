// Package devtls is where pigwf's own Temporal deployment keeps its TLS files: the deployment CA
// in $PIGWF_HOME/ca (the one NodeInit installs on the nodes) and, in $PIGWF_HOME/tls, the
// frontend's server certificate and one client certificate per kind of client. `pigwf dev`
// issues them (Ensure) and serves with mTLS; the CLI, the worker and the ChatOps bridge use their
// client files by default (ClientFiles), so that the dev set-up is mutually authenticated with no
// flag at all.
package devtls

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Role is a kind of client of the frontend; each has its own certificate (its common name says
// who is calling, in the server's logs and, later, for authorization).
type Role string

const (
	RoleCLI     Role = "cli"     // pigwf's commands
	RoleWorker  Role = "worker"  // pigwf worker
	RoleChatops Role = "chatops" // the ChatOps bridge
	// RoleInternal is the dev server's own clients of its frontend: the system workers, the
	// readiness probe and the Web UI.
	RoleInternal Role = "temporal-internal"
)

// Roles are all the client roles Ensure issues a certificate for.
var Roles = []Role{RoleCLI, RoleWorker, RoleChatops, RoleInternal}

// CommonName is the certificate's subject common name for a role.
func (r Role) CommonName() string { return "pigwf-" + string(r) }

// Pair is a certificate and its private key (PEM files; the key mode 0600).
type Pair struct{ Cert, Key string }

// Layout is the files under one PIGWF_HOME.
type Layout struct{ Home string }

// CADir is the deployment CA's directory.
func (l Layout) CADir() string { return filepath.Join(l.Home, "ca") }

// CACert is the deployment CA's certificate: what clients verify the frontend with, and what the
// frontend verifies client certificates with.
func (l Layout) CACert() string { return filepath.Join(l.CADir(), "ca.crt") }

// Dir holds the issued certificates.
func (l Layout) Dir() string { return filepath.Join(l.Home, "tls") }

// Server is the frontend's server certificate.
func (l Layout) Server() Pair { return l.pair("frontend") }

// Client is a role's client certificate.
func (l Layout) Client(r Role) Pair { return l.pair(string(r)) }

func (l Layout) pair(name string) Pair {
	return Pair{Cert: filepath.Join(l.Dir(), name+".crt"), Key: filepath.Join(l.Dir(), name+".key")}
}

// ClientFiles are a role's client certificate, key and the CA when all three exist; ok is false
// when none does. Some but not all of them is an error naming the missing file, so a broken set-up
// is not silently taken for plaintext.
func (l Layout) ClientFiles(r Role) (p Pair, ca string, ok bool, err error) {
	p, ca = l.Client(r), l.CACert()
	exists := map[string]bool{}
	var missing []string
	for _, f := range []string{p.Cert, p.Key, ca} {
		switch _, err := os.Stat(f); {
		case err == nil:
			exists[f] = true
		case errors.Is(err, os.ErrNotExist):
			missing = append(missing, f)
		default:
			return Pair{}, "", false, fmt.Errorf("pigwf's TLS client files: %w", err)
		}
	}
	switch {
	case !exists[p.Cert] && !exists[p.Key]:
		// Never issued here (the CA alone may exist: NodeInit creates it).
		return Pair{}, "", false, nil
	case len(missing) > 0:
		return Pair{}, "", false, fmt.Errorf("pigwf's TLS client files for %s are incomplete: %v missing (run `pigwf dev` once to issue them, or give --tls-cert-path, --tls-key-path and --tls-ca-path)", r, missing)
	}
	return p, ca, true, nil
}
