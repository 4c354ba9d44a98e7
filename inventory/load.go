package inventory

import (
	"fmt"
	"net"
	"os"
	"sort"
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

// ParseInventory parses inventory YAML; file is used in messages only.
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
	doc := root.Content[0]
	all := mapGet(doc, "all")
	if all == nil || all.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: doc.Line, Problem: "no 'all' group at the top", Fix: "the inventory starts with 'all:' (Pigsty/Ansible format)"})
		return nil, verr
	}
	globalVars := varsOf(file, mapGet(all, "vars"), "all.vars", verr)
	children := mapGet(all, "children")
	if children == nil || children.Kind != yaml.MappingNode || len(children.Content) == 0 {
		verr.add(FieldError{File: file, Line: all.Line, Field: "all.children", Problem: "no groups", Fix: "add the cluster under all.children, e.g. 'pg-test: {hosts: ..., vars: {pg_cluster: pg-test}}'"})
		return nil, verr
	}
	for i := 0; i+1 < len(children.Content); i += 2 {
		name, group := children.Content[i].Value, children.Content[i+1]
		c := parseCluster(file, name, children.Content[i].Line, group, globalVars, verr)
		if c != nil {
			inv.Clusters[name] = c
		}
	}
	inv.Etcd = etcdEndpoints(file, globalVars, inv, verr)
	if len(verr.Problems) > 0 {
		return nil, verr
	}
	return inv, nil
}

// etcdEndpoints reads the DCS endpoints from the etcd group, as Pigsty lays it out.
func etcdEndpoints(file string, global varMap, inv *Inventory, verr *ValidationError) []string {
	group := "etcd"
	if v := global["etcd_cluster"]; v != nil {
		group = v.Value
	}
	c := inv.Clusters[group]
	if c == nil {
		return nil
	}
	port := "2379"
	if v := global["etcd_port"]; v != nil {
		port = v.Value
	}
	var out []string
	for _, h := range c.Hosts {
		out = append(out, "http://"+net.JoinHostPort(h.Addr, port))
	}
	return out
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
