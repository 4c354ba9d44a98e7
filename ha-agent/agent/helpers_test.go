package agent

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
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

// startEtcd runs a single-member etcd on loopback with the lab's
// timeouts and returns its client URL; skipped when no etcd binary exists
// (failed when PIGWF_REQUIRE_INTEGRATION=1).
func startEtcd(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("etcd"); err != nil {
			skipOrFail(t, "no etcd binary (install etcd-server or set ETCD_BIN)")
		}
	}
	clientURL := "http://" + freeAddr(t)
	peerURL := "http://" + freeAddr(t)
	// etcd's data on tmpfs when there is one: this machine's disk stalls
	// fsync for up to a second now and then, which (correctly) fences the
	// primary; production etcd wants a fast disk anyway.
	dir := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if shm, err := os.MkdirTemp("/dev/shm", "pigwf-etcd-"); err == nil {
			dir = shm
			t.Cleanup(func() { os.RemoveAll(shm) })
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatalf("create etcd log: %v", err)
	}
	cmd := exec.Command(bin,
		"--name", "t1",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t1="+peerURL,
		"--election-timeout=100", "--heartbeat-interval=20", "--pre-vote=true",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	cli := newEtcdClient(t, clientURL)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Put(ctx, "/ready", "1")
		cancel()
		if err == nil {
			return clientURL
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s not ready after 15s: %v", clientURL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newEtcdClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client for %s: %v", url, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
