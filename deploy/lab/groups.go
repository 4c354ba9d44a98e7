package lab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// How a lab's nodes fall into the inventory's groups: the first Nodes-Bare nodes split evenly, in
// order, over the PostgreSQL clusters (each cluster's first node its primary), the last Bare nodes
// in the group BareGroup, in no PostgreSQL cluster. A node keeps its place while the lab grows.

// BareGroup is the inventory group of the lab's bare nodes (Pigsty's default node_cluster):
// `pigwf start node-init --cluster nodes` prepares them.
const BareGroup = "nodes"

// bareNodename is the nodename the inventory gives lab node i when it is bare: its own number,
// so a node keeps its name while the lab grows.
func bareNodename(node int) string { return "node-" + strconv.Itoa(node) }

// slot is a node's place in the inventory: member seq (1-based) of cluster index cluster, or a
// bare node (cluster -1, seq 0).
type slot struct {
	cluster, seq int
}

func (s slot) bare() bool { return s.cluster < 0 }

// splitNodes gives each of nodes nodes its slot: the first nodes-bare over clusters clusters, the
// rest bare. The errors name the flags that fix them.
func splitNodes(nodes, clusters, bare int) ([]slot, error) {
	if bare < 0 || bare > nodes {
		return nil, fmt.Errorf("bad bare node count %d (--bare): want 0 to the node count %d", bare, nodes)
	}
	members := nodes - bare
	switch {
	case members == 0 && clusters > 0:
		return nil, fmt.Errorf("all %d nodes are bare (--bare %d): no node is left for the %d PostgreSQL cluster(s): lower --bare, or give no --clusters", nodes, bare, clusters)
	case members > 0 && clusters == 0:
		return nil, fmt.Errorf("%d nodes are in no group: name their PostgreSQL clusters (--clusters) or make them bare (--bare %d)", members, nodes)
	case clusters > 0 && members%clusters != 0:
		return nil, fmt.Errorf("%d nodes (--nodes %d less --bare %d) do not split evenly over %d clusters: use --nodes %d or %d, or --bare %d",
			members, nodes, bare, clusters, nodes-members%clusters, nodes+clusters-members%clusters, bare+members%clusters)
	}
	out := make([]slot, 0, nodes)
	per := 0
	if clusters > 0 {
		per = members / clusters
	}
	for i := range members {
		out = append(out, slot{cluster: i / per, seq: i%per + 1})
	}
	for range bare {
		out = append(out, slot{cluster: -1})
	}
	return out, nil
}

// checkClusterNames: each a PostgreSQL cluster name, none twice, none the name of the lab's other
// groups.
func checkClusterNames(names []string) error {
	for i, n := range names {
		if !clusterNamePattern.MatchString(n) {
			return fmt.Errorf("lab: bad cluster name %q (--clusters): use lower-case letters, digits and '-'", n)
		}
		if n == BareGroup || n == etcdGroup {
			return fmt.Errorf("lab: cluster name %q (--clusters) is the lab's group of %s: pick another name", n, map[bool]string{true: "bare nodes", false: "etcd members"}[n == BareGroup])
		}
		if slices.Contains(names[:i], n) {
			return fmt.Errorf("lab: cluster %q is named twice (--clusters %s)", n, strings.Join(names, ","))
		}
	}
	return nil
}

// etcdGroup is the inventory group of the lab's etcd members.
const etcdGroup = "etcd"

// clusterNames are the PostgreSQL clusters of a lab's state; a state written before a lab could
// have several names only Cluster.
func (st *labState) clusterNames() []string {
	if len(st.Clusters) == 0 && st.Cluster != "" {
		return []string{st.Cluster}
	}
	return st.Clusters
}

// slots are the places of st's nodes.
func (st *labState) slots() ([]slot, error) {
	return splitNodes(len(st.Nodes), len(st.clusterNames()), st.Bare)
}

// checkPlacesKept refuses a layout that moves a running lab's node: its data directory, its
// agent and its nodename belong to the place it has. A cluster may be renamed (the inventory
// says so; the nodes keep their work), clusters and bare nodes may be added.
func checkPlacesKept(st *labState, c Config) error {
	if len(st.Nodes) == 0 {
		return nil
	}
	old, err := st.slots()
	if err != nil {
		return fmt.Errorf("lab: the state of lab %s: %w", st.Name, err)
	}
	now, err := splitNodes(c.Nodes, len(c.Clusters), c.Bare)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	oldNames := st.clusterNames()
	for i, was := range old {
		if now[i] == was {
			continue
		}
		return fmt.Errorf("lab: lab %s's node %s (%s) is %s; --nodes %d --clusters %s --bare %d would make it %s: a node keeps its place while the lab runs: grow it with more bare nodes (--bare), or with more clusters while it has no bare nodes; or run `pigwf lab down` first",
			st.Name, st.Nodes[i].Name, st.Nodes[i].Addr, describeSlot(was, oldNames), c.Nodes, strings.Join(c.Clusters, ","), c.Bare, describeSlot(now[i], c.Clusters))
	}
	return nil
}

func describeSlot(s slot, clusters []string) string {
	if s.bare() {
		return "a bare node (group " + BareGroup + ")"
	}
	return fmt.Sprintf("member %d of %s", s.seq, clusters[s.cluster])
}

// Group is one inventory group of lab nodes: a PostgreSQL cluster or the bare nodes.
type Group struct {
	Name       string `json:"name"`
	PostgreSQL bool   `json:"postgresql"` // a PostgreSQL cluster (false: BareGroup)
	Nodes      []int  `json:"nodes"`      // lab node numbers (1-based), in order
}

// groupsOf lists st's groups: the clusters in order, then the bare nodes.
func groupsOf(st *labState) ([]Group, error) {
	slots, err := st.slots()
	if err != nil {
		return nil, err
	}
	var groups []Group
	for _, name := range st.clusterNames() {
		groups = append(groups, Group{Name: name, PostgreSQL: true})
	}
	var bare *Group
	for i, s := range slots {
		if !s.bare() {
			groups[s.cluster].Nodes = append(groups[s.cluster].Nodes, i+1)
			continue
		}
		if bare == nil {
			groups = append(groups, Group{Name: BareGroup})
			bare = &groups[len(groups)-1]
		}
		bare.Nodes = append(bare.Nodes, i+1)
	}
	return groups, nil
}
