package inventory

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadInventory reads and validates an inventory file.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("while reading inventory: %w", err)
	}
	return ParseInventory(path, data)
}

// ParseInventory parses inventory YAML; file is used in messages only. Every problem is
// reported at once, each as file:line with the variable named and the fix.
func ParseInventory(file string, data []byte) (*Inventory, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ValidationError{Problems: []FieldError{{File: file, Problem: strings.TrimPrefix(err.Error(), "yaml: "),
			Fix: "fix the YAML syntax (indentation with spaces, ':' after keys)"}}}
	}
	verr := &ValidationError{}
	inv := &Inventory{File: file, Clusters: map[string]*Cluster{}}
	if len(root.Content) == 0 {
		verr.add(FieldError{File: file, Problem: "the file is empty", Fix: "start with 'all: {children: {<cluster>: {hosts: ..., vars: ...}}}'"})
		return nil, verr
	}
	doc := resolve(root.Content[0])
	all := lookup(pairs(doc, reportTo(file, "", "", "", verr)), "all")
	if all == nil || all.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: root.Content[0].Line, Problem: "no 'all' group at the top", Fix: "the inventory starts with 'all:' (Pigsty/Ansible format)"})
		return nil, verr
	}
	ap := pairs(all, reportTo(file, "", "all.", "all", verr))
	checkMappingKeys(file, "all", ap, groupKeys, verr)
	globalVars := varsOf(file, lookup(ap, "vars"), "all.vars", "all.vars", verr)
	children := lookup(ap, "children")
	if children == nil || children.Kind != yaml.MappingNode || len(children.Content) == 0 {
		verr.add(FieldError{File: file, Line: all.Line, Field: "all.children", Problem: "no groups", Fix: "add the cluster under all.children, e.g. 'pg-test: {hosts: ..., vars: {pg_cluster: pg-test}}'"})
		return nil, verr
	}
	var metas []*clusterMeta
	for _, cp := range pairs(children, reportTo(file, "", "all.children.", "all.children", verr)) {
		name := cp.key.Value
		if !groupNameRE.MatchString(name) {
			verr.add(FieldError{File: file, Line: cp.key.Line, Where: "all.children", Field: show(name), Problem: "is not a group name",
				Fix: "use letters, digits, '_' and '-' (e.g. pg-test)"})
		}
		c, meta := parseCluster(file, name, cp.key.Line, cp.val, globalVars, verr)
		if c != nil {
			inv.Clusters[name] = c
			metas = append(metas, meta)
		}
	}
	if v := globalVars["pigwf_insecure_plaintext"]; v != nil {
		inv.Plaintext, _ = strconv.ParseBool(v.Value)
	}
	inv.Etcd = etcdEndpoints(globalVars, inv)
	checkAcrossClusters(file, inv, metas, globalVars, verr)
	if len(verr.Problems) > 0 {
		verr.sortByLine()
		return nil, verr
	}
	return inv, nil
}

// etcdEndpoints reads the DCS endpoints from the etcd group, as Pigsty lays it out. etcd_cluster
// and etcd_port are read from all.vars (their values were checked in varsOf).
func etcdEndpoints(global varMap, inv *Inventory) []string {
	c := inv.Clusters[etcdGroup(global)]
	if c == nil {
		return nil
	}
	port := globalKeys["etcd_port"]
	if v := global["etcd_port"]; v != nil {
		port = v.Value
	}
	var out []string
	for _, h := range c.Hosts {
		out = append(out, EtcdScheme(inv.Plaintext)+"://"+net.JoinHostPort(h.Addr, port))
	}
	return out
}

// EtcdScheme is the scheme of etcd's client URLs: https unless the inventory is a plain-text lab.
func EtcdScheme(plaintext bool) string {
	if plaintext {
		return "http"
	}
	return "https"
}

// etcdGroup is the group whose hosts run etcd: etcd_cluster, "etcd" by default.
func etcdGroup(global varMap) string {
	if v := global["etcd_cluster"]; v != nil {
		return v.Value
	}
	return globalKeys["etcd_cluster"]
}

// Cluster returns the named group, or an error listing the groups the inventory has.
func (inv *Inventory) Cluster(name string) (*Cluster, error) {
	if c, ok := inv.Clusters[name]; ok {
		return c, nil
	}
	for _, c := range inv.Clusters { // pg_cluster may differ from the group key
		if c.Name == name {
			return c, nil
		}
	}
	names := make([]string, 0, len(inv.Clusters))
	for n := range inv.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, &ValidationError{Problems: []FieldError{{File: inv.File, Problem: fmt.Sprintf("cluster %q is not in the inventory", name),
		Fix: "clusters there: " + strings.Join(names, ", ")}}}
}

// Primary returns the host with pg_role primary.
func (c *Cluster) Primary() Host {
	for _, h := range c.Hosts {
		if h.Role == RolePrimary {
			return h
		}
	}
	return Host{}
}

// SelectHosts returns the hosts named in addrs (by address or nodename), in inventory order;
// an empty list selects every host.
func (c *Cluster) SelectHosts(addrs []string) ([]Host, error) {
	if len(addrs) == 0 {
		return c.Hosts, nil
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	var out []Host
	for _, h := range c.Hosts {
		if want[h.Addr] || want[h.Node.Nodename] {
			out = append(out, h)
			delete(want, h.Addr)
			delete(want, h.Node.Nodename)
		}
	}
	if len(want) > 0 {
		var missing, have []string
		for a := range want {
			missing = append(missing, a)
		}
		for _, h := range c.Hosts {
			have = append(have, h.Addr)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("nodes %s are not in cluster %s; its nodes are %s", strings.Join(missing, ", "), c.Group, strings.Join(have, ", "))
	}
	return out, nil
}
