package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/inventory"
)

// The lab's etcd: one member per node on nodes 1..Etcd, started by the
// node's boot service /etc/pigwf/boot.d/10-etcd, which restarts it 0.5 s
// after it exits (systemd's Restart=always). A node crash takes the member
// with it; the node's next start brings it back with its data dir.
const (
	etcdClientPort = 2379
	etcdPeerPort   = 2380
	etcdBootScript = bootDir + "/10-etcd"
	etcdLogPath    = "/var/log/pigwf/etcd.log"
	etcdDataDir    = "/var/lib/etcd/data" // below the node-private /var/lib/etcd
	// lab-notes: with these a 1 s lease TTL is honoured (2 s at etcd's defaults)
	etcdHeartbeatMS = 20
	etcdElectionMS  = 100
	// etcdReadyTimeout bounds Up's wait for a healthy cluster: ~0.1 s after
	// the nodes' sshd, sometimes ~2 s at a lab's first start (etcd 3.4 asks
	// its peers whether it was bootstrapped, 1 s per peer that listens but
	// does not answer yet because it is asking too).
	etcdReadyTimeout = 30 * time.Second
	// etcdListenTimeout bounds StartNode's wait for the member's client port.
	etcdListenTimeout = 10 * time.Second
)

// etcdTools are what the members' boot script runs. setpriv is set when the
// etcd account exists: members then run as etcd, as the Debian unit does.
type etcdTools struct {
	etcd, setpriv string
}

// findEtcdTools resolves the etcd binary (etcd-server) and, when the etcd
// account exists, setpriv (util-linux).
func findEtcdTools() (etcdTools, error) {
	executable := func(path, pkg string) (string, error) {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("lab: missing %s: run `make deps` (apt-get install %s), or use Config.Etcd = NoEtcd", path, pkg)
		}
		return path, nil
	}
	var et etcdTools
	var err error
	if et.etcd, err = executable("/usr/bin/etcd", "etcd-server"); err != nil {
		return etcdTools{}, err
	}
	if _, err := user.Lookup("etcd"); err != nil {
		return et, nil // no etcd account: members run as root
	}
	if et.setpriv, err = executable("/usr/bin/setpriv", "util-linux"); err != nil {
		return etcdTools{}, err
	}
	return et, nil
}

func etcdMemberName(i int) string { return "etcd-" + strconv.Itoa(i) }

// etcdScheme: members serve clients and peers over TLS from the lab's CA, with client
// certificates required, unless the lab is a plain-text one.
func etcdScheme(st *labState) string { return inventory.EtcdScheme(st.Plaintext) }

func etcdClientURL(st *labState, addr string) string {
	return etcdScheme(st) + "://" + addr + ":" + strconv.Itoa(etcdClientPort)
}

func etcdPeerURL(st *labState, addr string) string {
	return etcdScheme(st) + "://" + addr + ":" + strconv.Itoa(etcdPeerPort)
}

// etcdEndpoints are the members' client URLs, member 1 first.
func etcdEndpoints(st *labState) []string {
	var eps []string
	for i := 0; i < st.Etcd && i < len(st.Nodes); i++ {
		eps = append(eps, etcdClientURL(st, st.Nodes[i].Addr))
	}
	return eps
}

// etcdTokenArg is the member's --initial-cluster-token argument: the lab
// name, which also finds the lab's members among the machine's processes.
func etcdTokenArg(labName string) string { return "--initial-cluster-token=" + labName }

// etcdScript is node i's boot script (i in 1..st.Etcd).
func etcdScript(st *labState, i int, et etcdTools) string {
	n := st.Nodes[i-1]
	var cluster []string
	for m := 1; m <= st.Etcd; m++ {
		cluster = append(cluster, etcdMemberName(m)+"="+etcdPeerURL(st, st.Nodes[m-1].Addr))
	}
	args := []string{
		"--name=" + etcdMemberName(i),
		"--data-dir=" + etcdDataDir,
		"--listen-client-urls=" + etcdClientURL(st, n.Addr) + "," + etcdClientURL(st, "127.0.0.1"),
		"--advertise-client-urls=" + etcdClientURL(st, n.Addr),
		"--listen-peer-urls=" + etcdPeerURL(st, n.Addr),
		"--initial-advertise-peer-urls=" + etcdPeerURL(st, n.Addr),
		"--initial-cluster=" + strings.Join(cluster, ","),
		"--initial-cluster-state=new",
		etcdTokenArg(st.Name),
		"--heartbeat-interval=" + strconv.Itoa(etcdHeartbeatMS),
		"--election-timeout=" + strconv.Itoa(etcdElectionMS),
		// etcd 3.4 defaults to false: a member that rejoins (its node came
		// back) then calls an election with a higher term, and the ~100 ms
		// without an etcd leader stalls every agent's renewal and can fence
		// a healthy primary. Pre-vote makes it ask first; the others refuse
		// while they hear from a live leader.
		"--pre-vote=true",
		"--logger=zap", "--log-outputs=stderr",
	}
	if !st.Plaintext {
		// clients and peers: TLS with the member's certificate, and a certificate of the
		// lab's CA required of every client and peer (Pigsty runs etcd the same way)
		args = append(args,
			"--cert-file="+etcdTLSDir+"/server.crt", "--key-file="+etcdTLSDir+"/server.key",
			"--client-cert-auth", "--trusted-ca-file="+etcdTLSDir+"/ca.crt",
			"--peer-cert-file="+etcdTLSDir+"/server.crt", "--peer-key-file="+etcdTLSDir+"/server.key",
			"--peer-client-cert-auth", "--peer-trusted-ca-file="+etcdTLSDir+"/ca.crt")
	}
	run := et.etcd
	if et.setpriv != "" {
		run = et.setpriv + " --reuid=etcd --regid=etcd --init-groups -- " + et.etcd
	}
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# pigwf lab %[1]s: etcd member %[2]s on node %[3]s, written by `+"`pigwf lab up`"+`.
# A boot service: the node's init starts it at every node start. Like systemd's
# Restart=always, etcd starts again 0.5 s after it exits, so a killed member
# comes back by itself. The member keeps its data dir across restarts; the
# --initial-cluster* flags only matter at its very first start.
while :; do
	echo "$(date '+%%F %%T.%%N') pigwf lab: starting %[2]s" >>%[4]s
	%[5]s \
		%[6]s \
		>>%[4]s 2>&1
	echo "$(date '+%%F %%T.%%N') pigwf lab: %[2]s exited with status $?" >>%[4]s
	sleep 0.5
done
`, st.Name, etcdMemberName(i), n.Name, etcdLogPath, run, strings.Join(args, " \\\n\t\t"))
	return b.String()
}

// etcdMemberHealthy does what `etcdctl endpoint health` does: a
// linearizable read through that one member, which needs the member up,
// a leader, and the member caught up with it (ReadIndex).
func etcdMemberHealthy(ctx context.Context, st *labState, endpoint string) error {
	files, err := labClientTLS(st)
	if err != nil {
		return err
	}
	// a fresh client per try: a long-lived one would back off its reconnects
	// (gRPC waits a second and more) after a failed dial
	cli, err := dcs.Connect(dcs.ClientOptions{Endpoints: []string{endpoint}, TLS: files, Plaintext: st.Plaintext})
	if err != nil {
		return fmt.Errorf("while connecting to etcd at %s: %w", endpoint, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := cli.Get(ctx, "health"); err != nil {
		return fmt.Errorf("etcd at %s: %w", endpoint, err)
	}
	return nil
}

// waitEtcdHealthy waits until every member of the lab's etcd is healthy.
func waitEtcdHealthy(ctx context.Context, l layout, st *labState) error {
	// a client that dials a port nobody listens on yet backs off for ~1 s:
	// first wait, cheaply, until each member listens
	for _, n := range st.Nodes[:st.Etcd] {
		if err := waitEtcdListening(ctx, l, n); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(etcdReadyTimeout)
	healthy := make([]bool, st.Etcd)
	lastErr := make([]error, st.Etcd)
	for {
		done := true
		for m := range st.Etcd {
			if healthy[m] {
				continue
			}
			lastErr[m] = etcdMemberHealthy(ctx, st, etcdClientURL(st, st.Nodes[m].Addr))
			healthy[m] = lastErr[m] == nil
			done = done && healthy[m]
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			var errs []error
			for m := range st.Etcd {
				if !healthy[m] {
					errs = append(errs, fmt.Errorf("%s on %s: %w: %s", etcdMemberName(m+1), st.Nodes[m].Name, lastErr[m], logTail(l.etcdLog(st.Nodes[m].Name))))
				}
			}
			return fmt.Errorf("while waiting for the etcd of lab %s: not healthy after %s: %w", st.Name, etcdReadyTimeout, errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting for the etcd of lab %s: %w", st.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitEtcdListening waits until node n's member listens on its client
// port. It needs no quorum (a node may restart while the others are dead)
// and no link (it reads the node's /proc/net/tcp): the member is started,
// not necessarily caught up.
func waitEtcdListening(ctx context.Context, l layout, n nodeState) error {
	init := procRef{n.PID, n.PIDStart}
	deadline := time.Now().Add(etcdListenTimeout)
	for {
		if ok, _ := listeningOn(n.PID, n.Addr, etcdClientPort); ok {
			return nil
		}
		if !init.alive() {
			return fmt.Errorf("while starting the etcd member of node %s: the node's init (pid %d) exited", n.Name, n.PID)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("while starting the etcd member of node %s: not listening on %s:%d after %s: %s",
				n.Name, n.Addr, etcdClientPort, etcdListenTimeout, logTail(l.etcdLog(n.Name)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while starting the etcd member of node %s: %w", n.Name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// samePIDNamespace says whether two processes share a PID namespace.
func samePIDNamespace(a, b int) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat("/proc/"+strconv.Itoa(a)+"/ns/pid", &sa) != nil || syscall.Stat("/proc/"+strconv.Itoa(b)+"/ns/pid", &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// findEtcd returns the running etcd member of node n: an etcd process of the
// lab (by its cluster token) in the node's PID namespace.
func findEtcd(labName string, n nodeState) (procRef, error) {
	init := procRef{n.PID, n.PIDStart}
	if !init.alive() {
		return procRef{}, fmt.Errorf("lab %s: node %s is not running", labName, n.Name)
	}
	for _, p := range etcdProcsOfLab(labName) {
		if p.alive() && samePIDNamespace(p.pid, n.PID) {
			return p, nil
		}
	}
	return procRef{}, fmt.Errorf("lab %s: the etcd member of node %s is not running (its boot loop restarts it 0.5 s after it exits)", labName, n.Name)
}

// etcdNode returns the state and node i if node i has an etcd member.
func (s *Status) etcdNode(i int) (*labState, *nodeState, error) {
	st, n, err := s.node(i)
	if err != nil {
		return nil, nil, err
	}
	if i > st.Etcd {
		if st.Etcd == 0 {
			return nil, nil, fmt.Errorf("lab %s has no etcd", s.Name)
		}
		return nil, nil, fmt.Errorf("lab %s: node %s has no etcd member (members are on nodes 1..%d)", s.Name, n.Name, st.Etcd)
	}
	return st, n, nil
}

// EtcdPID returns the host PID of node i's (1-based) etcd process.
func (s *Status) EtcdPID(i int) (int, error) {
	st, n, err := s.etcdNode(i)
	if err != nil {
		return 0, err
	}
	p, err := findEtcd(st.Name, *n)
	if err != nil {
		return 0, err
	}
	return p.pid, nil
}

// KillEtcd kills only the etcd process of node i (1-based) with SIGKILL
// and returns once it is gone; the node's boot loop starts it again 0.5 s
// later, with its data. It fails if the member is not running (between a
// kill and its restart, or on a dead node).
func (s *Status) KillEtcd(i int) error {
	st, n, err := s.etcdNode(i)
	if err != nil {
		return err
	}
	p, err := findEtcd(st.Name, *n)
	if err != nil {
		return err
	}
	if err := p.kill(); err != nil {
		return fmt.Errorf("while killing the etcd member of node %s: %w", n.Name, err)
	}
	// its parent, the boot loop, reaps it at once
	if err := waitGone(context.Background(), []procRef{p}, 5*time.Second, foreignZombieGrace); err != nil {
		return fmt.Errorf("while killing the etcd member of node %s: %w", n.Name, err)
	}
	return nil
}

// etcdProcsOfLab lists the lab's etcd processes anywhere on the machine
// (the token argument ends with a NUL in the command line: "pwlab" must not
// match "pwlab2").
func etcdProcsOfLab(labName string) []procRef {
	return procsMentioning([]string{"etcd"}, []string{etcdTokenArg(labName) + "\x00"})
}
