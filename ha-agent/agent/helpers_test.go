package agent

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pigwf/pigwf/internal/etcdtest"
	"github.com/pigwf/pigwf/internal/pkitest"
	"github.com/pigwf/pigwf/pki"
)

// TestMain lets the test binary double as the pg-ha-agent binary: the
// integration test runs copies of it as the postgres OS user with
// PIGWF_AGENT_MAIN=1 (no nested go build, and the binary under test is
// exactly this package's code).
func TestMain(m *testing.M) {
	if os.Getenv("PIGWF_AGENT_MAIN") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

func newEtcdClient(t *testing.T, url string) *clientv3.Client { return etcdtest.Client(t, url) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// skipOrFail skips, unless PIGWF_REQUIRE_INTEGRATION=1 demands the test run.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PIGWF_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("PIGWF_REQUIRE_INTEGRATION=1 but %s", why)
	}
	t.Skip(why)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if detail != "" {
			last = detail
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// etcdProxy forwards one agent's etcd connections; cut() blackholes them
// (data is dropped, connections stay open, so requests time out as in a
// real partition), heal() closes the blackholed connections so the
// client reconnects.
type etcdProxy struct {
	l      net.Listener
	target string
	cutOn  atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *etcdProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &etcdProxy{l: l, target: target}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close(); p.closeAll() })
	return p
}

func (p *etcdProxy) url() string { return "http://" + p.l.Addr().String() }

func (p *etcdProxy) serve(c net.Conn) {
	if p.cutOn.Load() {
		_, _ = io.Copy(io.Discard, c) // blackhole
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.cutOn.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	go pipe(up, c)
	pipe(c, up)
}

func (p *etcdProxy) cut() { p.cutOn.Store(true) }

func (p *etcdProxy) heal() {
	p.cutOn.Store(false)
	p.closeAll()
}

func (p *etcdProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// testPKI is a deployment CA in a temporary directory and the files the tests present: a node
// certificate for 127.0.0.1 (server and client, as NodeInit issues one), the CLI's client
// certificate of the CA, and a client certificate of another CA.
type testPKI struct {
	node, client, foreign pki.Files
	// lb trusts the CA and presents no certificate: a load balancer's health checks.
	lb pki.Files
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	ca, other := pkitest.CA(t), pkitest.CA(t)
	now := time.Now()
	client, _, err := ca.EnsureClient(pki.CLIClient, now)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := other.EnsureClient(pki.CLIClient, now)
	if err != nil {
		t.Fatal(err)
	}
	node := pkitest.Node(t, ca, "n1")
	// The foreign certificate is presented to a server of ca: the client trusts ca.
	foreign.CA = ca.Files().CA
	return testPKI{node: node, client: client, foreign: foreign, lb: ca.Files()}
}

// httpClient is a client presenting f (see testPKI).
func httpClient(t testing.TB, f pki.Files) *http.Client {
	t.Helper()
	tr, err := f.HTTPTransport()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}
