package lab

import (
	"fmt"
	"hash/fnv"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Config describes one lab. The zero value is the default demo lab.
type Config struct {
	Name   string // lab name, default "pigwf"; prefix of the netns ("<name>-n1"), bridge and veth names
	Nodes  int    // number of nodes, default 3, at most maxNodes (node i gets <Subnet>.<10+i>)
	Subnet string // first three octets of the lab /24, default "10.213.0"; the bridge is <Subnet>.1
	Dir    string // state directory, default "/var/lib/pigwf-lab/<Name>"
	// Cluster is the PostgreSQL cluster written into the inventory when there is one, default
	// "pg-test": the same as Clusters: []string{Cluster}. With Clusters set, it is their first.
	Cluster string
	// Clusters are the PostgreSQL clusters of the inventory: the first Nodes-Bare nodes split
	// evenly over them in order (groups.go). Default: the one Cluster, when any node is left for it.
	Clusters []string
	// Bare is how many nodes, the last ones, are in no PostgreSQL cluster: the inventory group
	// BareGroup, for NodeInit alone (a fleet of hosts, as Pigsty's node.yml prepares them).
	Bare int
	// Etcd is the number of etcd members, one per node on nodes 1..Etcd, each
	// a boot service of its node. 0 means the default min(3, Nodes), so the
	// zero Config stays the default demo lab; NoEtcd means no etcd at all.
	// The membership is fixed when the lab is created: a lab grown with the default keeps the
	// members it was created with, and its new nodes are PostgreSQL nodes only.
	Etcd int
	// CADir is the deployment CA the lab's etcd certificates come from and trust; default
	// "<Dir>/ca". `pigwf lab up` passes the worker's ($PIGWF_HOME/ca), so NodeInit finds the same
	// CA. Fixed when the lab is created.
	CADir string
	// Plaintext makes a lab without TLS (etcd over http, and pigwf_insecure_plaintext in the
	// inventory): a benchmark's baseline, never the default.
	Plaintext bool
}

// NoEtcd as Config.Etcd makes a lab without etcd.
const NoEtcd = -1

const (
	defaultName  = "pigwf"
	defaultNodes = 3
	// maxNodes bounds a lab: node addresses are <Subnet>.11 .. <Subnet>.<10+maxNodes>, so nodes
	// 1..9 keep the .11 .. .19 of the labs made when nine was the limit.
	maxNodes       = 48
	defaultSubnet  = "10.213.0"
	defaultDirRoot = "/var/lib/pigwf-lab"
	defaultCluster = "pg-test"
	defaultEtcd    = 3  // members: a quorum survives one lost node
	ifNameMax      = 15 // IFNAMSIZ - 1
)

// WithDefaults fills the empty fields of c.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.Nodes == 0 {
		c.Nodes = defaultNodes
	}
	if c.Subnet == "" {
		c.Subnet = defaultSubnet
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(defaultDirRoot, c.Name)
	}
	if len(c.Clusters) == 0 && c.Cluster != "" {
		c.Clusters = []string{c.Cluster}
	}
	if len(c.Clusters) == 0 && c.Nodes > c.Bare {
		c.Clusters = []string{defaultCluster}
	}
	if c.Cluster == "" && len(c.Clusters) > 0 {
		c.Cluster = c.Clusters[0]
	}
	if c.Etcd == 0 {
		c.Etcd = min(defaultEtcd, c.Nodes)
	}
	if c.CADir == "" {
		c.CADir = filepath.Join(c.Dir, "ca")
	}
	return c
}

var (
	labNamePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)
	clusterNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	// the Dir ends up in sshd_config and a shell script: keep it to plain path characters
	dirPattern = regexp.MustCompile(`^/[A-Za-z0-9_./+-]+$`)
)

// validate checks a Config that already has its defaults.
func (c Config) validate() error {
	if !labNamePattern.MatchString(c.Name) {
		return fmt.Errorf("lab: bad lab name %q: use letters, digits, '-' or '_' (at most 32)", c.Name)
	}
	if c.Nodes < 1 || c.Nodes > maxNodes {
		return fmt.Errorf("lab: bad node count %d (--nodes): want 1 to %d", c.Nodes, maxNodes)
	}
	if _, err := parseSubnet(c.Subnet); err != nil {
		return err
	}
	if !dirPattern.MatchString(c.Dir) || filepath.Clean(c.Dir) != c.Dir || c.Dir == "/" || strings.Count(c.Dir, "/") < 2 {
		return fmt.Errorf("lab: bad state dir %q: want an absolute, clean path below a top-level directory, made of letters, digits and _ . / + -", c.Dir)
	}
	if len(c.Clusters) > 0 && c.Cluster != c.Clusters[0] {
		return fmt.Errorf("lab: cluster %q is not the first of the clusters %s: set Clusters alone", c.Cluster, strings.Join(c.Clusters, ","))
	}
	if err := checkClusterNames(c.Clusters); err != nil {
		return err
	}
	if _, err := splitNodes(c.Nodes, len(c.Clusters), c.Bare); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if !filepath.IsAbs(c.CADir) || filepath.Clean(c.CADir) != c.CADir {
		return fmt.Errorf("lab: bad CA dir %q: want an absolute, clean path", c.CADir)
	}
	if c.Etcd != NoEtcd && (c.Etcd < 1 || c.Etcd > c.Nodes) {
		return fmt.Errorf("lab: bad etcd member count %d: want 1 to %d (one per node), or NoEtcd", c.Etcd, c.Nodes)
	}
	return nil
}

// parseSubnet checks "a.b.c" and returns the /24 it names. Only private
// (RFC 1918) ranges are accepted so lab addresses can never shadow real hosts.
func parseSubnet(subnet string) (*net.IPNet, error) {
	parts := strings.Split(subnet, ".")
	ip := net.ParseIP(subnet + ".0").To4()
	if len(parts) != 3 || ip == nil {
		return nil, fmt.Errorf("lab: bad subnet %q: want three octets such as %q", subnet, defaultSubnet)
	}
	if !ip.IsPrivate() {
		return nil, fmt.Errorf("lab: subnet %q is not a private (RFC 1918) range", subnet)
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}, nil
}

// ifName is the lab's interface name with suffix ("-br", "-v12"). Interface names are at most
// 15 bytes, so a lab name too long for the suffix is shortened deterministically: its first
// bytes plus a 16-bit hash of the whole name. With a 3-byte suffix ("-br", "-v9") names up to
// 12 bytes stay whole, as they always did; node 10 and up take one byte more.
func ifName(labName, suffix string) string {
	maxPrefix := ifNameMax - len(suffix)
	if len(labName) <= maxPrefix {
		return labName + suffix
	}
	h := fnv.New32a()
	h.Write([]byte(labName))
	return fmt.Sprintf("%s%04x%s", labName[:maxPrefix-4], h.Sum32()&0xffff, suffix)
}

func bridgeName(labName string) string { return ifName(labName, "-br") }

func vethName(labName string, node int) string { return ifName(labName, "-v"+strconv.Itoa(node)) }

func netnsName(labName string, node int) string { return labName + "-n" + strconv.Itoa(node) }

func nodeName(node int) string { return "n" + strconv.Itoa(node) }

func nodeAddr(subnet string, node int) string { return subnet + "." + strconv.Itoa(10+node) }

func bridgeAddr(subnet string) string { return subnet + ".1" }

// etcdMembers is how many etcd members a Config with defaults asks for.
func (c Config) etcdMembers() int { return max(c.Etcd, 0) }

// nftTableName names the lab's nftables table (identifiers allow no '-').
func nftTableName(labName string) string {
	return "pigwf_lab_" + strings.ReplaceAll(labName, "-", "_")
}

// bridgeMAC is a fixed, locally administered MAC for the bridge: without one
// the kernel gives the bridge the lowest port MAC, which changes when a node
// is added and leaves stale ARP entries for the gateway in the other nodes.
func bridgeMAC(labName string) string {
	h := fnv.New64a()
	h.Write([]byte("pigwf-lab/" + labName))
	s := h.Sum64()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(s>>32), byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
