package lab

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"gopkg.in/yaml.v3"
)

// The lab tests use their own names and subnets so they never clash with a
// demo lab ("pigwf" on 10.213.0) running on the same machine.
var (
	testLab        = Config{Name: "pwlabt", Subnet: "10.213.9", Nodes: 3}.WithDefaults()
	testCrashedLab = Config{Name: "pwlabc", Subnet: "10.213.8", Nodes: 2}.WithDefaults()
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
	if _, err := Up(ctx, testCrashedLab); err != nil {
		t.Fatalf("Up: %v", err)
	}
	state, err := readState(testCrashedLab.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(layout{testCrashedLab.Dir}.state()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
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
	if out, err := exec.Command("ip", "-o", "link").CombinedOutput(); err != nil || strings.Contains(string(out), ifPrefix(c.Name)+"-") {
		t.Errorf("ip link: %v\n%s", err, out)
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
	for _, name := range []string{"pigwf", "pwlabt", "exactly12chr", "a-much-longer-lab-name", "a-much-longer-lab-name2"} {
		for _, ifname := range []string{bridgeName(name), vethName(name, 9)} {
			if len(ifname) > ifNameMax {
				t.Errorf("%s: %q is longer than %d", name, ifname, ifNameMax)
			}
		}
	}
	if bridgeName("pigwf") != "pigwf-br" || vethName("pigwf", 1) != "pigwf-v1" {
		t.Errorf("short names changed: %s %s", bridgeName("pigwf"), vethName("pigwf", 1))
	}
	if bridgeName("a-much-longer-lab-name") == bridgeName("a-much-longer-lab-name2") {
		t.Error("two long lab names share a bridge name")
	}
	if bridgeName("a-much-longer-lab-name") != bridgeName("a-much-longer-lab-name") {
		t.Error("shortening is not deterministic")
	}
}

func TestInventoryText(t *testing.T) {
	c := Config{}.WithDefaults()
	st := &labState{Name: c.Name, Cluster: c.Cluster}
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
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: /var/lib/pigwf-lab/pigwf/ssh/id_ed25519
    pigwf_known_hosts: /var/lib/pigwf-lab/pigwf/ssh/known_hosts
    # the lab shares the host kernel: only per-network-namespace kernel settings are tuned here
    node_sysctl_params: { net.core.somaxconn: 4096, net.ipv4.tcp_keepalive_time: 60 }
`
	if string(got) != want {
		t.Errorf("inventory:\n%s\nwant:\n%s", got, want)
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
		{Name: "bad name"}, {Nodes: 10}, {Nodes: -1}, {Subnet: "8.8.8"}, {Subnet: "10.213"}, {Subnet: "10.213.300"},
		{Dir: "relative"}, {Dir: "/"}, {Dir: "/var"}, {Dir: "/var/lib/x y"}, {Cluster: "Bad_Cluster"},
	} {
		if err := c.WithDefaults().validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	if err := (Config{}).WithDefaults().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
