package lab

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

func TestSplitNodes(t *testing.T) {
	got, err := splitNodes(11, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []slot{{0, 1}, {0, 2}, {0, 3}, {1, 1}, {1, 2}, {1, 3}, {2, 1}, {2, 2}, {2, 3}, {-1, 0}, {-1, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("11 nodes, 3 clusters, 2 bare: %v, want %v", got, want)
	}
	if got, err := splitNodes(5, 0, 5); err != nil || len(got) != 5 || !got[4].bare() {
		t.Errorf("all bare: %v %v", got, err)
	}
	for _, tc := range []struct {
		nodes, clusters, bare int
		want                  string // in the message: the flags and a fix
	}{
		{10, 3, 0, "use --nodes 9 or 12, or --bare 1"},
		{10, 3, 2, "8 nodes (--nodes 10 less --bare 2) do not split evenly over 3 clusters: use --nodes 8 or 11, or --bare 4"},
		{4, 1, 5, "bad bare node count 5 (--bare)"},
		{3, 1, 3, "no node is left for the 1 PostgreSQL cluster(s): lower --bare"},
		{3, 0, 1, "2 nodes are in no group: name their PostgreSQL clusters (--clusters) or make them bare (--bare 3)"},
	} {
		_, err := splitNodes(tc.nodes, tc.clusters, tc.bare)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d nodes, %d clusters, %d bare: %v, want %q", tc.nodes, tc.clusters, tc.bare, err, tc.want)
		}
	}
}

// The defaults stay one cluster pg-test on every node; all-bare labs have no cluster at all.
func TestClusterDefaults(t *testing.T) {
	for _, tc := range []struct {
		c        Config
		cluster  string
		clusters []string
	}{
		{Config{}, "pg-test", []string{"pg-test"}},
		{Config{Cluster: "pg-x"}, "pg-x", []string{"pg-x"}},
		{Config{Nodes: 9, Clusters: []string{"pg-a", "pg-b", "pg-c"}}, "pg-a", []string{"pg-a", "pg-b", "pg-c"}},
		{Config{Nodes: 5, Bare: 5}, "", nil},
		{Config{Nodes: 5, Bare: 2}, "pg-test", []string{"pg-test"}},
	} {
		c := tc.c.WithDefaults()
		if c.Cluster != tc.cluster || !reflect.DeepEqual(c.Clusters, tc.clusters) {
			t.Errorf("%+v: cluster %q, clusters %v; want %q, %v", tc.c, c.Cluster, c.Clusters, tc.cluster, tc.clusters)
		}
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", tc.c, err)
		}
	}
}

// fleetState is the state of a lab made from c (no processes).
func fleetState(c Config) *labState {
	c = c.WithDefaults()
	st := &labState{Name: c.Name, Subnet: c.Subnet, Cluster: c.Cluster, Clusters: c.Clusters, Bare: c.Bare, Etcd: c.etcdMembers()}
	for i := 1; i <= c.Nodes; i++ {
		st.Nodes = append(st.Nodes, nodeState{Name: nodeName(i), Addr: nodeAddr(c.Subnet, i)})
	}
	return st
}

// The inventory of several clusters and bare nodes loads under pigwf's rules, with every node
// where the lab put it, and NodeInit's input for the bare group names each node.
func TestInventoryOfSeveralClusters(t *testing.T) {
	c := Config{Name: "pwfleet", Subnet: "10.213.50", Nodes: 41, Clusters: []string{"pg-a", "pg-b", "pg-c"}, Bare: 32}.WithDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	st := fleetState(c)
	text, err := renderInventory(layout{c.Dir}, st)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.ParseInventory("lab.yml", text)
	if err != nil {
		t.Fatalf("the inventory does not load: %v\n%s", err, text)
	}
	groups, err := groupsOf(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 4 || groups[3].Name != BareGroup || groups[3].PostgreSQL || len(groups[3].Nodes) != 32 || groups[3].Nodes[0] != 10 {
		t.Fatalf("groups: %+v", groups)
	}
	for _, g := range groups[:3] {
		cl, err := inv.Cluster(g.Name)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Name != g.Name || len(cl.Hosts) != 3 {
			t.Errorf("%s: %+v", g.Name, cl)
			continue
		}
		for k, h := range cl.Hosts {
			wantRole := inventory.RoleReplica
			if k == 0 {
				wantRole = inventory.RolePrimary
			}
			if h.Addr != nodeAddr(c.Subnet, g.Nodes[k]) || h.Seq != k+1 || h.Role != wantRole || h.Node.Nodename != g.Name+"-"+string(rune('1'+k)) {
				t.Errorf("%s host %d: %+v", g.Name, k, h)
			}
		}
	}
	bare, err := inv.Cluster(BareGroup)
	if err != nil {
		t.Fatal(err)
	}
	if bare.Name != "" || len(bare.Hosts) != 32 {
		t.Fatalf("bare group: %+v", bare)
	}
	in, err := starter.NodeInitInput(bare, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.Cluster != BareGroup || len(in.Nodes) != 32 || len(in.Hosts) != 32 {
		t.Fatalf("node-init input of the bare group: %+v", in)
	}
	for k, n := range in.Nodes {
		if n.Node.Addr != nodeAddr(c.Subnet, 10+k) || n.Node.Name != bareNodename(10+k) || n.Node.KnownHosts != (layout{c.Dir}).knownHosts() {
			t.Errorf("bare node %d: %+v", k, n.Node)
		}
	}
	if n := in.Nodes[31].Node.Addr; n != "10.213.50.51" {
		t.Errorf("node 41's address: %s", n)
	}
	if want := []string{"https://10.213.50.11:2379", "https://10.213.50.12:2379", "https://10.213.50.13:2379"}; !reflect.DeepEqual(inv.Etcd, want) {
		t.Errorf("etcd: %v", inv.Etcd)
	}

	// all bare: no PostgreSQL cluster in the file, and it still loads
	all := fleetState(Config{Nodes: 4, Bare: 4})
	text, err = renderInventory(layout{c.Dir}, all)
	if err != nil {
		t.Fatal(err)
	}
	if inv, err := inventory.ParseInventory("lab.yml", text); err != nil || len(inv.Clusters) != 2 || inv.Clusters[BareGroup] == nil {
		t.Errorf("all-bare inventory: %v %+v\n%s", err, inv, text)
	}
}

// A running lab grows with its nodes where they are: more bare nodes, a new cluster after the
// others, a renamed cluster; a layout that would move a node is refused, naming node and fix.
func TestPlacesKeptOnGrow(t *testing.T) {
	three := fleetState(Config{Nodes: 9, Clusters: []string{"pg-a", "pg-b", "pg-c"}})
	single := fleetState(Config{})
	legacy := fleetState(Config{})
	legacy.Clusters = nil // a state written before several clusters
	for _, tc := range []struct {
		st   *labState
		c    Config
		want string // "" accepted
	}{
		{three, Config{Nodes: 12, Clusters: []string{"pg-a", "pg-b", "pg-c"}, Bare: 3}, ""},
		{three, Config{Nodes: 12, Clusters: []string{"pg-a", "pg-b", "pg-c", "pg-d"}}, ""},
		{three, Config{Nodes: 9, Clusters: []string{"pg-x", "pg-b", "pg-c"}}, ""},
		{single, Config{Nodes: 5}, ""},
		{legacy, Config{Nodes: 6, Clusters: []string{"pg-test", "pg-two"}}, ""},
		{three, Config{Nodes: 12, Clusters: []string{"pg-a", "pg-b", "pg-c"}},
			"node n4 (10.213.0.14) is member 1 of pg-b; --nodes 12 --clusters pg-a,pg-b,pg-c --bare 0 would make it member 4 of pg-a"},
		{three, Config{Nodes: 9, Clusters: []string{"pg-a", "pg-b", "pg-c"}, Bare: 3}, "node n3 (10.213.0.13) is member 3 of pg-a; --nodes 9 --clusters pg-a,pg-b,pg-c --bare 3 would make it member 1 of pg-b"},
		{single, Config{Nodes: 6, Bare: 5}, "node n2 (10.213.0.12) is member 2 of pg-test; --nodes 6 --clusters pg-test --bare 5 would make it a bare node (group nodes)"},
	} {
		err := checkPlacesKept(tc.st, tc.c.WithDefaults())
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v -> %+v: %v, want %q", tc.st.clusterNames(), tc.c, err, tc.want)
		}
	}
}

// An inventory changed by hand is kept on growth, and the note names each new host's group.
func TestInventoryNoteNamesGroups(t *testing.T) {
	c := Config{Dir: t.TempDir() + "/lab", Nodes: 6, Clusters: []string{"pg-a", "pg-b"}}.WithDefaults()
	st := fleetState(c)
	l := layout{c.Dir}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if note, err := updateInventory(l, st, st.Nodes); err != nil || note != "" {
		t.Fatalf("first write: %q %v", note, err)
	}
	if err := os.WriteFile(l.inventory(), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.Bare = 1
	st.Nodes = append(st.Nodes, nodeState{Name: nodeName(7), Addr: nodeAddr(c.Subnet, 7)})
	note, err := updateInventory(l, st, st.Nodes[6:])
	if err != nil || !strings.Contains(note, "add the new hosts 10.213.0.17 (node n7) under nodes yourself") {
		t.Errorf("note: %q %v", note, err)
	}
}
