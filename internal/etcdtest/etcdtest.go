// Package etcdtest runs a real single-member etcd for tests of the HA
// agent and its DCS store.
package etcdtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Start runs a single-member etcd on random loopback ports with the lab's
// timeouts and pre-vote, and returns its client URL. Without an etcd
// binary (ETCD_BIN or etcd on PATH) the test is skipped, or failed when
// PIGWF_REQUIRE_INTEGRATION=1. The log tail is printed if the test fails.
func Start(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("etcd"); err != nil {
			why := "no etcd binary (install etcd-server or set ETCD_BIN)"
			if os.Getenv("PIGWF_REQUIRE_INTEGRATION") == "1" {
				t.Fatalf("PIGWF_REQUIRE_INTEGRATION=1 but %s", why)
			}
			t.Skip(why)
		}
	}
	clientURL := "http://" + FreeAddr(t)
	peerURL := "http://" + FreeAddr(t)
	// Data on tmpfs when there is one: this machine's disk stalls fsync for
	// up to a second now and then, which (correctly) fences a primary in
	// the agent's tests; production etcd wants a fast disk anyway.
	dir := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if shm, err := os.MkdirTemp("/dev/shm", "pigwf-etcd-"); err == nil {
			dir = shm
			t.Cleanup(func() { os.RemoveAll(shm) })
		}
	}
	logPath := filepath.Join(dir, "etcd.log")
	logFile, err := os.Create(logPath)
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
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("etcd log tail:\n%s", b)
			}
		}
	})
	cli := Client(t, clientURL)
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

// Client is an etcd client for url, closed when the test ends.
func Client(t testing.TB, url string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client for %s: %v", url, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// FreeAddr is a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
