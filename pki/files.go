package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/internal/atomicfile"
)

// Where nodes keep their TLS files. The CA certificate is also NodeInit's "managed by pigwf"
// marker. The node certificate serves etcd clients, the agent's API and PostgreSQL, and is the
// agent's client certificate; its key is root:postgres 0640, which PostgreSQL accepts for a
// root-owned key and the agent (running as postgres) can read.
const (
	NodeCAPath   = "/etc/pki/ca.crt"
	NodeCertDir  = "/etc/pki/pigwf"
	NodeCertPath = NodeCertDir + "/node.crt"
	NodeKeyPath  = NodeCertDir + "/node.key"
)

// NodeFiles are a node's TLS files.
func NodeFiles() Files { return Files{CA: NodeCAPath, Cert: NodeCertPath, Key: NodeKeyPath} }

// NodeRequest is the certificate a node gets: its nodename and address (what other members and
// clients dial), and localhost for local callers.
func NodeRequest(nodename, addr string) Request {
	return Request{CommonName: nodename, IPs: []string{addr, "127.0.0.1"}, DNS: []string{nodename, "localhost"}, Usage: ServerAndClient}
}

// ClientRequest is a control-side client certificate: the worker, the CLI, a bridge.
func ClientRequest(name string) Request { return Request{CommonName: name, Usage: Client} }

// Control-side client identities.
const (
	WorkerClient = "pigwf-worker"
	CLIClient    = "pigwf-cli"
)

// HomeDir is the deployment CA's directory below a pigwf home ($PIGWF_HOME/ca): where the
// worker, the CLI, `pigwf dev` and `pigwf lab up` all look by default.
func HomeDir(home string) string { return filepath.Join(home, "ca") }

// ClientDir is where the CA's own host keeps the client certificates it issued itself.
func (s CA) ClientDir() string { return filepath.Join(s.Dir, "clients") }

// EnsureClient issues (or renews, by Check) the client certificate name in ClientDir and returns
// its files; changed says whether it wrote them.
func (s CA) EnsureClient(name string, now time.Time) (Files, bool, error) {
	files := s.ClientFiles(name)
	changed, err := s.EnsurePair(ClientRequest(name), files.Cert, files.Key, now)
	return files, changed, err
}

// ClientFiles are where EnsureClient keeps the client certificate name (whether issued yet or not).
func (s CA) ClientFiles(name string) Files {
	dir := s.ClientDir()
	return Files{CA: s.certPath(), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// EnsurePair writes a certificate for r and its key at certPath and keyPath (key 0600) unless
// the certificate there passes Check. Key first, then certificate, each atomically: a reader
// never sees a certificate without its key.
func (s CA) EnsurePair(r Request, certPath, keyPath string, now time.Time) (bool, error) {
	// Writers (the worker's concurrent activities, the CLI beside it) take turns: two issuing at
	// once could leave one's key beside the other's certificate.
	if err := os.MkdirAll(filepath.Dir(certPath), 0o755); err != nil {
		return false, fmt.Errorf("while creating %s: %w", filepath.Dir(certPath), err)
	}
	lock, err := os.OpenFile(certPath+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("while locking %s: %w", lock.Name(), err)
	}
	cur, err := os.ReadFile(certPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err == nil {
		if _, kerr := os.Stat(keyPath); kerr == nil && s.Check(cur, r, now).Valid {
			return false, nil
		}
	}
	p, err := s.Issue(r)
	if err != nil {
		return false, err
	}
	for _, d := range []string{filepath.Dir(certPath), filepath.Dir(keyPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return false, fmt.Errorf("while creating %s: %w", d, err)
		}
	}
	if err := atomicfile.Replace(keyPath, p.Key, 0o600); err != nil {
		return false, err
	}
	if err := atomicfile.Replace(certPath, p.Cert, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// Files of the CA certificate alone: what a client that presents no certificate trusts.
func (s CA) Files() Files { return Files{CA: s.certPath()} }
