package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"gopkg.in/yaml.v3"
)

// The lab tests use their own names and subnets so they never clash with a
// demo lab ("pigwf" on 10.213.0) running on the same machine. testLab has
// no etcd (the lab as it was before etcd); the crashed lab has the default
// (two members on two nodes).
var (
	testLab        = Config{Name: "pwlabt", Subnet: "10.213.9", Nodes: 3, Etcd: NoEtcd}.WithDefaults()
	testCrashedLab = Config{Name: "pwlabc", Subnet: "10.213.8", Nodes: 2}.WithDefaults()
	testEtcdLab    = Config{Name: "pwetcd", Subnet: "10.213.21", Nodes: 3}.WithDefaults()
)

// requireLabHost skips unless this machine can run a lab.
func requireLabHost(t *testing.T) {
	t.Helper()
	if _, err := checkHost(); err != nil {
		t.Skipf("lab tests need root and the lab's binaries: %v", err)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("lab tests need ping (apt-get install iputils-ping)")
	}
}

func TestLab(t *testing.T) {
	requireLabHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// a crashed earlier run may have left this lab behind: Down must clean it
	if err := Down(ctx, testLab); err != nil {
		t.Fatalf("Down before the test: %v", err)
	}
	t.Cleanup(func() { _ = Down(context.Background(), testLab) })

	start := time.Now()
	st, err := Up(ctx, testLab)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("Up of 3 nodes took %s", time.Since(start).Round(time.Millisecond))

	t.Run("status", func(t *testing.T) {
		if len(st.Nodes) != 3 {
			t.Fatalf("got %d nodes, want 3", len(st.Nodes))
		}
		for i, n := range st.Nodes {
			want := Node{Name: nodeName(i + 1), Addr: "10.213.9." + strconv.Itoa(11+i), NetNS: "pwlabt-n" + strconv.Itoa(i+1),
				Veth: "pwlabt-v" + strconv.Itoa(i+1), PID: n.PID, Running: true, LinkUp: true}
			if n != want || n.PID <= 1 {
				t.Errorf("node %d: got %+v, want %+v", i+1, n, want)
			}
		}
		if st.Bridge != "pwlabt-br" || st.Dir != "/var/lib/pigwf-lab/pwlabt" {
			t.Errorf("bridge %q dir %q", st.Bridge, st.Dir)
		}
		if len(st.Etcd) != 0 || st.EtcdReadyIn != 0 || len(etcdProcsOfLab(testLab.Name)) != 0 {
			t.Errorf("a lab without etcd: endpoints %v, ready in %s, processes %v", st.Etcd, st.EtcdReadyIn, etcdProcsOfLab(testLab.Name))
		}
		if err := st.KillEtcd(1); err == nil || !strings.Contains(err.Error(), "has no etcd") {
			t.Errorf("KillEtcd on a lab without etcd: %v", err)
		}
		loaded, err := Load(testLab)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if loaded.Nodes[2] != st.Nodes[2] {
			t.Errorf("Load: got %+v, want %+v", loaded.Nodes[2], st.Nodes[2])
		}
		if fi, err := os.Stat(st.SSHKey); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("ssh key %s: %v %v", st.SSHKey, fi.Mode(), err)
		}
	})

	t.Run("a second lab on the same subnet is refused", func(t *testing.T) {
		clash := Config{Name: "pwlabx", Subnet: testLab.Subnet, Nodes: 1}.WithDefaults()
		if _, err := Up(ctx, clash); err == nil || !strings.Contains(err.Error(), "already used by interface pwlabt-br") {
			t.Errorf("Up on a used subnet: %v", err)
		}
		if _, err := os.Stat(clash.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused lab left %s: %v", clash.Dir, err)
		}
	})

	t.Run("inventory", func(t *testing.T) {
		data, err := os.ReadFile(st.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		var inv struct {
			All struct {
				Children map[string]struct {
					Hosts map[string]struct {
						Seq  int    `yaml:"pg_seq"`
						Role string `yaml:"pg_role"`
					} `yaml:"hosts"`
					Vars map[string]any `yaml:"vars"`
				} `yaml:"children"`
				Vars map[string]any `yaml:"vars"`
			} `yaml:"all"`
		}
		if err := yaml.Unmarshal(data, &inv); err != nil {
			t.Fatalf("inventory is not YAML: %v\n%s", err, data)
		}
		hosts := inv.All.Children["pg-test"].Hosts
		if len(hosts) != 3 || hosts["10.213.9.11"].Role != "primary" || hosts["10.213.9.13"].Seq != 3 || hosts["10.213.9.12"].Role != "replica" {
			t.Errorf("hosts: %+v", hosts)
		}
		if inv.All.Vars["ansible_ssh_private_key_file"] != st.SSHKey || inv.All.Vars["pigwf_known_hosts"] != st.KnownHosts {
			t.Errorf("vars: %+v", inv.All.Vars)
		}
		if _, ok := inv.All.Children["etcd"]; ok || inv.All.Vars["etcd_cluster"] != nil {
			t.Errorf("a lab without etcd has an etcd group or etcd_cluster: %+v", inv.All)
		}
	})

	t.Run("ssh with strict host keys", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			out, err := sshRun(st, i, "hostname; cat /etc/hostname; cat /proc/1/comm")
			if err != nil {
				t.Fatalf("ssh n%d: %v", i, err)
			}
			want := strings.Repeat(nodeName(i)+"\n", 2) + "sshd\n"
			if out != want {
				t.Errorf("n%d: got %q, want %q", i, out, want)
			}
		}
		// n2's host key presented for n1's address must be refused
		lines, err := os.ReadFile(st.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		wrong := strings.Replace(strings.Split(string(lines), "\n")[1], st.Nodes[1].Addr, st.Nodes[0].Addr, 1)
		wrongFile := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(wrongFile, []byte(wrong+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := sshDial(st, 1, wrongFile); err == nil || !strings.Contains(err.Error(), "key mismatch") {
			t.Errorf("dial n1 with n2's host key: got %v, want a key mismatch", err)
		}
	})

	t.Run("private files", func(t *testing.T) {
		if out, err := sshRun(st, 1, "echo hello > /pg/x && cat /pg/x"); err != nil || out != "hello\n" {
			t.Fatalf("write /pg/x on n1: %q %v", out, err)
		}
		if out, err := sshRun(st, 2, "ls -A /pg; test ! -e /pg/x && echo absent"); err != nil || out != "absent\n" {
			t.Errorf("/pg/x on n2: %q %v", out, err)
		}
		if out, err := st.Exec(ctx, 1, "sh", "-c", "hostname; cat /pg/x"); err != nil || string(out) != "n1\nhello\n" {
			t.Errorf("Exec on n1: %q %v", out, err)
		}
		if _, err := os.Stat("/pg/x"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/pg/x on the host: %v", err)
		}
		out, err := sshRun(st, 2, "stat -c '%n %U:%G %a' /pg /etc/pki /var/run/postgresql /var/lib/postgresql /etc/pgbackrest.conf; ls -A /etc/pki; grep -c n2 /etc/hosts")
		want := "/pg root:root 755\n/etc/pki root:root 755\n/var/run/postgresql postgres:postgres 2775\n" +
			"/var/lib/postgresql postgres:postgres 755\n/etc/pgbackrest.conf postgres:postgres 640\n1\n"
		if err != nil || out != want {
			t.Errorf("seeded files on n2: got %q (%v), want %q", out, err, want)
		}
	})

	t.Run("nodes ping each other", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			peer := st.Nodes[i%3].Addr
			if out, err := st.Exec(ctx, i, "ping", "-c1", "-W1", peer); err != nil {
				t.Errorf("n%d ping %s: %v\n%s", i, peer, err, out)
			}
		}
	})

	t.Run("up again is idempotent", func(t *testing.T) {
		start := time.Now()
		again, err := Up(ctx, testLab)
		if err != nil {
			t.Fatalf("Up again: %v", err)
		}
		t.Logf("Up of a running lab took %s", time.Since(start).Round(time.Millisecond))
		for i := range st.Nodes {
			if again.Nodes[i] != st.Nodes[i] {
				t.Errorf("node %d changed: %+v -> %+v", i+1, st.Nodes[i], again.Nodes[i])
			}
		}
	})

	t.Run("kill and start a node", func(t *testing.T) {
		oldPID := st.Nodes[0].PID
		// a daemon started over SSH must die with its node
		if _, err := sshRun(st, 1, "setsid sleep 600 </dev/null >/dev/null 2>&1 &"); err != nil {
			t.Fatalf("start a daemon on n1: %v", err)
		}
		nodeProcs := netnsPIDs(ctx, tools{ip: "ip"}, st.Nodes[0].NetNS)
		if len(nodeProcs) < 3 { // keeper, init, sleep
			t.Errorf("processes in n1's netns: %+v", nodeProcs)
		}
		start := time.Now()
		if err := st.KillNode(1); err != nil {
			t.Fatalf("KillNode: %v", err)
		}
		t.Logf("KillNode took %s", time.Since(start).Round(time.Millisecond))
		if err := waitGone(ctx, nodeProcs, 2*time.Second, 0); err != nil {
			t.Errorf("processes of the killed node: %v", err)
		}
		if st.Nodes[0].Running {
			t.Error("Running after KillNode")
		}
		if _, err := sshRun(st, 1, "true"); err == nil {
			t.Error("ssh to a killed node succeeded")
		}
		start = time.Now()
		if err := st.StartNode(ctx, 1); err != nil {
			t.Fatalf("StartNode: %v", err)
		}
		t.Logf("StartNode took %s", time.Since(start).Round(time.Millisecond))
		if out, err := sshRun(st, 1, "cat /pg/x; hostname"); err != nil || out != "hello\nn1\n" {
			t.Errorf("after restart: %q %v", out, err)
		}
		if st.Nodes[0].PID == oldPID || !st.Nodes[0].Running {
			t.Errorf("after restart: %+v", st.Nodes[0])
		}
	})

	t.Run("up restarts a dead node", func(t *testing.T) {
		before := st.Nodes
		if err := st.KillNode(3); err != nil {
			t.Fatalf("KillNode: %v", err)
		}
		again, err := Up(ctx, testLab)
		if err != nil {
			t.Fatalf("Up: %v", err)
		}
		if again.Nodes[0] != before[0] || again.Nodes[1] != before[1] || again.Nodes[2].PID == before[2].PID || !again.Nodes[2].Running {
			t.Errorf("before %+v after %+v", before, again.Nodes)
		}
		st = again
		if out, err := sshRun(st, 3, "hostname"); err != nil || out != "n3\n" {
			t.Errorf("n3 after Up: %q %v", out, err)
		}
	})

	t.Run("link down isolates a node", func(t *testing.T) {
		addr := net.JoinHostPort(st.Nodes[1].Addr, "22")
		if err := st.SetLink(2, false); err != nil {
			t.Fatalf("SetLink down: %v", err)
		}
		if loaded, err := Load(testLab); err != nil || loaded.Nodes[1].LinkUp {
			t.Errorf("Load after SetLink down: %+v %v", loaded, err)
		}
		conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		var netErr net.Error
		if err == nil {
			conn.Close()
			t.Error("dial to an isolated node succeeded")
		} else if !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Errorf("dial to an isolated node: got %v, want a timeout", err)
		}
		if err := st.SetLink(2, true); err != nil {
			t.Fatalf("SetLink up: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, err := sshRun(st, 2, "hostname")
			if err == nil && out == "n2\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh n2 after SetLink up: %q %v", out, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("grow to 4 nodes", func(t *testing.T) {
		four := testLab
		four.Nodes = 4
		start := time.Now()
		grown, err := Up(ctx, four)
		if err != nil {
			t.Fatalf("Up 4 nodes: %v", err)
		}
		t.Logf("Up from 3 to 4 nodes took %s", time.Since(start).Round(time.Millisecond))
		for i := range 3 {
			if grown.Nodes[i].PID != st.Nodes[i].PID {
				t.Errorf("node %d was restarted", i+1)
			}
		}
		st = grown
		if out, err := sshRun(st, 4, "hostname; ls -A /pg"); err != nil || out != "n4\n" {
			t.Errorf("n4: %q %v", out, err)
		}
		if out, err := st.Exec(ctx, 4, "ping", "-c1", "-W1", st.Nodes[0].Addr); err != nil {
			t.Errorf("n4 ping n1: %v\n%s", err, out)
		}
		if data, err := os.ReadFile(st.Inventory); err != nil || !strings.Contains(string(data), "10.213.9.14: { pg_seq: 4, pg_role: replica }") {
			t.Errorf("inventory of 4 nodes: %v\n%s", err, data)
		}
		three := testLab
		if _, err := Up(ctx, three); err == nil {
			t.Error("Up with fewer nodes than the lab has succeeded")
		}
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		state, err := readState(testLab.Dir)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := Down(ctx, testLab); err != nil {
			t.Fatalf("Down: %v", err)
		}
		t.Logf("Down of 4 nodes took %s", time.Since(start).Round(time.Millisecond))
		checkNothingLeft(t, testLab, state)
		if err := Down(ctx, testLab); err != nil {
			t.Errorf("second Down: %v", err)
		}
		if _, err := Load(testLab); err == nil || !strings.Contains(err.Error(), "is not up") {
			t.Errorf("Load after Down: %v", err)
		}
	})
}

// TestLabEtcd: a lab with etcd on its three nodes, started as a boot
// service; a killed member and a crashed node come back by themselves.
func TestLabEtcd(t *testing.T) {
	requireLabHost(t)
	if _, err := findEtcdTools(); err != nil {
		t.Skipf("etcd tests need etcd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Down(ctx, testEtcdLab); err != nil {
		t.Fatalf("Down before the test: %v", err)
	}
	t.Cleanup(func() { _ = Down(context.Background(), testEtcdLab) })

	start := time.Now()
	st, err := Up(ctx, testEtcdLab)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("Up of 3 nodes with etcd took %s; etcd was healthy %s after the nodes' sshd",
		time.Since(start).Round(time.Millisecond), st.EtcdReadyIn.Round(time.Millisecond))
	endpoints := []string{"https://10.213.21.11:2379", "https://10.213.21.12:2379", "https://10.213.21.13:2379"}
	if testEtcdTLS, err = st.ClientTLS(); err != nil {
		t.Fatal(err)
	}

	// etcd as a user reaches it, with curl: TLS with a client certificate of the lab's CA
	// answers; plain http and TLS without a client certificate are refused.
	t.Run("TLS and client certificates", func(t *testing.T) {
		curl := func(args ...string) (string, error) {
			out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "5"}, args...)...).CombinedOutput()
			return string(out), err
		}
		ep := endpoints[0]
		if out, err := curl("--cacert", testEtcdTLS.CA, "--cert", testEtcdTLS.Cert, "--key", testEtcdTLS.Key, ep+"/version"); err != nil || !strings.Contains(out, "etcdserver") {
			t.Errorf("with a client certificate: %v: %s", err, out)
		}
		if out, err := curl("--cacert", testEtcdTLS.CA, ep+"/version"); err == nil {
			t.Errorf("without a client certificate etcd answered: %s", out)
		}
		if out, err := curl(strings.Replace(ep, "https://", "http://", 1) + "/version"); err == nil && strings.Contains(out, "etcdserver") {
			t.Errorf("plain http answered: %s", out)
		}
		// and the Go client without a certificate cannot read
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
			TLS: mustTLS(t, pki.Files{CA: testEtcdTLS.CA})})
		if err == nil {
			defer cli.Close()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := cli.Get(cctx, "x"); err == nil {
				t.Error("a client without a certificate read from etcd")
			}
		}
		if _, err := dcs.Connect(dcs.ClientOptions{Endpoints: []string{strings.Replace(ep, "https://", "http://", 1)}}); !errors.Is(err, dcs.ErrPlaintextEtcd) {
			t.Errorf("pigwf's etcd client took a plain-text endpoint: %v", err)
		}
	})

	t.Run("status and inventory", func(t *testing.T) {
		if !slices.Equal(st.Etcd, endpoints) || st.EtcdReadyIn <= 0 {
			t.Errorf("endpoints %v ready in %s, want %v", st.Etcd, st.EtcdReadyIn, endpoints)
		}
		loaded, err := Load(testEtcdLab)
		if err != nil || !slices.Equal(loaded.Etcd, endpoints) {
			t.Errorf("Load: %v %v", loaded, err)
		}
		if data, err := json.Marshal(loaded); err != nil || !strings.Contains(string(data), `"etcd":["https://10.213.21.11:2379",`) {
			t.Errorf("status JSON: %s %v", data, err)
		}
		data, err := os.ReadFile(st.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		var inv struct {
			All struct {
				Children map[string]struct {
					Hosts map[string]struct {
						EtcdSeq int `yaml:"etcd_seq"`
					} `yaml:"hosts"`
					Vars map[string]any `yaml:"vars"`
				} `yaml:"children"`
				Vars map[string]any `yaml:"vars"`
			} `yaml:"all"`
		}
		if err := yaml.Unmarshal(data, &inv); err != nil {
			t.Fatalf("inventory is not YAML: %v\n%s", err, data)
		}
		etcd := inv.All.Children["etcd"]
		if len(etcd.Hosts) != 3 || etcd.Hosts["10.213.21.12"].EtcdSeq != 2 || etcd.Vars["etcd_cluster"] != "etcd" || inv.All.Vars["etcd_cluster"] != "etcd" {
			t.Errorf("etcd in the inventory: %+v, all.vars %+v", etcd, inv.All.Vars)
		}
		members, err := etcdClient(t, endpoints[0]).MemberList(ctx)
		if err != nil {
			t.Fatalf("member list: %v", err)
		}
		var got []string
		for _, m := range members.Members {
			got = append(got, m.Name+" "+strings.Join(m.ClientURLs, ","))
		}
		slices.Sort(got)
		if want := []string{"etcd-1 " + endpoints[0], "etcd-2 " + endpoints[1], "etcd-3 " + endpoints[2]}; !slices.Equal(got, want) {
			t.Errorf("members %v, want %v", got, want)
		}
		// the member runs as etcd (the Debian unit's user) when the account exists
		pid, err := st.EtcdPID(3)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := user.Lookup("etcd"); err == nil {
			status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if !strings.Contains(string(status), "\nUid:\t"+u.Uid+"\t") {
				t.Errorf("etcd of n3 does not run as etcd (uid %s):\n%s", u.Uid, status)
			}
		}
		if _, err := st.EtcdPID(4); err == nil {
			t.Error("EtcdPID of a node that does not exist succeeded")
		}
	})

	t.Run("a write through one member is read through another", func(t *testing.T) {
		etcdPut(t, ctx, endpoints[0], "/pigwf-lab-test/k", "v1")
		if got := etcdGet(t, ctx, endpoints[2], "/pigwf-lab-test/k"); got != "v1" {
			t.Errorf("get on etcd-3: %q", got)
		}
	})

	t.Run("leases of 1 s are honoured", func(t *testing.T) {
		// etcd raises a TTL below 1.5 election timeouts; the lab's fast timing keeps 1 s
		lease, err := etcdClient(t, endpoints[1]).Grant(ctx, 1)
		if err != nil || lease.TTL != 1 {
			t.Errorf("lease grant 1: %+v %v", lease, err)
		}
	})

	t.Run("up again keeps the cluster", func(t *testing.T) {
		start := time.Now()
		again, err := Up(ctx, testEtcdLab)
		if err != nil {
			t.Fatalf("Up again: %v", err)
		}
		t.Logf("Up of a running lab with etcd took %s", time.Since(start).Round(time.Millisecond))
		if !slices.Equal(again.Nodes, st.Nodes) || !slices.Equal(again.Etcd, st.Etcd) {
			t.Errorf("Up again changed the lab: %+v -> %+v", st, again)
		}
		if got := etcdGet(t, ctx, endpoints[1], "/pigwf-lab-test/k"); got != "v1" {
			t.Errorf("get after Up again: %q", got)
		}
		noEtcd := testEtcdLab
		noEtcd.Etcd = NoEtcd
		if _, err := Up(ctx, noEtcd); err == nil || !strings.Contains(err.Error(), "has 3 etcd members, asked for 0") {
			t.Errorf("Up without etcd of a lab with etcd: %v", err)
		}
	})

	t.Run("a killed member comes back by itself", func(t *testing.T) {
		old, err := st.EtcdPID(2)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := st.KillEtcd(2); err != nil {
			t.Fatalf("KillEtcd: %v", err)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(old)); err == nil {
			if info, err := readProc(old); err == nil && info.state != 'Z' {
				t.Errorf("etcd of n2 (pid %d) survived KillEtcd", old)
			}
		}
		etcdPut(t, ctx, endpoints[0], "/pigwf-lab-test/k", "v2")
		t.Logf("put with member 2 dead done %s after the kill", time.Since(start).Round(time.Millisecond))
		waitEtcdMember(t, ctx, st, 2, old, start, 5*time.Second)
		if got := etcdGet(t, ctx, endpoints[1], "/pigwf-lab-test/k"); got != "v2" {
			t.Errorf("get on the restarted etcd-2: %q", got)
		}
		if log, _ := os.ReadFile(layout{st.Dir}.etcdLog("n2")); !strings.Contains(string(log), "etcd-2 exited with status 137") {
			t.Errorf("etcd log of n2 does not record the kill: %s", logTail(layout{st.Dir}.etcdLog("n2")))
		}
	})

	t.Run("a crashed node boots its services again", func(t *testing.T) {
		l := layout{st.Dir}
		// a boot service dropped the way a runbook would, over SSH: it leaves
		// orphans to the node's PID 1, which must reap them
		script := "#!/bin/sh\ndate +%s.%N >>/var/lib/pigwf/boot-marker\ngrep SigIgn /proc/$$/status >/var/lib/pigwf/boot-sigign\n" +
			"for i in 1 2 3 4 5; do (sleep 0.2 &); done\necho marker booted\n"
		if out, err := sshRun(st, 1, "cat >/etc/pigwf/boot.d/20-marker <<'EOF'\n"+script+"EOF\nchmod 755 /etc/pigwf/boot.d/20-marker"); err != nil {
			t.Fatalf("write a boot script on n1: %q %v", out, err)
		}
		marker := l.nodeFS("n1", "/var/lib/pigwf/boot-marker")
		if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the boot script ran before any boot: %v", err)
		}
		old, err := st.EtcdPID(1)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.KillNode(1); err != nil {
			t.Fatalf("KillNode: %v", err)
		}
		crashed := time.Now()
		if _, err := st.EtcdPID(1); err == nil {
			t.Error("EtcdPID of a crashed node succeeded")
		}
		if err := st.KillEtcd(1); err == nil {
			t.Error("KillEtcd of a crashed node succeeded")
		}
		etcdPut(t, ctx, endpoints[1], "/pigwf-lab-test/k", "v3")
		t.Logf("put with node 1 down done %s after the crash", time.Since(crashed).Round(time.Millisecond))
		start := time.Now()
		if err := st.StartNode(ctx, 1); err != nil {
			t.Fatalf("StartNode: %v", err)
		}
		t.Logf("StartNode with etcd took %s", time.Since(start).Round(time.Millisecond))
		waitEtcdMember(t, ctx, st, 1, old, start, 5*time.Second)
		if got := etcdGet(t, ctx, endpoints[0], "/pigwf-lab-test/k"); got != "v3" {
			t.Errorf("the rejoined etcd-1 reads %q, want the write made while it was down", got)
		}
		if data, err := os.ReadFile(marker); err != nil || strings.Count(string(data), "\n") != 1 {
			t.Errorf("boot marker after one boot: %q %v", data, err)
		}
		// started as systemd would: no standard signal (1-31) ignored (sh ignores SIGINT/SIGQUIT in
		// background jobs). Bits above are glibc-internal and may be inherited from whatever
		// launched the tests, which env --default-signal cannot reset.
		data, err := os.ReadFile(l.nodeFS("n1", "/var/lib/pigwf/boot-sigign"))
		var mask uint64
		if err == nil {
			_, err = fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(string(data), "SigIgn:")), "%x", &mask)
		}
		if err != nil || mask&0x7fffffff != 0 {
			t.Errorf("signals ignored by a boot service: %q (mask %#x) %v", data, mask, err)
		}
		// The service echoes its line after writing the marker and forking: poll for it.
		for logDeadline := time.Now().Add(3 * time.Second); ; {
			log, err := os.ReadFile(l.bootLog("n1"))
			if err == nil && strings.Contains(string(log), "boots /etc/pigwf/boot.d/20-marker") && strings.Contains(string(log), "marker booted") {
				break
			}
			if time.Now().After(logDeadline) {
				t.Errorf("boot log of n1 after 3 s: %q %v", log, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		// the orphans exit 0.2 s after boot: none may stay a zombie
		deadline := time.Now().Add(3 * time.Second)
		for {
			out, err := st.Exec(ctx, 1, "ps", "-eo", "stat=,pid=,ppid=,args=")
			if err != nil {
				t.Fatalf("ps on n1: %v", err)
			}
			var zombies []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if strings.HasPrefix(line, "Z") {
					zombies = append(zombies, line)
				}
			}
			if len(zombies) == 0 && !strings.Contains(string(out), "sleep 0.2") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("processes of n1 3 s after its boot (zombies: %d):\n%s", len(zombies), out)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		state, err := readState(testEtcdLab.Dir)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := Down(ctx, testEtcdLab); err != nil {
			t.Fatalf("Down: %v", err)
		}
		t.Logf("Down of 3 nodes with etcd took %s", time.Since(start).Round(time.Millisecond))
		checkNothingLeft(t, testEtcdLab, state)
		if _, err := os.Stat("/var/log/pigwf/boot.log"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a node's boot log is visible on the host: %v", err)
		}
	})
}

// etcdClient connects to one etcd endpoint; the test closes it.
// testEtcdTLS is the etcd lab test's client certificate (the lab's, Status.ClientTLS).
var testEtcdTLS pki.Files

func mustTLS(t *testing.T, f pki.Files) *tls.Config {
	t.Helper()
	c, err := f.Client("")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func etcdClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(), TLS: mustTLS(t, testEtcdTLS)})
	if err != nil {
		t.Fatalf("etcd client for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// etcdPut writes key through one member within 5 s. Each try has its own
// short timeout: a write forwarded to a leader that just died is lost, and
// etcd 3.4 fails it only after its request timeout (5 s + 2 election
// timeouts), so clients retry on a short deadline instead of waiting.
func etcdPut(t *testing.T, ctx context.Context, endpoint, key, value string) {
	t.Helper()
	cli := etcdClient(t, endpoint)
	deadline := time.Now().Add(5 * time.Second)
	for {
		tryCtx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		_, err := cli.Put(tryCtx, key, value)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s on %s: %v", key, endpoint, err)
		}
		t.Logf("put %s on %s: %v; retrying", key, endpoint, err)
	}
}

// etcdGet is a linearizable read of key through one member.
func etcdGet(t *testing.T, ctx context.Context, endpoint, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := etcdClient(t, endpoint).Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s on %s: %v", key, endpoint, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// waitEtcdMember waits until node i runs an etcd other than oldPID and that
// member is healthy, and logs how long after start.
func waitEtcdMember(t *testing.T, ctx context.Context, st *Status, i, oldPID int, start time.Time, timeout time.Duration) {
	t.Helper()
	var restarted time.Duration
	n := st.Nodes[i-1]
	for {
		pid, err := st.EtcdPID(i)
		if err == nil && pid != oldPID {
			if restarted == 0 {
				restarted = time.Since(start)
			}
			// a client dialing a closed port backs off ~1 s: wait for the listener first
			if ok, _ := listeningOn(n.PID, n.Addr, etcdClientPort); !ok {
				err = errors.New("not listening yet")
			} else if err = etcdMemberHealthy(ctx, &labState{Name: st.Name, CADir: st.CADir, Plaintext: st.Plaintext}, st.Etcd[i-1]); err == nil {
				t.Logf("etcd-%d: new process %s, healthy %s after the kill or start", i, restarted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("etcd-%d not back and healthy %s after the kill or start: %v: %s", i, timeout, err, logTail(layout{st.Dir}.etcdLog(nodeName(i))))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDownCleansCrashedLab: a lab whose state file is lost (a crashed Up or
// test) is still taken down completely.
func TestDownCleansCrashedLab(t *testing.T) {
	requireLabHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Down(ctx, testCrashedLab); err != nil {
		t.Fatalf("Down before the test: %v", err)
	}
	t.Cleanup(func() { _ = Down(context.Background(), testCrashedLab) })
	start := time.Now()
	up, err := Up(ctx, testCrashedLab)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("Up of 2 nodes with 2 etcd members took %s (etcd healthy after %s)", time.Since(start).Round(time.Millisecond), up.EtcdReadyIn.Round(time.Millisecond))
	if procs := etcdProcsOfLab(testCrashedLab.Name); len(procs) != 2 {
		t.Errorf("etcd processes of a 2-node lab: %+v", procs)
	}
	state, err := readState(testCrashedLab.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(layout{testCrashedLab.Dir}.state()); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := Down(ctx, testCrashedLab); err != nil {
		t.Fatalf("Down without state: %v", err)
	}
	t.Logf("Down of 2 nodes without state took %s", time.Since(start).Round(time.Millisecond))
	checkNothingLeft(t, testCrashedLab, state)
}

// checkNothingLeft asserts no trace of the lab remains: namespaces, links,
// nftables table, processes, state dir, and mount points it created (unless
// another lab on the machine still binds over them).
func checkNothingLeft(t *testing.T, c Config, st *labState) {
	t.Helper()
	prefix := c.Name + "-"
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || strings.Contains(string(out), prefix) {
		t.Errorf("ip netns list: %v\n%s", err, out)
	}
	out, err := exec.Command("ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Errorf("ip link: %v\n%s", err, out)
	}
	links := []string{bridgeName(c.Name)}
	for i := 1; i <= maxNodes; i++ {
		links = append(links, vethName(c.Name, i))
	}
	for _, l := range links {
		if strings.Contains(string(out), " "+l+":") || strings.Contains(string(out), " "+l+"@") {
			t.Errorf("link %s remains:\n%s", l, out)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), nftTableName(c.Name)) {
		t.Errorf("nft list tables: %v\n%s", err, out)
	}
	for _, n := range st.Nodes {
		for _, pid := range []int{n.PID, n.Keeper} {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				if info, err := readProc(pid); err == nil && (info.start == n.PIDStart || info.start == n.KeepStart) {
					t.Errorf("node %s process %d is still there (state %c, parent %d)", n.Name, pid, info.state, info.ppid)
				}
			}
		}
	}
	if procs := procsMentioning(nodeProcessExes, []string{c.Dir + "/"}); len(procs) > 0 {
		t.Errorf("processes of the lab remain: %+v", procs)
	}
	if procs := etcdProcsOfLab(c.Name); len(procs) > 0 {
		t.Errorf("etcd processes of the lab remain: %+v", procs)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir %s: %v", c.Dir, err)
	}
	inUse, err := mountPointsInUse()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.CreatedMountPoints {
		if _, err := os.Lstat(p); err == nil && !inUse[p] {
			t.Errorf("created mount point %s remains and no lab uses it", p)
		}
	}
}

func sshDial(st *Status, i int, knownHostsFile string) (*ssh.Client, error) {
	key, err := os.ReadFile(st.SSHKey)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, err
	}
	hostKeys, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", net.JoinHostPort(st.Nodes[i-1].Addr, "22"), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         3 * time.Second,
	})
}

// sshRun runs cmd on node i as root over SSH, checking the host key
// against the lab's known_hosts.
func sshRun(st *Status, i int, cmd string) (string, error) {
	client, err := sshDial(st, i, st.KnownHosts)
	if err != nil {
		return "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	out, err := session.CombinedOutput(cmd)
	return string(out), err
}

func TestInterfaceNamesFit(t *testing.T) {
	for _, name := range []string{"pigwf", "pwlabt", "exactly11ch", "exactly12chr", "a-much-longer-lab-name", "a-much-longer-lab-name2"} {
		seen := map[string]int{}
		for i := 1; i <= maxNodes; i++ {
			for _, ifname := range []string{bridgeName(name), vethName(name, i)} {
				if len(ifname) > ifNameMax {
					t.Errorf("%s: %q is longer than %d", name, ifname, ifNameMax)
				}
			}
			if j, dup := seen[vethName(name, i)]; dup {
				t.Errorf("%s: nodes %d and %d share the veth %s", name, j, i, vethName(name, i))
			}
			seen[vethName(name, i)] = i
		}
	}
	// the names labs had when nine nodes were the limit are kept
	for name, want := range map[string][]string{
		"pigwf":                  {"pigwf-br", "pigwf-v1", "pigwf-v9", "pigwf-v10", "pigwf-v48"},
		"exactly12chr":           {"exactly12chr-br", "exactly12chr-v1", "exactly12chr-v9"},
		"exactly11ch":            {"exactly11ch-br", "exactly11ch-v9", "exactly11ch-v10"},
		"a-much-longer-lab-name": {"a-much-l" + hash16("a-much-longer-lab-name") + "-br", "a-much-l" + hash16("a-much-longer-lab-name") + "-v9"},
	} {
		got := []string{bridgeName(name)}
		for _, i := range []int{1, 9, 10, 48} {
			got = append(got, vethName(name, i))
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: names %v lack %s", name, got, w)
			}
		}
	}
	if v := vethName("exactly12chr", 10); len(v) != ifNameMax || !strings.HasPrefix(v, "exactly") || !strings.HasSuffix(v, "-v10") {
		t.Errorf("node 10 of a 12-byte lab name: %q", v)
	}
	if bridgeName("a-much-longer-lab-name") == bridgeName("a-much-longer-lab-name2") {
		t.Error("two long lab names share a bridge name")
	}
	if first, again := bridgeName("a-much-longer-lab-name"), bridgeName("a-much-longer-lab-name"); first != again {
		t.Error("shortening is not deterministic")
	}
}

func TestInventoryText(t *testing.T) {
	c := Config{}.WithDefaults()
	st := &labState{Name: c.Name, Cluster: c.Cluster, Etcd: c.etcdMembers()}
	for i := 1; i <= 3; i++ {
		st.Nodes = append(st.Nodes, nodeState{Addr: nodeAddr(c.Subnet, i)})
	}
	got, err := renderInventory(layout{c.Dir}, st)
	if err != nil {
		t.Fatal(err)
	}
	want := "# pigwf lab inventory, written by `pigwf lab up` (lab pigwf)\n" + `all:
  children:
    pg-test:
      hosts:
        10.213.0.11: { pg_seq: 1, pg_role: primary }
        10.213.0.12: { pg_seq: 2, pg_role: replica }
        10.213.0.13: { pg_seq: 3, pg_role: replica }
      vars:
        pg_cluster: pg-test
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, roles: [dbrole_admin], comment: pigsty admin user }
        pg_databases:
          - { name: meta, owner: dbuser_meta, comment: pigsty meta database }
        pg_hba_rules:
          - { user: dbuser_meta, db: all, addr: intra, auth: pwd, title: 'allow meta user from the lab network' }
        # who may approve risky runbooks (switchover, pg-cluster-create --force) on this cluster
        pigwf_approvers: [alice, bob]
    etcd:
      hosts:
        10.213.0.11: { etcd_seq: 1 }
        10.213.0.12: { etcd_seq: 2 }
        10.213.0.13: { etcd_seq: 3 }
      vars: { etcd_cluster: etcd }
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: /var/lib/pigwf-lab/pigwf/ssh/id_ed25519
    pigwf_known_hosts: /var/lib/pigwf-lab/pigwf/ssh/known_hosts
    # the lab shares the host kernel: only per-network-namespace kernel settings are tuned here
    node_sysctl_params: { net.core.somaxconn: 4096, net.ipv4.tcp_keepalive_time: 60 }
    # one backup repository every node sees (as MinIO/S3 would be), so backups outlive a failover
    pgbackrest_repo_path: /var/lib/pigwf-lab/pigwf/shared/pgbackrest
    # the DCS: the hosts of this group, as https://<addr>:2379 (TLS and client certificates
    # from the deployment CA)
    etcd_cluster: etcd
`
	if string(got) != want {
		t.Errorf("inventory:\n%s\nwant:\n%s", got, want)
	}
	// It loads under pigwf's inventory rules, as is and in synchronous mode (as the HA and PITR
	// tests run it).
	const clusterLine = "        pg_cluster: pg-test\n"
	for name, text := range map[string]string{"as rendered": string(got),
		"synchronous": strings.Replace(string(got), clusterLine, clusterLine+"        pg_synchronous_mode: true\n", 1)} {
		if _, err := inventory.ParseInventory("lab.yml", []byte(text)); err != nil {
			t.Errorf("the lab inventory (%s) does not load: %v", name, err)
		}
	}

	// a plain-text lab says so, and pigwf's inventory then gives http:// endpoints
	st.Plaintext = true
	plain, err := renderInventory(layout{c.Dir}, st)
	if err != nil {
		t.Fatal(err)
	}
	if inv, err := inventory.ParseInventory("lab.yml", plain); err != nil || !inv.Plaintext || len(inv.Etcd) != 3 || inv.Etcd[0] != "http://10.213.0.11:2379" {
		t.Errorf("plain-text lab inventory: %v %+v", err, inv)
	}
	if got, _ := renderInventory(layout{c.Dir}, &labState{Name: c.Name, Cluster: c.Cluster, Etcd: 3, Nodes: st.Nodes}); !bytes.Equal(got, []byte(want)) {
		t.Error("the TLS lab's inventory changed")
	}
	st.Plaintext = false

	// without etcd: the inventory as before etcd, no group and no etcd_cluster
	st.Etcd = 0
	got, err = renderInventory(layout{c.Dir}, st)
	if err != nil {
		t.Fatal(err)
	}
	withoutEtcd := strings.Replace(strings.Replace(want, `    etcd:
      hosts:
        10.213.0.11: { etcd_seq: 1 }
        10.213.0.12: { etcd_seq: 2 }
        10.213.0.13: { etcd_seq: 3 }
      vars: { etcd_cluster: etcd }
`, "", 1), `    # the DCS: the hosts of this group, as https://<addr>:2379 (TLS and client certificates
    # from the deployment CA)
    etcd_cluster: etcd
`, "", 1)
	if string(got) != withoutEtcd {
		t.Errorf("inventory without etcd:\n%s\nwant:\n%s", got, withoutEtcd)
	}
}

func TestMissingBinaryMessage(t *testing.T) {
	saved := requiredBinaries[0]
	defer func() { requiredBinaries[0] = saved }()
	requiredBinaries[0].candidates = []string{"/nonexistent/sbin/sshd"}
	_, err := findTools()
	want := "lab: missing /nonexistent/sbin/sshd: run `make deps` (apt-get install openssh-server)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Name: "bad name"}, {Nodes: -1}, {Subnet: "8.8.8"}, {Subnet: "10.213"}, {Subnet: "10.213.300"},
		{Dir: "relative"}, {Dir: "/"}, {Dir: "/var"}, {Dir: "/var/lib/x y"}, {Cluster: "Bad_Cluster"},
		{Nodes: 2, Etcd: 3}, {Etcd: -2}, {Nodes: maxNodes + 1},
		{Nodes: 9, Clusters: []string{"pg-a", "pg-b"}}, {Nodes: 4, Bare: 5}, {Bare: -1}, {Nodes: 3, Bare: 3, Clusters: []string{"pg-a"}},
		{Clusters: []string{"pg-a", "pg-a"}, Nodes: 2}, {Clusters: []string{"nodes"}}, {Clusters: []string{"etcd"}}, {Clusters: []string{"Pg_A"}},
		{Cluster: "pg-x", Clusters: []string{"pg-a"}},
	} {
		if err := c.WithDefaults().validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	if err := (Config{}).WithDefaults().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, tc := range []struct {
		c       Config
		members int
	}{{Config{}, 3}, {Config{Nodes: 1}, 1}, {Config{Nodes: 5}, 3}, {Config{Nodes: 5, Etcd: 5}, 5}, {Config{Etcd: NoEtcd}, 0}} {
		c := tc.c.WithDefaults()
		if err := c.validate(); err != nil || c.etcdMembers() != tc.members || !reflect.DeepEqual(c.WithDefaults(), c) {
			t.Errorf("%+v: %d members (%v), want %d", tc.c, c.etcdMembers(), err, tc.members)
		}
	}
}

// A grown lab's inventory lists the new node under the cluster when the file is the lab's own;
// an inventory someone changed since is kept, and Up says what to add to it.
func TestInventoryOnGrow(t *testing.T) {
	c := Config{Dir: t.TempDir() + "/lab"}.WithDefaults()
	l := layout{c.Dir}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st := &labState{Name: c.Name, Cluster: c.Cluster, Etcd: 3}
	for i := 1; i <= 3; i++ {
		st.Nodes = append(st.Nodes, nodeState{Name: nodeName(i), Addr: nodeAddr(c.Subnet, i)})
	}
	if note, err := updateInventory(l, st, st.Nodes); err != nil || note != "" || st.InventorySum == "" {
		t.Fatalf("first write: %q %v (sum %q)", note, err, st.InventorySum)
	}
	grow := func() (string, error) {
		n := nodeState{Name: nodeName(len(st.Nodes) + 1), Addr: nodeAddr(c.Subnet, len(st.Nodes)+1)}
		st.Nodes = append(st.Nodes, n)
		return updateInventory(l, st, []nodeState{n})
	}
	// untouched: rewritten with n4 as a replica of the cluster, the etcd group unchanged
	if note, err := grow(); err != nil || note != "" {
		t.Fatalf("grow to 4: %q %v", note, err)
	}
	data, _ := os.ReadFile(l.inventory())
	inv, err := inventory.ParseInventory("lab.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inv.Cluster("pg-test")
	if err != nil || len(cl.Hosts) != 4 || cl.Hosts[3].Addr != "10.213.0.14" || cl.Hosts[3].Role != inventory.RoleReplica || len(inv.Etcd) != 3 {
		t.Errorf("grown inventory: %v %+v etcd %v\n%s", err, cl, inv.Etcd, data)
	}
	// changed by hand: kept, and the note names the host to add
	edited := append(data, []byte("# mine\n")...)
	if err := os.WriteFile(l.inventory(), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	note, err := grow()
	if err != nil || !strings.Contains(note, "kept as it is") || !strings.Contains(note, "10.213.0.15 (node n5) under pg-test") {
		t.Errorf("grow with an edited inventory: %q %v", note, err)
	}
	if now, _ := os.ReadFile(l.inventory()); !bytes.Equal(now, edited) {
		t.Error("an edited inventory was overwritten")
	}
	// a lab made before the checksum was recorded writes it as it always did; a missing file too
	if !inventoryIsLabs(edited, true, "") || !inventoryIsLabs(nil, false, st.InventorySum) || inventoryIsLabs(edited, true, st.InventorySum) {
		t.Error("inventoryIsLabs")
	}
}

// Growing keeps the etcd membership: a lab created with the default members for its node count
// grows with them; an explicit, different count is still refused by Up.
func TestGrowsWithDefaultEtcd(t *testing.T) {
	lab := func(nodes, etcd int) *labState {
		st := &labState{Etcd: etcd}
		for i := 1; i <= nodes; i++ {
			st.Nodes = append(st.Nodes, nodeState{Name: nodeName(i)})
		}
		return st
	}
	for _, tc := range []struct {
		st   *labState
		c    Config
		want bool
	}{
		{lab(2, 2), Config{Nodes: 4}.WithDefaults(), true},  // 2 members stay 2
		{lab(1, 1), Config{Nodes: 2}.WithDefaults(), true},  // 1 stays 1
		{lab(3, 3), Config{Nodes: 4}.WithDefaults(), false}, // same count: nothing to keep
		{lab(2, 2), Config{Nodes: 4, Etcd: 4}, false},       // an explicit count is not the default
		{lab(3, 1), Config{Nodes: 4}.WithDefaults(), false}, // created with an explicit count
		{lab(2, 2), Config{Nodes: 2, Etcd: 1}, false},       // not growing
		{lab(3, 0), Config{Nodes: 4, Etcd: NoEtcd}, false},  // no etcd
		{lab(2, 2), Config{Nodes: 3}.WithDefaults(), true},  // 2 of 2 nodes, 3 asked by default
		{lab(2, 0), Config{Nodes: 3}.WithDefaults(), false}, // a lab without etcd gets none
		{lab(3, 3), Config{Nodes: 4, Etcd: NoEtcd}.WithDefaults(), false},
	} {
		if got := growsWithDefaultEtcd(tc.st, tc.c); got != tc.want {
			t.Errorf("lab of %d nodes, %d members, asked %d nodes, %d members: got %v", len(tc.st.Nodes), tc.st.Etcd, tc.c.Nodes, tc.c.Etcd, got)
		}
	}
}

// hash16 is the 16-bit hash ifName puts in a shortened name, computed here on its own.
func hash16(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%04x", h.Sum32()&0xffff)
}
