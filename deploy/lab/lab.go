// Package lab runs pigwf's local lab: each node is its own "host" made of
// Linux namespaces on this machine (network, UTS, PID, mount), joined by a
// bridge, with its own sshd. Lab traffic never leaves the machine.
//
// Layout of a lab's state dir (Config.Dir):
//
//	state.json           what Up created (PIDs, names, created mount points)
//	inventory.yml        Pigsty-format inventory for pigwf
//	ssh/id_ed25519       root's key on every node; ssh/known_hosts lists the node host keys
//	authorized_keys/%u   AuthorizedKeysFile of every node's sshd
//	shared/...           lab-wide directories bound over /etc/ssh/ssh_config.d, /etc/sudoers.d
//	nodes/nI/            sshd_config, host key, init.sh, sshd.log, fs/<node-private paths>
//	nodes/nI/fs/etc/pigwf/boot.d/  the node's boot services, run at each node start (10-etcd: its etcd member)
//	nodes/nI/fs/var/log/pigwf/     their logs: boot.log, etcd.log
//	nodes/nI/fs/var/lib/etcd/      the etcd member's TLS files; data/ its data, on a memory file system (etcddisk.go)
package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Status describes a lab as Up or Load found it.

type Status struct {
	Name       string `json:"name"`
	Dir        string `json:"dir"`
	Inventory  string `json:"inventory"`   // Dir/inventory.yml
	KnownHosts string `json:"known_hosts"` // Dir/ssh/known_hosts
	SSHKey     string `json:"ssh_key"`     // Dir/ssh/id_ed25519: root's private key on every node
	Bridge     string `json:"bridge"`
	Subnet     string `json:"subnet"`
	Cluster    string `json:"cluster"` // the first PostgreSQL cluster ("" when every node is bare)
	// Groups are the inventory's groups of lab nodes: the PostgreSQL clusters, then the bare nodes
	// (BareGroup) if there are any.
	Groups []Group `json:"groups"`
	Nodes  []Node  `json:"nodes"`
	// Etcd are the client URLs (https://ADDR:2379; http:// in a plain-text lab) of the lab's
	// etcd members, member i on node i; empty for a lab without etcd.
	Etcd []string `json:"etcd"`
	// CADir is the deployment CA the lab's etcd trusts (ClientTLS issues from it).
	CADir string `json:"ca_dir"`
	// Plaintext: a lab without TLS (Config.Plaintext).
	Plaintext bool `json:"plaintext,omitempty"`
	// EtcdReadyIn is how long Up waited, once the nodes' sshd listened,
	// until every etcd member served a linearizable read (zero from Load).
	EtcdReadyIn time.Duration `json:"etcd_ready_in,omitempty"`
	// InventoryNote: Up kept an inventory.yml that was changed since the lab wrote it, and says
	// which new nodes to add to it by hand ("" when Up wrote the inventory).
	InventoryNote string `json:"inventory_note,omitempty"`
}

// Node is one lab node. Node numbers (the i of the methods) start at 1: n1.

type Node struct {
	Name    string `json:"name"` // n1, n2, ...: also its hostname at start
	Addr    string `json:"addr"`
	NetNS   string `json:"netns"`
	Veth    string `json:"veth"` // root-side end of the node's link, on the bridge
	PID     int    `json:"pid"`  // host PID of the node's init (its sshd, PID 1 in the node)
	Running bool   `json:"running"`
	LinkUp  bool   `json:"link_up"`
}

// Up creates the lab or completes it: the network is created where missing,
// dead or missing nodes are (re)started, running nodes are left alone, and
// links are brought up. A lab may grow (more Nodes) but not shrink: a grown
// lab's new nodes start, the running ones keep their processes (their sshd,
// etcd member, PostgreSQL and agent), and the etcd membership stays as it was
// created (members on nodes 1..Etcd; a new node is a PostgreSQL node only).
// The inventory lists the new nodes under the cluster, as a DBA's inventory
// would before `pigwf start pg-member-add`, unless it was changed since the
// lab wrote it (see updateInventory).

func Up(ctx context.Context, c Config) (*Status, error) {
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	t, err := checkHost()
	if err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(c.Subnet)
	if err != nil {
		return nil, err
	}
	var et etcdTools
	if c.etcdMembers() > 0 {
		if et, err = findEtcdTools(); err != nil {
			return nil, err
		}
	}
	unlock, err := lockMachine()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// before anything is created: a clash must leave nothing to clean up
	if err := checkSubnetFree(subnet, bridgeName(c.Name)); err != nil {
		return nil, err
	}

	l := layout{c.Dir}
	st, err := readState(c.Dir)
	switch {
	case errors.Is(err, errNoState):
		st = &labState{Name: c.Name, Subnet: c.Subnet, Bridge: bridgeName(c.Name), NFTable: nftTableName(c.Name), CreatedMountPoints: []string{}, Etcd: c.etcdMembers(),
			CADir: c.CADir, Plaintext: c.Plaintext}
	case err != nil:
		return nil, err
	case st.Name != c.Name || st.Subnet != c.Subnet:
		return nil, fmt.Errorf("lab: %s holds lab %s on subnet %s, not %s on %s: run `pigwf lab down` first", c.Dir, st.Name, st.Subnet, c.Name, c.Subnet)
	case len(st.Nodes) > c.Nodes:
		return nil, fmt.Errorf("lab: lab %s has %d nodes, asked for %d: run `pigwf lab down` first to shrink it", c.Name, len(st.Nodes), c.Nodes)
	case st.CADir != c.CADir || st.Plaintext != c.Plaintext:
		return nil, fmt.Errorf("lab: lab %s was created with CA %s (plain text: %v), asked for %s (plain text: %v): run `pigwf lab down` first",
			c.Name, st.CADir, st.Plaintext, c.CADir, c.Plaintext)
	case growsWithDefaultEtcd(st, c):
		c.Etcd = st.Etcd
	case st.Etcd != c.etcdMembers():
		// members were bootstrapped with --initial-cluster-state new: adding or
		// removing one would need etcd's runtime reconfiguration
		return nil, fmt.Errorf("lab: lab %s has %d etcd members, asked for %d: the membership is fixed when the lab is created: run `pigwf lab down` first (or set Config.Etcd to %d)",
			c.Name, st.Etcd, c.etcdMembers(), st.Etcd)
	}
	if err := checkPlacesKept(st, c); err != nil {
		return nil, err
	}
	st.Cluster, st.Clusters, st.Bare = c.Cluster, c.Clusters, c.Bare
	var added []nodeState // nodes this Up adds to a running lab (or creates)
	for i := len(st.Nodes) + 1; i <= c.Nodes; i++ {
		st.Nodes = append(st.Nodes, nodeState{
			Name: nodeName(i), Addr: nodeAddr(c.Subnet, i), NetNS: netnsName(c.Name, i), Veth: vethName(c.Name, i),
		})
		added = append(added, st.Nodes[len(st.Nodes)-1])
	}

	if err := writeLabFiles(l, t, et, st); err != nil {
		return nil, err
	}
	if err := ensureEtcdCerts(l, st); err != nil {
		return nil, err
	}
	if err := writeState(c.Dir, st); err != nil { // from here on, Down can find what Up creates
		return nil, err
	}
	mountErr := ensureMountPoints(st)
	if err := writeState(c.Dir, st); err != nil {
		return nil, err
	}
	if mountErr != nil {
		return nil, mountErr
	}
	if err := ensureEtcdDisks(l, st); err != nil {
		return nil, err
	}

	// a node whose init runs in another namespace than /run/netns/<netns>
	// (the namespace file was deleted and re-created) cannot be reached: restart it
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if init := (procRef{n.PID, n.PIDStart}); init.alive() && !inNamedNetns(n.PID, n.NetNS) {
			if err := stopNode(ctx, n); err != nil {
				return nil, err
			}
		}
	}
	if err := ensureBridge(ctx, t, st); err != nil {
		return nil, err
	}
	if err := ensureFirewall(ctx, t, st); err != nil {
		return nil, err
	}
	for _, n := range st.Nodes {
		if err := ensureNodeNetwork(ctx, t, st, n, true); err != nil {
			return nil, err
		}
	}

	var started []nodeState
	var startErr error
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if (procRef{n.PID, n.PIDStart}).alive() {
			continue
		}
		if startErr = killStrays(ctx, t, l, *n); startErr != nil {
			break
		}
		if startErr = startNode(ctx, t, l, n); startErr != nil {
			break
		}
		started = append(started, *n)
	}
	if err := writeState(c.Dir, st); err != nil {
		return nil, err
	}
	if startErr != nil {
		return nil, startErr
	}
	for _, n := range started { // the nodes start in parallel; wait for each in turn
		if err := waitNodeReady(ctx, l, n); err != nil {
			return nil, err
		}
	}
	var etcdReadyIn time.Duration
	if st.Etcd > 0 {
		etcdStart := time.Now()
		if err := waitEtcdHealthy(ctx, l, st); err != nil {
			return nil, err
		}
		etcdReadyIn = time.Since(etcdStart)
	}
	note, err := updateInventory(l, st, added)
	if err != nil {
		return nil, err
	}
	if err := writeState(c.Dir, st); err != nil { // the inventory's checksum
		return nil, err
	}
	s, err := statusOf(c.Dir, st)
	if err != nil {
		return nil, err
	}
	s.EtcdReadyIn = etcdReadyIn
	s.InventoryNote = note
	return s, nil
}

// growsWithDefaultEtcd: the lab has the default etcd membership for its node count and c asks
// for the default of its own: a lab created with fewer than 3 nodes (1 or 2 members) grows with
// the members it has, since the membership is fixed at creation.
func growsWithDefaultEtcd(st *labState, c Config) bool {
	return st.Etcd != c.etcdMembers() && len(st.Nodes) < c.Nodes &&
		st.Etcd == min(defaultEtcd, len(st.Nodes)) && c.etcdMembers() == min(defaultEtcd, c.Nodes)
}

// writeLabFiles creates the lab dir, keys, known_hosts, authorized_keys and

// every node's directories, sshd config, init script and etcd boot script

// (files that exist are kept, so keys and node content survive a second Up;

// the scripts are the lab's and are rewritten).

func writeLabFiles(l layout, t tools, et etcdTools, st *labState) error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("while creating lab dir %s: %w", l.dir, err)
	}
	if err := os.WriteFile(l.marker(), []byte("pigwf lab "+st.Name+": `pigwf lab down` removes this directory\n"), 0o644); err != nil {
		return fmt.Errorf("while writing %s: %w", l.marker(), err)
	}
	if err := os.MkdirAll(l.sshDir(), 0o700); err != nil { // holds the lab's private key
		return fmt.Errorf("while creating %s: %w", l.sshDir(), err)
	}
	dirs := []string{l.authorizedKeys()}
	for _, m := range sharedMounts {
		dirs = append(dirs, l.shared(m.name))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("while creating %s: %w", d, err)
		}
	}
	labKey, err := ensureKey(l.sshKey(), "pigwf-lab-"+st.Name)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(l.authorizedKeys(), "root"), []byte(authorizedKeyLine(labKey, "pigwf-lab-"+st.Name)), 0o644); err != nil {
		return err
	}
	var knownHosts strings.Builder
	for idx, n := range st.Nodes {
		if err := os.MkdirAll(l.nodeDir(n.Name), 0o755); err != nil {
			return fmt.Errorf("while creating node dir %s: %w", l.nodeDir(n.Name), err)
		}
		if err := seedNodeFS(l, n.Name, n.Addr); err != nil {
			return fmt.Errorf("while preparing node %s: %w", n.Name, err)
		}
		hostKey, err := ensureKey(l.hostKey(n.Name), "root@"+n.Name)
		if err != nil {
			return fmt.Errorf("while preparing node %s: %w", n.Name, err)
		}
		knownHosts.WriteString(knownHostsLine(n.Addr, hostKey))
		if err := writeFileAtomic(l.sshdConfig(n.Name), []byte(sshdConfig(l, st.Name, n)), 0o644); err != nil {
			return err
		}
		if err := writeFileAtomic(l.initScript(n.Name), []byte(initScript(l, t, st.Name, n)), 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(l.nodeFS(n.Name, bootDir), 0o755); err != nil {
			return fmt.Errorf("while creating the boot.d of node %s: %w", n.Name, err)
		}
		if idx < st.Etcd {
			if err := writeFileAtomic(l.nodeFS(n.Name, etcdBootScript), []byte(etcdScript(st, idx+1, et)), 0o755); err != nil {
				return err
			}
		}
	}
	return writeFileAtomic(l.knownHosts(), []byte(knownHosts.String()), 0o644)
}

// inNamedNetns says whether pid's network namespace is /run/netns/<name>.

// killAndWait kills procs (those still alive) and waits until they are gone;

// see waitGone for zombieGrace. Keepers go last: alive, each reaps its

// node's init at once, while killed first they would leave the inits to

// PID 1, which may reap slowly (every ~2 s on this machine).

// stopNode kills node n's init (and so every process of the node) and waits

// until it is gone.

// nodeProcessExes are the executables of a node's own processes, as found

// by their command line when the state does not list them.

var nodeProcessExes = []string{"sshd", "unshare", "ip", "sh", "dash"}

// killStrays kills what is left of a dead node before it is started again:

// processes in its network namespace and node processes of an Up that

// crashed before recording them (their sshd would hold port 22).

// statusOf reports st with each node's liveness and link state.

func statusOf(dir string, st *labState) (*Status, error) {
	l := layout{dir}
	groups, err := groupsOf(st)
	if err != nil {
		return nil, fmt.Errorf("lab: the state of lab %s: %w", st.Name, err)
	}
	s := &Status{Groups: groups,
		Name: st.Name, Dir: dir, Inventory: l.inventory(), KnownHosts: l.knownHosts(), SSHKey: l.sshKey(),
		Bridge: st.Bridge, Subnet: st.Subnet, Cluster: st.Cluster, Etcd: etcdEndpoints(st), CADir: st.CADir, Plaintext: st.Plaintext,
	}
	for _, n := range st.Nodes {
		s.Nodes = append(s.Nodes, Node{
			Name: n.Name, Addr: n.Addr, NetNS: n.NetNS, Veth: n.Veth, PID: n.PID,
			Running: procRef{n.PID, n.PIDStart}.alive(),
			LinkUp:  linkIsUp(n.Veth),
		})
	}
	return s, nil
}

// SSHDLog is the log of node i's (1-based) sshd, on the machine: a benchmark counts the SSH
// connections a node accepted in it.
func (s *Status) SSHDLog(i int) string { return layout{s.Dir}.sshdLog(nodeName(i)) }

// Load reads a lab's state and checks each node's liveness and link.

func Load(c Config) (*Status, error) {
	c = c.WithDefaults()
	st, err := readState(c.Dir)
	if errors.Is(err, errNoState) {
		return nil, fmt.Errorf("lab %s is not up: run `pigwf lab up`", c.Name)
	}
	if err != nil {
		return nil, err
	}
	return statusOf(c.Dir, st)
}

// Down removes everything the lab made: it kills every node process and

// waits for it, deletes veths, namespaces, bridge and nftables table,

// removes the root-filesystem mount points labs created once no lab uses

// them, and removes Dir. It also cleans a lab whose Up crashed or whose

// state is lost. Down of a lab that is not there does nothing.

// removeLabDir removes Dir, but only if it is a lab dir (the marker or a

// state file is there) or empty: a mistyped Dir must not wipe a directory.

// The default parent /var/lib/pigwf-lab goes too once it is empty.

// node returns node i (1-based) of the state in s.Dir.

// KillNode kills node i (1-based) like a host crash: SIGKILL to its init

// takes every process of the node with it. It returns once the init is

// reaped. Killing a dead node does nothing.

// StartNode restarts node i (1-based) after a crash, with the same files:

// its boot services start again, and it returns once sshd and the node's

// etcd member (if any) listen; the member may still be catching up. A

// running node is left alone. The link keeps its state: a node whose link

// was set down comes back isolated.

// SetLink takes node i's (1-based) root-side veth down or up. Down isolates

// the node (connections to and from it time out); it keeps its own address

// and routes.

// Exec runs argv inside node i's (1-based) namespaces, as root, and returns

// its combined output. For tests and debugging; a daemon started this way

// should not keep the output open (Exec stops waiting for it after 2 s).
