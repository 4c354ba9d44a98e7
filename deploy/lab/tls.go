package lab

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pigwf/pigwf/pki"
)

// The lab's TLS: the lab plays the part of Pigsty's infrastructure, which runs etcd with TLS
// and client certificates from the deployment's CA before any PostgreSQL node is initialised.
// The lab's CA is that CA (Config.CADir: `pigwf lab up` uses the worker's, $PIGWF_HOME/ca), so
// NodeInit later finds the same CA and the certificates it issues to nodes are trusted by etcd.

// etcdTLSDir is where a member keeps its certificate, key and the CA, below its node-private
// /var/lib/etcd (owned by etcd, mode 0700).
const etcdTLSDir = "/var/lib/etcd/tls"

// labClientTLS is a client certificate of the lab's CA on the lab's host: for the lab's own
// health checks, tests and the chaos harness (the CLI's identity, pki.CLIClient).
func labClientTLS(st *labState) (pki.Files, error) {
	if st.Plaintext {
		return pki.Files{}, nil
	}
	files, _, err := pki.CA{Dir: st.CADir}.EnsureClient(pki.CLIClient, time.Now())
	if err != nil {
		return pki.Files{}, fmt.Errorf("lab %s: a client certificate from the CA in %s: %w", st.Name, st.CADir, err)
	}
	return files, nil
}

// ClientTLS is a client certificate of the lab's CA (zero Files for a plain-text lab): what
// tests and the chaos harness present to etcd and to the agents' API.
func (s *Status) ClientTLS() (pki.Files, error) {
	st, err := readState(s.Dir)
	if err != nil {
		return pki.Files{}, err
	}
	return labClientTLS(st)
}

// ensureEtcdCerts gives each etcd member a certificate of the lab's CA (its node's address,
// 127.0.0.1 and names; server and client usage, for clients and peers), the key and a copy of
// the CA certificate in etcdTLSDir, readable by the etcd account. Idempotent: a valid
// certificate (pki's Check) is kept; one close to expiry is renewed by the next `lab up`.
func ensureEtcdCerts(l layout, st *labState) error {
	// The CA directory exists in every lab, plain text too: the worker shares it (NodeInit
	// creates the CA there when the lab did not).
	if err := os.MkdirAll(st.CADir, 0o700); err != nil {
		return fmt.Errorf("lab %s: the CA directory: %w", st.Name, err)
	}
	if st.Plaintext || st.Etcd == 0 {
		return nil
	}
	ca := pki.CA{Dir: st.CADir}
	if _, err := ca.Ensure(); err != nil {
		return fmt.Errorf("lab %s: the CA in %s: %w", st.Name, st.CADir, err)
	}
	caPEM, _, err := ca.CertPEM()
	if err != nil {
		return err
	}
	uid, gid := -1, -1
	if u, err := user.Lookup("etcd"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, n := range st.Nodes[:st.Etcd] {
		dir := l.nodeFS(n.Name, etcdTLSDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("while creating %s: %w", dir, err)
		}
		r := pki.NodeRequest(n.Name, n.Addr)
		r.CommonName = etcdMemberName(memberIndex(st, n.Name))
		cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		if _, err := ca.EnsurePair(r, cert, key, time.Now()); err != nil {
			return fmt.Errorf("lab %s: the certificate of %s: %w", st.Name, r.CommonName, err)
		}
		if err := writeFileAtomic(filepath.Join(dir, "ca.crt"), caPEM, 0o644); err != nil {
			return err
		}
		if uid >= 0 {
			for _, p := range []string{filepath.Dir(dir), dir, cert, key, cert + ".lock", filepath.Join(dir, "ca.crt")} {
				if err := os.Chown(p, uid, gid); err != nil {
					return fmt.Errorf("while handing %s to etcd: %w", p, err)
				}
			}
		}
	}
	return nil
}

// memberIndex is node name's 1-based position.
func memberIndex(st *labState, name string) int {
	for i, n := range st.Nodes {
		if n.Name == name {
			return i + 1
		}
	}
	return 0
}
