// Package inventory loads and validates pigwf's inventory (Pigsty's format): hosts, groups and
// variables resolved host > group > all.vars into one validated Cluster or node list. It has no
// Temporal imports: the CLI validates here before anything is started, and the workflows receive
// the resolved, validated values.
package inventory

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Roles a PostgreSQL instance may have in the inventory (Pigsty's pg_role).
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
	RoleOffline = "offline"
)

// Defaults for node-level variables. They are documented in README.md ("Inventory").
var (
	DefaultSSHUser  = "root"
	DefaultSSHPort  = 22
	DefaultPackages = []string{"postgresql-15", "pgbackrest", "etcd-client"}
	// DefaultSysctl is a conservative PostgreSQL host tuning (a subset of Pigsty's node_tune).
	// Hosts that share a kernel (the lab) override it with per-namespace settings only.
	DefaultSysctl = map[string]string{
		"vm.swappiness":                "1",
		"vm.overcommit_memory":         "2",
		"vm.overcommit_ratio":          "90",
		"net.core.somaxconn":           "4096",
		"net.ipv4.tcp_keepalive_time":  "60",
		"net.ipv4.tcp_keepalive_intvl": "10",
	}
	// DefaultLimits are the postgres user's resource limits (limits.d), as Pigsty sets them.
	DefaultLimits = map[string]string{"nofile": "655360", "nproc": "655360", "memlock": "unlimited"}
)

// clusterNameRE: a DNS label, as Pigsty requires for pg_cluster (it becomes service names).
var clusterNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$`)

// Inventory is a loaded inventory file: groups (clusters) and their hosts.
type Inventory struct {
	File     string
	Clusters map[string]*Cluster // by group name
	// Etcd lists the DCS client endpoints: the hosts of the group named by etcd_cluster
	// (default "etcd"), as http://<addr>:<etcd_port>, in etcd_seq order.
	Etcd []string
}

// Cluster is one group under all.children. PostgreSQL clusters have vars.pg_cluster.
type Cluster struct {
	Group     string // the group's key under all.children
	Name      string // vars.pg_cluster ("" for groups that are not PostgreSQL clusters)
	Line      int
	Hosts     []Host // sorted by pg_seq, then address
	Users     []User
	Databases []Database
	HBARules  []HBARule
	PG        PGVars
}

// PGVars are the cluster-level PostgreSQL, HA and backup settings (documented in README.md).
type PGVars struct {
	Port                int               `json:"port"`                  // pg_port
	DataDir             string            `json:"data_dir"`              // pg_data
	BinDir              string            `json:"bin_dir"`               // pg_bin_dir
	Checksums           bool              `json:"checksums"`             // pg_checksum
	Parameters          map[string]string `json:"parameters"`            // pg_parameters
	Namespace           string            `json:"namespace"`             // pg_namespace: DCS key prefix
	SyncMode            bool              `json:"sync_mode"`             // pg_synchronous_mode
	SyncStrict          bool              `json:"sync_strict"`           // pg_synchronous_mode_strict
	RPO                 int64             `json:"rpo"`                   // pg_rpo: maximum_lag_on_failover in bytes
	ReplicationUser     string            `json:"replication_user"`      // pg_replication_username
	AdminUser           string            `json:"admin_user"`            // pg_admin_username
	BackupRepoPath      string            `json:"backup_repo_path"`      // pgbackrest_repo_path
	BackupRetentionFull int               `json:"backup_retention_full"` // pgbackrest_retention_full
	Approvers           []string          `json:"approvers"`             // pigwf_approvers: who may approve risky runbooks
	ApprovalTimeout     string            `json:"approval_timeout"`      // pigwf_approval_timeout, e.g. 1h
	ReplicationPassword string            `json:"-"`                     // pg_replication_password: a secret
	AdminPassword       string            `json:"-"`                     // pg_admin_password: a secret
}

// Defaults of PGVars.
func defaultPGVars() PGVars {
	return PGVars{Port: 5432, DataDir: "/pg/data", BinDir: "/usr/lib/postgresql/15/bin", Checksums: true, Parameters: map[string]string{},
		Namespace: "/pigwf", RPO: 1 << 20, ReplicationUser: "replicator", AdminUser: "dbuser_dba",
		BackupRepoPath: "/pg/backup", BackupRetentionFull: 2}
}

// Host is one node of a cluster with its effective variables (host > group > all).
type Host struct {
	Addr string // the key under hosts: an IP address or a resolvable name
	Line int
	Seq  int    // pg_seq
	Role string // pg_role
	Node NodeVars
}

// NodeVars are the node-level settings pigwf reads. Everything else in the inventory is kept
// by Pigsty and ignored here.
type NodeVars struct {
	SSHHost    string            `json:"ssh_host"`     // ansible_host, default Addr
	SSHPort    int               `json:"ssh_port"`     // ansible_port, default 22
	SSHUser    string            `json:"ssh_user"`     // ansible_user, default root
	SSHKeyFile string            `json:"ssh_key_file"` // ansible_ssh_private_key_file, default: agent, then ~/.ssh/id_ed25519, id_rsa
	KnownHosts string            `json:"known_hosts"`  // pigwf_known_hosts, default ~/.ssh/known_hosts
	Nodename   string            `json:"nodename"`     // nodename, default <pg_cluster>-<pg_seq>
	Packages   []string          `json:"packages"`     // node_packages
	Sysctl     map[string]string `json:"sysctl"`       // node_sysctl_params
	Limits     map[string]string `json:"limits"`       // node_limits (postgres user)
}

// User is an entry of pg_users. Password is a secret: it never goes into workflow inputs.
type User struct {
	Name      string   `yaml:"name"`
	Password  string   `yaml:"password"`
	Roles     []string `yaml:"roles"`
	Comment   string   `yaml:"comment"`
	Login     *bool    `yaml:"login"`
	Superuser bool     `yaml:"superuser"`
	Line      int      `yaml:"-"`
}

// Database is an entry of pg_databases.
type Database struct {
	Name    string `yaml:"name"`
	Owner   string `yaml:"owner"`
	Comment string `yaml:"comment"`
	Line    int    `yaml:"-"`
}

// HBARule is an entry of pg_hba_rules in Pigsty's alias form.
type HBARule struct {
	User  string `yaml:"user"`
	DB    string `yaml:"db"`
	Addr  string `yaml:"addr"`
	Auth  string `yaml:"auth"`
	Title string `yaml:"title"`
	Line  int    `yaml:"-"`
}

// FieldError is one problem found in an inventory, located by file and line.
type FieldError struct {
	File, Where, Field, Problem, Fix string
	Line                             int
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; " + e.Fix)
	}
	return b.String()
}

// ValidationError collects every problem of one inventory, so a user fixes them in one pass.
type ValidationError struct{ Problems []FieldError }

func (v *ValidationError) Error() string {
	lines := make([]string, len(v.Problems))
	for i, p := range v.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

func (v *ValidationError) add(p FieldError) { v.Problems = append(v.Problems, p) }

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

type varMap map[string]*yaml.Node

func varsOf(file string, n *yaml.Node, where string, verr *ValidationError) varMap {
	out := varMap{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: n.Line, Field: where, Problem: "must be a mapping of variable: value", Fix: "indent the variables under '" + where + ":'"})
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

func parseCluster(file, group string, line int, n *yaml.Node, global varMap, verr *ValidationError) *Cluster {
	where := "cluster " + group
	if n.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: line, Where: where, Problem: "must be a mapping with hosts and vars"})
		return nil
	}
	groupVars := varsOf(file, mapGet(n, "vars"), group+".vars", verr)
	c := &Cluster{Group: group, Line: line}
	if v, ok := groupVars["pg_cluster"]; ok {
		c.Name = v.Value
		if !clusterNameRE.MatchString(c.Name) {
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "pg_cluster", Problem: fmt.Sprintf("%q is not a valid cluster name", c.Name),
				Fix: "use lower-case letters, digits and '-', starting with a letter (a DNS label, e.g. pg-test)"})
		}
	}
	hostsNode := mapGet(n, "hosts")
	if hostsNode == nil || hostsNode.Kind != yaml.MappingNode || len(hostsNode.Content) == 0 {
		verr.add(FieldError{File: file, Line: line, Where: where, Field: "hosts", Problem: "no hosts", Fix: "list the nodes under hosts, e.g. '10.10.10.11: {pg_seq: 1, pg_role: primary}'"})
		return nil
	}
	seqs := map[int]string{}
	var primaries []string
	for i := 0; i+1 < len(hostsNode.Content); i += 2 {
		key, val := hostsNode.Content[i], hostsNode.Content[i+1]
		h := Host{Addr: key.Value, Line: key.Line}
		hwhere := where + ", host " + h.Addr
		if !validHost(h.Addr) {
			verr.add(FieldError{File: file, Line: key.Line, Where: hwhere, Problem: "is not an IP address or host name", Fix: "use the node's address, e.g. 10.10.10.11"})
		}
		hostVars := varMap{}
		if val.Kind == yaml.MappingNode {
			hostVars = varsOf(file, val, h.Addr, verr)
		} else if !(val.Kind == yaml.ScalarNode && val.Tag == "!!null") {
			verr.add(FieldError{File: file, Line: val.Line, Where: hwhere, Problem: "host variables must be a mapping", Fix: "write '{pg_seq: 1, pg_role: primary}'"})
		}
		eff := merge(global, groupVars, hostVars)
		h.Node = nodeVars(file, hwhere, h.Addr, eff, verr)
		if c.Name != "" || eff["pg_seq"] != nil || eff["pg_role"] != nil {
			parsePgIdentity(file, hwhere, key.Line, c, &h, eff, seqs, &primaries, verr)
		}
		c.Hosts = append(c.Hosts, h)
	}
	if c.Name != "" {
		switch {
		case len(primaries) == 0:
			verr.add(FieldError{File: file, Line: line, Where: where, Problem: "has no primary", Fix: "set pg_role: primary on exactly one host"})
		case len(primaries) > 1:
			verr.add(FieldError{File: file, Line: line, Where: where, Problem: "has " + strconv.Itoa(len(primaries)) + " primaries (" + strings.Join(primaries, ", ") + ")",
				Fix: "keep pg_role: primary on exactly one host and make the others replica"})
		}
		c.Users = decodeList[User](file, where, "pg_users", eff0(global, groupVars, "pg_users"), verr)
		c.Databases = decodeList[Database](file, where, "pg_databases", eff0(global, groupVars, "pg_databases"), verr)
		c.HBARules = decodeList[HBARule](file, where, "pg_hba_rules", eff0(global, groupVars, "pg_hba_rules"), verr)
		validateUsersAndDBs(file, where, c, verr)
		c.PG = pgVars(file, where, merge(global, groupVars), verr)
	}
	sort.SliceStable(c.Hosts, func(i, j int) bool { return c.Hosts[i].Seq < c.Hosts[j].Seq })
	return c
}

func parsePgIdentity(file, hwhere string, line int, c *Cluster, h *Host, eff varMap, seqs map[int]string, primaries *[]string, verr *ValidationError) {
	if c.Name == "" {
		verr.add(FieldError{File: file, Line: line, Where: hwhere, Problem: "has pg_seq/pg_role but its group has no pg_cluster", Fix: "add 'pg_cluster: " + c.Group + "' under " + c.Group + ".vars"})
		return
	}
	seqNode := eff["pg_seq"]
	if seqNode == nil {
		verr.add(FieldError{File: file, Line: line, Where: hwhere, Field: "pg_seq", Problem: "is missing", Fix: "give every host a unique positive pg_seq (1, 2, 3, ...)"})
	} else if n, err := strconv.Atoi(seqNode.Value); err != nil || n < 1 {
		verr.add(FieldError{File: file, Line: seqNode.Line, Where: hwhere, Field: "pg_seq", Problem: fmt.Sprintf("%q is not a positive integer", seqNode.Value), Fix: "use 1, 2, 3, ..."})
	} else if other, dup := seqs[n]; dup {
		verr.add(FieldError{File: file, Line: seqNode.Line, Where: hwhere, Field: "pg_seq", Problem: fmt.Sprintf("%d is also used by host %s", n, other), Fix: "pg_seq must be unique within the cluster"})
	} else {
		seqs[n] = h.Addr
		h.Seq = n
	}
	roleNode := eff["pg_role"]
	if roleNode == nil {
		verr.add(FieldError{File: file, Line: line, Where: hwhere, Field: "pg_role", Problem: "is missing", Fix: "set pg_role: primary, replica or offline"})
		return
	}
	switch roleNode.Value {
	case RolePrimary:
		*primaries = append(*primaries, h.Addr)
	case RoleReplica, RoleOffline:
	default:
		verr.add(FieldError{File: file, Line: roleNode.Line, Where: hwhere, Field: "pg_role", Problem: fmt.Sprintf("%q is not a role", roleNode.Value), Fix: "use primary, replica or offline"})
	}
	h.Role = roleNode.Value
	if h.Node.Nodename == "" && h.Seq > 0 {
		h.Node.Nodename = fmt.Sprintf("%s-%d", c.Name, h.Seq)
	}
}

func nodeVars(file, where, addr string, eff varMap, verr *ValidationError) NodeVars {
	nv := NodeVars{SSHHost: addr, SSHPort: DefaultSSHPort, SSHUser: DefaultSSHUser, Packages: DefaultPackages, Sysctl: DefaultSysctl, Limits: DefaultLimits}
	str := func(key string, dst *string) {
		if v := eff[key]; v != nil {
			if v.Kind != yaml.ScalarNode {
				verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: key, Problem: "must be a string"})
				return
			}
			*dst = v.Value
		}
	}
	str("ansible_host", &nv.SSHHost)
	str("ansible_user", &nv.SSHUser)
	str("ansible_ssh_private_key_file", &nv.SSHKeyFile)
	str("pigwf_known_hosts", &nv.KnownHosts)
	str("nodename", &nv.Nodename)
	if v := eff["ansible_port"]; v != nil {
		p, err := strconv.Atoi(v.Value)
		if err != nil || p < 1 || p > 65535 {
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "ansible_port", Problem: fmt.Sprintf("%q is not a TCP port", v.Value), Fix: "use 1-65535 (22 by default)"})
		} else {
			nv.SSHPort = p
		}
	}
	if v := eff["node_packages"]; v != nil {
		var pk []string
		if err := v.Decode(&pk); err != nil {
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "node_packages", Problem: "must be a list of package names"})
		} else {
			nv.Packages = pk
		}
	}
	for key, dst := range map[string]*map[string]string{"node_sysctl_params": &nv.Sysctl, "node_limits": &nv.Limits} {
		if v := eff[key]; v != nil {
			m := map[string]string{}
			if err := v.Decode(&m); err != nil {
				verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: key, Problem: "must be a mapping of name: value"})
			} else {
				*dst = m
			}
		}
	}
	for k, v := range nv.Sysctl {
		if !sysctlKeyRE.MatchString(k) || strings.ContainsAny(v, "\n;&|`$") {
			verr.add(FieldError{File: file, Where: where, Field: "node_sysctl_params", Problem: fmt.Sprintf("%s = %q is not a sysctl setting", k, v), Fix: "use dotted names like net.core.somaxconn and plain values"})
		}
	}
	return nv
}

func pgVars(file, where string, eff varMap, verr *ValidationError) PGVars {
	pv := defaultPGVars()
	str := func(key string, dst *string) {
		if v := eff[key]; v != nil {
			*dst = v.Value
		}
	}
	integer := func(key string, dst *int64, min int64) {
		if v := eff[key]; v != nil {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || n < min {
				verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: key, Problem: fmt.Sprintf("%q is not an integer >= %d", v.Value, min)})
				return
			}
			*dst = n
		}
	}
	boolean := func(key string, dst *bool) {
		if v := eff[key]; v != nil {
			b, err := strconv.ParseBool(v.Value)
			if err != nil {
				verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: key, Problem: fmt.Sprintf("%q is not true or false", v.Value)})
				return
			}
			*dst = b
		}
	}
	var port, retention int64 = int64(pv.Port), int64(pv.BackupRetentionFull)
	integer("pg_port", &port, 1)
	integer("pg_rpo", &pv.RPO, 0)
	integer("pgbackrest_retention_full", &retention, 1)
	if port > 65535 {
		verr.add(FieldError{File: file, Where: where, Field: "pg_port", Problem: fmt.Sprintf("%d is not a TCP port", port)})
	}
	pv.Port, pv.BackupRetentionFull = int(port), int(retention)
	str("pg_data", &pv.DataDir)
	str("pg_bin_dir", &pv.BinDir)
	str("pg_namespace", &pv.Namespace)
	str("pg_replication_username", &pv.ReplicationUser)
	str("pg_replication_password", &pv.ReplicationPassword)
	str("pg_admin_username", &pv.AdminUser)
	str("pg_admin_password", &pv.AdminPassword)
	str("pgbackrest_repo_path", &pv.BackupRepoPath)
	boolean("pg_checksum", &pv.Checksums)
	boolean("pg_synchronous_mode", &pv.SyncMode)
	boolean("pg_synchronous_mode_strict", &pv.SyncStrict)
	str("pigwf_approval_timeout", &pv.ApprovalTimeout)
	if pv.ApprovalTimeout != "" {
		if d, err := time.ParseDuration(pv.ApprovalTimeout); err != nil || d <= 0 {
			verr.add(FieldError{File: file, Where: where, Field: "pigwf_approval_timeout", Problem: fmt.Sprintf("%q is not a duration", pv.ApprovalTimeout), Fix: "write it like 30m or 2h"})
		}
	}
	if v := eff["pigwf_approvers"]; v != nil {
		if err := v.Decode(&pv.Approvers); err != nil {
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "pigwf_approvers", Problem: "must be a list of names", Fix: "write [alice, bob]"})
		}
	}
	if v := eff["pg_parameters"]; v != nil {
		m := map[string]string{}
		if err := v.Decode(&m); err != nil {
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "pg_parameters", Problem: "must be a mapping of parameter: value"})
		}
		for k, val := range m {
			if !identRE.MatchString(k) || strings.ContainsAny(val, "\n") {
				verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: "pg_parameters", Problem: fmt.Sprintf("%s = %q is not a PostgreSQL setting", k, val)})
			}
		}
		pv.Parameters = m
	}
	for _, p := range []struct{ field, path string }{{"pg_data", pv.DataDir}, {"pg_bin_dir", pv.BinDir}, {"pgbackrest_repo_path", pv.BackupRepoPath}} {
		if !strings.HasPrefix(p.path, "/") || strings.ContainsAny(p.path, " '\"$`;") {
			verr.add(FieldError{File: file, Where: where, Field: p.field, Problem: fmt.Sprintf("%q is not an absolute path", p.path), Fix: "use a plain absolute path"})
		}
	}
	for _, u := range []struct{ field, name string }{{"pg_replication_username", pv.ReplicationUser}, {"pg_admin_username", pv.AdminUser}} {
		if !identRE.MatchString(u.name) {
			verr.add(FieldError{File: file, Where: where, Field: u.field, Problem: fmt.Sprintf("%q is not a valid role name", u.name)})
		}
	}
	if !strings.HasPrefix(pv.Namespace, "/") {
		verr.add(FieldError{File: file, Where: where, Field: "pg_namespace", Problem: fmt.Sprintf("%q must start with /", pv.Namespace)})
	}
	return pv
}

func decodeList[T any](file, where, field string, n *yaml.Node, verr *ValidationError) []T {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		verr.add(FieldError{File: file, Line: n.Line, Where: where, Field: field, Problem: "must be a list", Fix: "write each entry as '- {name: ...}'"})
		return nil
	}
	out := make([]T, 0, len(n.Content))
	for _, item := range n.Content {
		var v T
		if err := item.Decode(&v); err != nil {
			verr.add(FieldError{File: file, Line: item.Line, Where: where, Field: field, Problem: strings.TrimPrefix(err.Error(), "yaml: ")})
			continue
		}
		setLine(&v, item.Line)
		out = append(out, v)
	}
	return out
}

func setLine(v any, line int) {
	switch x := v.(type) {
	case *User:
		x.Line = line
	case *Database:
		x.Line = line
	case *HBARule:
		x.Line = line
	}
}

var sysctlKeyRE = regexp.MustCompile(`^[a-z0-9_.]+$`)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_$]{0,62}$`)

func validateUsersAndDBs(file, where string, c *Cluster, verr *ValidationError) {
	users := map[string]bool{"postgres": true}
	for _, u := range c.Users {
		if !identRE.MatchString(u.Name) {
			verr.add(FieldError{File: file, Line: u.Line, Where: where, Field: "pg_users.name", Problem: fmt.Sprintf("%q is not a valid role name", u.Name), Fix: "use lower-case letters, digits and '_'"})
		}
		users[u.Name] = true
	}
	for _, d := range c.Databases {
		if !identRE.MatchString(d.Name) {
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: "pg_databases.name", Problem: fmt.Sprintf("%q is not a valid database name", d.Name), Fix: "use lower-case letters, digits and '_'"})
		}
		if d.Owner != "" && !users[d.Owner] {
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: "pg_databases.owner", Problem: fmt.Sprintf("owner %q of database %s is not in pg_users", d.Owner, d.Name), Fix: "add the user to pg_users or change the owner"})
		}
	}
	for _, r := range c.HBARules {
		if r.User == "" || r.DB == "" || r.Addr == "" || r.Auth == "" {
			verr.add(FieldError{File: file, Line: r.Line, Where: where, Field: "pg_hba_rules", Problem: "a rule needs user, db, addr and auth", Fix: "e.g. '{user: dbuser_meta, db: all, addr: intra, auth: pwd}'"})
		}
	}
}

func merge(layers ...varMap) varMap {
	out := varMap{}
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return out
}

func eff0(global, group varMap, key string) *yaml.Node {
	if v := group[key]; v != nil {
		return v
	}
	return global[key]
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validHost(s string) bool { return net.ParseIP(s) != nil || hostnameRE.MatchString(s) }

// IsValidation reports whether err is an inventory problem (the user must fix the file).
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
