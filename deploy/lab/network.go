package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs a short host command and returns its combined output; the error
// carries the output so a failing `ip` says why.
func run(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

func linkExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// linkIsUp reads the administrative state (IFF_UP) of a root-namespace link.
func linkIsUp(name string) bool {
	data, err := os.ReadFile(filepath.Join("/sys/class/net", name, "flags"))
	if err != nil {
		return false
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(string(data), "0x")), 16, 32)
	return err == nil && flags&syscall.IFF_UP != 0
}

const nsfsMagic = 0x6e736673

func netnsPath(name string) string { return filepath.Join("/run/netns", name) }

// netnsState says whether /run/netns/<name> exists and whether it is a live
// namespace mount. /run is not a tmpfs on every machine, so after a reboot
// the file can outlive its namespace.
func netnsState(name string) (exists, live bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(netnsPath(name), &fs); err != nil {
		_, statErr := os.Lstat(netnsPath(name))
		return statErr == nil, false
	}
	return true, fs.Type == nsfsMagic
}

// checkSubnetFree refuses a subnet that another interface of the root
// namespace already uses: the lab would shadow it.
func checkSubnetFree(subnet *net.IPNet, bridge string) error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("while listing network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Name == bridge {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) && ipn.IP.To4() != nil {
				return fmt.Errorf("lab: subnet %s is already used by interface %s (%s): pick another Subnet", subnet, iface.Name, ipn)
			}
		}
	}
	return nil
}

// ensureBridge creates the lab bridge with <Subnet>.1/24 if it is missing.
func ensureBridge(ctx context.Context, t tools, st *labState) error {
	br := st.Bridge
	if linkExists(br) {
		if _, err := os.Stat(filepath.Join("/sys/class/net", br, "bridge")); err != nil {
			return fmt.Errorf("lab: interface %s exists and is not a bridge", br)
		}
	} else if _, err := run(ctx, "", t.ip, "link", "add", "name", br, "address", bridgeMAC(st.Name), "type", "bridge"); err != nil {
		return fmt.Errorf("while creating bridge %s: %w", br, err)
	}
	if _, err := run(ctx, "", t.ip, "addr", "replace", bridgeAddr(st.Subnet)+"/24", "dev", br); err != nil {
		return fmt.Errorf("while addressing bridge %s: %w", br, err)
	}
	if _, err := run(ctx, "", t.ip, "link", "set", br, "up"); err != nil {
		return fmt.Errorf("while bringing bridge %s up: %w", br, err)
	}
	return nil
}

// ensureFirewall makes sure nothing is routed between the lab bridge and any
// other interface, even if someone turns on ip_forward: lab traffic never
// leaves the machine and nothing outside reaches the lab. Bridged traffic
// between nodes (in = out = the bridge, also under br_netfilter) passes.
func ensureFirewall(ctx context.Context, t tools, st *labState) error {
	table := st.NFTable
	// declaring, deleting and redefining the table makes the load idempotent
	rules := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain forward {
		type filter hook forward priority -10; policy accept;
		iifname "%[2]s" oifname != "%[2]s" drop
		oifname "%[2]s" iifname != "%[2]s" drop
	}
}
`, table, st.Bridge)
	if _, err := run(ctx, rules, t.nft, "-f", "-"); err != nil {
		return fmt.Errorf("while loading nftables table %s: %w", table, err)
	}
	return nil
}

// ensureNodeNetwork creates node n's namespace and veth (root side on the
// bridge, node side eth0 with <Subnet>.1i/24 and a default route via the
// bridge) where missing. A new veth comes up; an existing one is brought up
// only if bringUp (StartNode keeps a link that SetLink took down).
func ensureNodeNetwork(ctx context.Context, t tools, st *labState, n nodeState, bringUp bool) error {
	exists, live := netnsState(n.NetNS)
	if exists && !live {
		if err := os.Remove(netnsPath(n.NetNS)); err != nil {
			return fmt.Errorf("while removing stale netns file %s: %w", netnsPath(n.NetNS), err)
		}
		exists = false
	}
	if !exists {
		if _, err := run(ctx, "", t.ip, "netns", "add", n.NetNS); err != nil {
			return fmt.Errorf("while creating netns %s: %w", n.NetNS, err)
		}
	}
	rootSideState := "up"
	if linkExists(n.Veth) {
		if !bringUp && !linkIsUp(n.Veth) {
			rootSideState = "down"
		}
	} else if _, err := run(ctx, "", t.ip, "link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS); err != nil {
		return fmt.Errorf("while creating veth %s: %w", n.Veth, err)
	}
	if _, err := run(ctx, "", t.ip, "link", "set", n.Veth, "master", st.Bridge, rootSideState); err != nil {
		return fmt.Errorf("while attaching veth %s to %s: %w", n.Veth, st.Bridge, err)
	}
	inside := fmt.Sprintf("link set lo up\nlink set eth0 up\naddr replace %s/24 dev eth0\nroute replace default via %s dev eth0\n",
		n.Addr, bridgeAddr(st.Subnet))
	if _, err := run(ctx, inside, t.ip, "-n", n.NetNS, "-batch", "-"); err != nil {
		return fmt.Errorf("while configuring eth0 in netns %s: %w", n.NetNS, err)
	}
	return nil
}

// netnsPIDs lists the processes in a named network namespace.
func netnsPIDs(ctx context.Context, t tools, netns string) []procRef {
	out, err := run(ctx, "", t.ip, "netns", "pids", netns)
	if err != nil {
		return nil
	}
	var refs []procRef
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if info, err := readProc(pid); err == nil {
			refs = append(refs, procRef{pid, info.start})
		}
	}
	return refs
}

// deleteNetwork removes the lab's veths, namespaces, bridge and nftables
// table, whether or not they are in the state (a crashed Up may have left
// some unrecorded). It waits until the veths are really gone: their removal
// after a namespace is deleted is asynchronous.
func deleteNetwork(ctx context.Context, t tools, name string, st *labState) error {
	veths := map[string]bool{}
	namespaces := map[string]bool{}
	for i := 1; i <= maxNodes; i++ {
		veths[vethName(name, i)] = true
		namespaces[netnsName(name, i)] = true
	}
	bridges := map[string]bool{bridgeName(name): true}
	tables := map[string]bool{nftTableName(name): true}
	if st != nil {
		for _, n := range st.Nodes {
			veths[n.Veth] = true
			namespaces[n.NetNS] = true
		}
		if st.Bridge != "" {
			bridges[st.Bridge] = true
		}
		if st.NFTable != "" {
			tables[st.NFTable] = true
		}
	}
	var errs []error
	for v := range veths {
		if linkExists(v) {
			if _, err := run(ctx, "", t.ip, "link", "del", v); err != nil && linkExists(v) {
				errs = append(errs, fmt.Errorf("while deleting veth %s: %w", v, err))
			}
		}
	}
	for ns := range namespaces {
		if exists, _ := netnsState(ns); exists {
			if _, err := run(ctx, "", t.ip, "netns", "del", ns); err != nil {
				errs = append(errs, fmt.Errorf("while deleting netns %s: %w", ns, err))
			}
		}
	}
	for br := range bridges {
		if linkExists(br) {
			if _, err := run(ctx, "", t.ip, "link", "del", br); err != nil && linkExists(br) {
				errs = append(errs, fmt.Errorf("while deleting bridge %s: %w", br, err))
			}
		}
	}
	for table := range tables {
		if _, err := run(ctx, "", t.nft, "list", "table", "inet", table); err == nil {
			if _, err := run(ctx, "", t.nft, "delete", "table", "inet", table); err != nil {
				errs = append(errs, fmt.Errorf("while deleting nftables table %s: %w", table, err))
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for v := range veths {
		for linkExists(v) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("veth %s still exists 10 s after its deletion", v))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}
