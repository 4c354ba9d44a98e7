package chaos

// What the suite reads from a lab besides PostgreSQL: its etcd, the nodes' files and logs.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// etcdConfig is the lab's etcd client configuration (dcs.ClientConfig: TLS with the lab's client
// certificate, or http in a plain-text lab) whose connections go through the lab's bridge.
func etcdConfig(st *lab.Status, endpoints []string) (clientv3.Config, error) {
	files, err := st.ClientTLS()
	if err != nil {
		return clientv3.Config{}, err
	}
	cfg, err := dcs.ClientConfig(dcs.ClientOptions{Endpoints: endpoints, TLS: files, Plaintext: st.Plaintext, DialTimeout: 2 * time.Second})
	if err != nil {
		return clientv3.Config{}, fmt.Errorf("the lab's etcd: %w", err)
	}
	d := labDialer(st.Bridge)
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}))
	return cfg, nil
}

// etcdLeader returns the lab node (1-based) whose etcd member leads the etcd cluster.
func etcdLeader(ctx context.Context, st *lab.Status) (int, error) {
	var errs []error
	for i, ep := range st.Etcd {
		cfg, err := etcdConfig(st, []string{ep})
		if err != nil {
			return 0, err
		}
		cli, err := clientv3.New(cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := cli.Status(sctx, ep)
		cancel()
		cli.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("etcd %s: %w", ep, err))
			continue
		}
		if resp.Header.MemberId == resp.Leader {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("no etcd member says it leads: %w", errors.Join(errs...))
}

// TailFile returns the last lines of a file, for diagnostics, without the PostgreSQL log lines
// the suite's own writes cause (every probe write on a standby logs an ERROR and its statement).
func TailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var all []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.Contains(l, "chaos_probe") || strings.Contains(l, "chaos_ack") || strings.Contains(l, "read-only transaction") ||
			strings.Contains(l, "INFO: no action. I am") || strings.Contains(l, "INFO: Lock owner: ") { // Patroni's every-loop lines
			continue
		}
		all = append(all, l)
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// labFacts says whether the lab itself is intact (nodes running, links up, bridge and routes
// present), so that a failed trial is not blamed on the HA system when the lab broke.
func labFacts(st *lab.Status) string {
	var b strings.Builder
	cur, err := lab.Load(lab.Config{Name: st.Name, Dir: st.Dir})
	if err != nil {
		fmt.Fprintf(&b, "--- lab %s: %v\n", st.Name, err)
		return b.String()
	}
	fmt.Fprintf(&b, "--- lab %s:", st.Name)
	if _, err := net.InterfaceByName(cur.Bridge); err != nil {
		fmt.Fprintf(&b, " bridge %s MISSING (%v);", cur.Bridge, err)
	}
	for _, n := range cur.Nodes {
		route, _ := exec.Command("ip", "-o", "route", "get", n.Addr).CombinedOutput()
		fmt.Fprintf(&b, " %s running=%v link_up=%v route=%q;", n.Name, n.Running, n.LinkUp, strings.TrimSpace(string(route)))
	}
	b.WriteString("\n")
	return b.String()
}

// grepTail returns the last lines of a file that contain any of the needles.
func grepTail(path string, lines int, needles ...string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var hits []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, n := range needles {
			if strings.Contains(l, n) {
				if len(l) > 300 {
					l = l[:300] + "…"
				}
				hits = append(hits, l)
				break
			}
		}
	}
	if len(hits) > lines {
		hits = hits[len(hits)-lines:]
	}
	return strings.Join(hits, "\n")
}

// nodeFile is where node i's private file path lives on the host (the lab's layout:
// Dir/nodes/nI/fs/<path>); it stays readable while the node is dead.
func nodeFile(st *lab.Status, i int, path string) string {
	return filepath.Join(st.Dir, "nodes", st.Nodes[i-1].Name, "fs", path)
}
