package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/suggest"
	"gopkg.in/yaml.v3"
)

type varMap map[string]*yaml.Node

// varsOf reads a vars mapping (all.vars, a group's or a host's): each variable pigwf reads is
// checked against its rule where it is written, and a variable pigwf would silently ignore
// although it looks meant for it (a typo, an old Ansible name) is refused. where names the
// level in messages; label is the mapping's own name (e.g. pg-test.vars).
func varsOf(file string, n *yaml.Node, where, label string, verr *ValidationError) varMap {
	out := varMap{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: n.Line, Where: where, Field: label, Problem: "must be a mapping of variable: value", Fix: "indent the variables under '" + label + ":'"})
		return out
	}
	for _, p := range pairs(n, reportTo(file, where, "", label, verr)) {
		key := p.key.Value
		if _, bad := badRune(key); bad || key == "" {
			verr.add(FieldError{File: file, Line: p.key.Line, Where: where, Field: show(key), Problem: "is not a variable name", Fix: "remove it (control characters in a name are never meant)"})
			continue
		}
		if problem, fix := checkKey(key); problem != "" {
			verr.add(FieldError{File: file, Line: p.key.Line, Where: where, Field: show(key), Problem: problem, Fix: fix})
		}
		if p.val == nil {
			continue
		}
		if rule := varRules[key]; rule != nil {
			for _, fe := range rule(p.val) {
				fe.File, fe.Where = file, where
				if fe.Field == "" {
					fe.Field = key
				}
				verr.add(fe)
			}
		}
		out[key] = p.val
	}
	return out
}

// reportTo turns problems found while reading a mapping into FieldErrors: Field is prefix+key
// for a problem with one key, label for one with the whole mapping.
func reportTo(file, where, prefix, label string, verr *ValidationError) reporter {
	return func(line int, key, problem, fix string) {
		field := label
		if key != "" {
			field = prefix + show(key)
		}
		verr.add(FieldError{File: file, Line: line, Where: where, Field: field, Problem: problem, Fix: fix})
	}
}

// groupKeys are what an Ansible group (and all) holds; anything else (host:, var:) is a typo
// that would drop the group's hosts or variables.
var groupKeys = []string{"hosts", "vars", "children"}

// checkMappingKeys refuses keys of a group mapping that are not in allowed.
func checkMappingKeys(file, where string, ps []kv, allowed []string, verr *ValidationError) {
	for _, p := range ps {
		if !contains(allowed, p.key.Value) {
			fix := "use " + strings.Join(allowed, ", ")
			if best, d := suggest.Closest(p.key.Value, allowed); d <= 2 {
				fix = fmt.Sprintf("did you mean %s?", best)
			}
			verr.add(FieldError{File: file, Line: p.key.Line, Where: where, Field: show(p.key.Value), Problem: "is not part of a group", Fix: fix})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clusterKeys are the variables pigwf reads per cluster (pgVars, the users, databases and HBA
// rules): it uses the group's value (or all.vars') for every member, so a different value on one
// host would be silently ignored.
var clusterKeys = []string{"pg_cluster", "pg_port", "pg_data", "pg_bin_dir", "pg_namespace", "pg_replication_username",
	"pg_replication_password", "pg_admin_username", "pg_admin_password", "pgbackrest_repo_path", "pgbackrest_retention_full", "pg_backup_source",
	"pg_checksum", "pg_synchronous_mode", "pg_synchronous_mode_strict", "pg_rpo", "pg_rto", "pigwf_approval_timeout", "pigwf_approvers",
	"pg_parameters", "pg_users", "pg_databases", "pg_hba_rules"}

// globalKeys are read from all.vars only (etcdEndpoints), with their defaults.
var globalKeys = map[string]string{"etcd_cluster": "etcd", "etcd_port": "2379", "etcd_peer_port": "2380", "pigwf_insecure_plaintext": "false"}

// checkLevel refuses a variable written at a level pigwf does not read it from, when its value
// differs from the one pigwf uses (the same value, or the default, is harmless).
func checkLevel(file, where string, vars, used varMap, keys []string, defaults map[string]string, why, fix string, verr *ValidationError) {
	for _, k := range keys {
		v, u := vars[k], used[k]
		switch {
		case v == nil || v == u:
		case u != nil && u.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode && u.Value == v.Value:
		case u == nil && v.Kind == yaml.ScalarNode && defaults[k] != "" && v.Value == defaults[k]:
		default:
			verr.add(FieldError{File: file, Line: v.Line, Where: where, Field: k, Problem: "is ignored here: " + why, Fix: fix})
		}
	}
}

// clusterMeta is what the checks across clusters need beyond the Cluster (lines, port uses).
type clusterMeta struct {
	group    string
	nameLine int
	hosts    []hostMeta
}

type hostMeta struct {
	addr, sshHost, where, nodename string
	line, nodenameLine             int
	nodenameSet                    bool      // nodename written, not derived
	ports                          []portUse // of PostgreSQL members only: other groups' hosts are not pigwf's
}

// portUse is one port a service pigwf sets up (or relies on) listens on, on one host.
type portUse struct {
	port     int
	field    string // the variable that sets it ("" for a fixed port)
	what     string // how a message names it
	line     int
	explicit bool // written in the inventory (a clash is reported on the written one)
}

func parseCluster(file, group string, line int, n *yaml.Node, global varMap, verr *ValidationError) (*Cluster, *clusterMeta) {
	where := "cluster " + show(group)
	meta := &clusterMeta{group: group, nameLine: line}
	if n == nil || n.Kind != yaml.MappingNode {
		verr.add(FieldError{File: file, Line: line, Where: where, Problem: "must be a mapping with hosts and vars"})
		return nil, meta
	}
	gp := pairs(n, reportTo(file, where, "", "", verr))
	checkMappingKeys(file, where, gp, groupKeys, verr)
	groupVars := varsOf(file, lookup(gp, "vars"), where, group+".vars", verr)
	checkLevel(file, where, groupVars, global, keysOf(globalKeys), globalKeys, "pigwf reads it from all.vars only", "set it under all.vars", verr)
	c := &Cluster{Group: group, Line: line}
	if v, ok := groupVars["pg_cluster"]; ok && v.Kind == yaml.ScalarNode {
		c.Name = v.Value
		meta.nameLine = v.Line
	}
	hostsNode := lookup(gp, "hosts")
	if hostsNode == nil || hostsNode.Kind != yaml.MappingNode || len(hostsNode.Content) == 0 {
		verr.add(FieldError{File: file, Line: line, Where: where, Field: "hosts", Problem: "no hosts", Fix: "list the nodes under hosts, e.g. '10.10.10.11: {pg_seq: 1, pg_role: primary}'"})
		return nil, meta
	}
	clusterVars := merge(global, groupVars)
	seqs := map[int]string{}
	var primaries []string
	for _, hp := range pairs(hostsNode, reportTo(file, where, "hosts.", "hosts", verr)) {
		key, val := hp.key, hp.val
		h := Host{Addr: key.Value, Line: key.Line}
		hwhere := where + ", host " + show(h.Addr)
		if !validHost(h.Addr) {
			verr.add(FieldError{File: file, Line: key.Line, Where: where, Field: "hosts." + show(h.Addr), Problem: "is not an IP address or host name", Fix: "use the node's address, e.g. 10.10.10.11"})
		}
		hostVars := varMap{}
		if val != nil && val.Kind == yaml.MappingNode {
			hostVars = varsOf(file, val, hwhere, show(h.Addr), verr)
		} else if !(val != nil && val.Kind == yaml.ScalarNode && val.Tag == "!!null") {
			verr.add(FieldError{File: file, Line: key.Line, Where: hwhere, Problem: "host variables must be a mapping", Fix: "write '{pg_seq: 1, pg_role: primary}'"})
		}
		checkLevel(file, hwhere, hostVars, global, keysOf(globalKeys), globalKeys, "pigwf reads it from all.vars only", "set it under all.vars", verr)
		if c.Name != "" {
			checkLevel(file, hwhere, hostVars, clusterVars, clusterKeys, nil, "a cluster setting, which pigwf takes from the group (or all.vars) for every member",
				"set it under "+show(group)+".vars", verr)
		}
		eff := merge(global, groupVars, hostVars)
		h.Node = nodeVars(h.Addr, eff)
		if c.Name != "" || eff["pg_seq"] != nil || eff["pg_role"] != nil {
			parsePgIdentity(file, hwhere, key.Line, c, &h, eff, seqs, &primaries, verr)
			h.Tags = hostTags(file, hwhere, h.Role, eff["pg_tags"], verr)
		}
		c.Hosts = append(c.Hosts, h)
		hm := hostMeta{addr: h.Addr, sshHost: h.Node.SSHHost, where: hwhere, nodename: h.Node.Nodename, line: key.Line, nodenameLine: key.Line}
		if v := eff["nodename"]; v != nil {
			hm.nodenameLine, hm.nodenameSet = v.Line, true
		}
		if c.Name != "" {
			hm.ports = hostPorts(h, eff)
		}
		meta.hosts = append(meta.hosts, hm)
	}
	if c.Name != "" {
		switch {
		case len(primaries) == 0:
			verr.add(FieldError{File: file, Line: line, Where: where, Problem: "has no primary", Fix: "set pg_role: primary on exactly one host"})
		case len(primaries) > 1:
			verr.add(FieldError{File: file, Line: line, Where: where, Problem: "has " + strconv.Itoa(len(primaries)) + " primaries (" + strings.Join(primaries, ", ") + ")",
				Fix: "keep pg_role: primary on exactly one host and make the others replica"})
		}
		// A list from all.vars is reported there, once, however many clusters read it.
		defWhere := func(key string) string {
			if groupVars[key] == nil {
				return "all.vars"
			}
			return where
		}
		c.Users = decodeList[User](file, defWhere("pg_users"), "pg_users", eff0(global, groupVars, "pg_users"), verr)
		c.Databases = decodeList[Database](file, defWhere("pg_databases"), "pg_databases", eff0(global, groupVars, "pg_databases"), verr)
		c.HBARules = decodeList[HBARule](file, defWhere("pg_hba_rules"), "pg_hba_rules", eff0(global, groupVars, "pg_hba_rules"), verr)
		c.PG = pgVars(clusterVars)
		c.ServicesEnabled = true
		if v := eff0(global, groupVars, "haproxy_enabled"); v != nil && v.Kind == yaml.ScalarNode {
			c.ServicesEnabled, _ = strconv.ParseBool(v.Value) // its rule checked the value
		}
		c.Services = clusterServices(file, defWhere("pg_services"), eff0(global, groupVars, "pg_default_services"), eff0(global, groupVars, "pg_services"), verr)
		c.ServiceCheck, _ = serviceTiming(eff0(global, groupVars, "pigwf_service_check")) // its rule reported any problem where it is written
		validateUsersAndDBs(file, where, c, verr)
		pgPort := portUse{port: c.PG.Port, field: "pg_port", what: "its PostgreSQL port (pg_port)", line: line}
		if v := clusterVars["pg_port"]; v != nil {
			pgPort.line, pgPort.explicit = v.Line, true
		}
		for i := range meta.hosts {
			meta.hosts[i].ports = append([]portUse{pgPort, {port: AgentAPIPort, what: fmt.Sprintf("the HA agent's API port (%d, fixed)", AgentAPIPort), line: pgPort.line}}, meta.hosts[i].ports...)
			if c.ServicesEnabled {
				meta.hosts[i].ports = append(meta.hosts[i].ports, servicePorts(c.Services, line)...)
			}
			if c.PG.BackupSource == BackupSourceReplica {
				u := portUse{port: BackupServerPort, what: fmt.Sprintf("pgBackRest's TLS server (%d, fixed, for pg_backup_source: replica)", BackupServerPort), line: line}
				if v := clusterVars["pg_backup_source"]; v != nil {
					u.line = v.Line
				}
				meta.hosts[i].ports = append(meta.hosts[i].ports, u)
			}
		}
	}
	sort.SliceStable(c.Hosts, func(i, j int) bool { return c.Hosts[i].Seq < c.Hosts[j].Seq })
	return c, meta
}

// BackupServerPort is where pgBackRest's TLS server listens on every member when backups are
// taken from a standby (pg_backup_source: replica; pgBackRest's default port): pg_port and the
// other services must not take it then.
const BackupServerPort = 8432

// AgentAPIPort is the port of the HA agent's REST API on every PostgreSQL member (the same as
// starter.AgentAPIPort, which a test checks); pg_port and the other services must not take it.
const AgentAPIPort = 8008

// hostPorts are the ports a host's own variables set: SSH (when SSH reaches the host's own
// address) and PgBouncer when the inventory enables it.
func hostPorts(h Host, eff varMap) []portUse {
	var out []portUse
	if h.Node.SSHHost == h.Addr {
		u := portUse{port: h.Node.SSHPort, field: "ansible_port", what: "its SSH port (ansible_port)", line: h.Line}
		if v := eff["ansible_port"]; v != nil {
			u.line, u.explicit = v.Line, true
		}
		out = append(out, u)
	}
	// PgBouncer counts when the inventory gives it a port or enables it (Pigsty's 6432), and not
	// when it is disabled: pigwf itself does not run one.
	u := portUse{port: 6432, field: "pgbouncer_port", what: "its PgBouncer port (pgbouncer_port)", line: h.Line}
	enabled := false
	if v := eff["pgbouncer_port"]; v != nil {
		if p, ok := portOf(v.Value); ok {
			enabled, u.port, u.line, u.explicit = true, p, v.Line, true
		}
	}
	if v := eff["pgbouncer_enabled"]; v != nil {
		enabled, _ = strconv.ParseBool(v.Value)
	}
	if enabled {
		out = append(out, u)
	}
	return out
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func parsePgIdentity(file, hwhere string, line int, c *Cluster, h *Host, eff varMap, seqs map[int]string, primaries *[]string, verr *ValidationError) {
	if c.Name == "" {
		verr.add(FieldError{File: file, Line: line, Where: hwhere, Problem: "has pg_seq/pg_role but its group has no pg_cluster", Fix: "add 'pg_cluster: " + show(c.Group) + "' under " + show(c.Group) + ".vars"})
		return
	}
	seqNode := eff["pg_seq"]
	if seqNode == nil {
		verr.add(FieldError{File: file, Line: line, Where: hwhere, Field: "pg_seq", Problem: "is missing", Fix: "give every host a unique positive pg_seq (1, 2, 3, ...)"})
	} else if n, err := strconv.Atoi(seqNode.Value); err != nil || n < 1 {
		verr.add(FieldError{File: file, Line: seqNode.Line, Where: hwhere, Field: "pg_seq", Problem: fmt.Sprintf("%q is not a positive integer", seqNode.Value), Fix: "use 1, 2, 3, ..."})
	} else if other, dup := seqs[n]; dup {
		verr.add(FieldError{File: file, Line: seqNode.Line, Where: hwhere, Field: "pg_seq", Problem: fmt.Sprintf("%d is also used by host %s", n, show(other)), Fix: "pg_seq must be unique within the cluster"})
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
		*primaries = append(*primaries, show(h.Addr))
	case RoleReplica, RoleOffline:
	default:
		verr.add(FieldError{File: file, Line: roleNode.Line, Where: hwhere, Field: "pg_role", Problem: fmt.Sprintf("%q is not a role", roleNode.Value), Fix: "use primary, replica or offline"})
	}
	h.Role = roleNode.Value
	if h.Node.Nodename == "" && h.Seq > 0 {
		h.Node.Nodename = fmt.Sprintf("%s-%d", c.Name, h.Seq)
		if p, _ := nodenameProblem(h.Node.Nodename); p != "" && clusterNameRE.MatchString(c.Name) {
			verr.add(FieldError{File: file, Line: seqNode.Line, Where: hwhere, Field: "nodename", Problem: fmt.Sprintf("%q (pg_cluster-pg_seq) is longer than a host name may be", h.Node.Nodename),
				Fix: "set nodename on this host, or use a shorter pg_cluster"})
		}
	}
}

// hostTags reads pg_tags (its values were checked where written). An offline member never
// fails over: a tag saying nofailover: false contradicts its role and is refused rather than
// silently overridden.
func hostTags(file, hwhere, role string, v *yaml.Node, verr *ValidationError) haagent.ClusterTags {
	var t haagent.ClusterTags
	if v == nil || resolve(v) == nil || resolve(v).Kind != yaml.MappingNode {
		return t
	}
	for _, p := range pairs(v, nil) {
		var val string
		if p.val == nil || p.val.Decode(&val) != nil {
			continue // a list or mapping: refused by pg_tags' rule already
		}
		k := p.key.Value
		on, _ := strconv.ParseBool(val)
		switch k {
		case haagent.TagNoFailover:
			t.NoFailover = on
			if !on && role == RoleOffline {
				verr.add(FieldError{File: file, Line: p.key.Line, Where: hwhere, Field: "pg_tags." + k, Problem: "is false on an offline member, which never fails over",
					Fix: "remove nofailover from this host's pg_tags, or make it pg_role: replica"})
			}
		case haagent.TagNoSync:
			t.NoSync = on
		case haagent.TagNoLoadBalance:
			t.NoLoadBalance = on
		default:
			if t.Custom == nil {
				t.Custom = map[string]string{}
			}
			t.Custom[k] = val
		}
	}
	return t
}

// nodeVars reads the node-level variables of one host. Their values were checked where they are
// written (varsOf), so a value that does not parse here was reported already and the default
// stays.
func nodeVars(addr string, eff varMap) NodeVars {
	nv := NodeVars{SSHHost: addr, SSHPort: DefaultSSHPort, SSHUser: DefaultSSHUser, Packages: DefaultPackages, Sysctl: DefaultSysctl, Limits: DefaultLimits}
	str := func(key string, dst *string) {
		if v := eff[key]; v != nil && v.Kind == yaml.ScalarNode {
			*dst = v.Value
		}
	}
	str("ansible_host", &nv.SSHHost)
	str("ansible_user", &nv.SSHUser)
	str("ansible_ssh_private_key_file", &nv.SSHKeyFile)
	str("pigwf_known_hosts", &nv.KnownHosts)
	str("nodename", &nv.Nodename)
	if v := eff["ansible_port"]; v != nil {
		if p, ok := portOf(v.Value); ok {
			nv.SSHPort = p
		}
	}
	if v := eff["node_packages"]; v != nil {
		var pk []string
		if err := v.Decode(&pk); err == nil {
			nv.Packages = pk
		}
	}
	if v := eff["node_sysctl_params"]; v != nil {
		if m, ok := stringMap(v); ok {
			nv.Sysctl = m
		}
	}
	if v := eff["node_limits"]; v != nil {
		if m, ok := stringMap(v); ok {
			nv.Limits = m
		}
	}
	return nv
}

// stringMap reads a mapping of name: value (merge keys applied), each value as a YAML decoder
// reads it into a string.
func stringMap(v *yaml.Node) (map[string]string, bool) {
	if v.Kind != yaml.MappingNode {
		return nil, false
	}
	m := map[string]string{}
	for _, p := range pairs(v, nil) {
		var s string
		if p.val == nil || p.val.Decode(&s) != nil {
			return nil, false
		}
		m[p.key.Value] = s
	}
	return m, true
}

// pgVars reads the cluster-level variables (all.vars, then the group's), checked in varsOf.
func pgVars(eff varMap) PGVars {
	pv := defaultPGVars()
	str := func(key string, dst *string) {
		if v := eff[key]; v != nil && v.Kind == yaml.ScalarNode {
			*dst = v.Value
		}
	}
	integer := func(key string, dst *int64, min int64) {
		if v := eff[key]; v != nil {
			if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil && n >= min {
				*dst = n
			}
		}
	}
	boolean := func(key string, dst *bool) {
		if v := eff[key]; v != nil {
			if b, err := strconv.ParseBool(v.Value); err == nil {
				*dst = b
			}
		}
	}
	if v := eff["pg_port"]; v != nil {
		if p, ok := portOf(v.Value); ok && p > 0 {
			pv.Port = p
		}
	}
	retention := int64(pv.BackupRetentionFull)
	integer("pg_rpo", &pv.RPO, 0)
	if v := eff["pg_rto"]; v != nil {
		if d, err := ParseRTO(v.Value); err == nil {
			pv.RTO = d
		}
	}
	integer("pgbackrest_retention_full", &retention, 1)
	pv.BackupRetentionFull = int(retention)
	str("pg_data", &pv.DataDir)
	str("pg_bin_dir", &pv.BinDir)
	str("pg_namespace", &pv.Namespace)
	str("pg_replication_username", &pv.ReplicationUser)
	str("pg_replication_password", &pv.ReplicationPassword)
	str("pg_admin_username", &pv.AdminUser)
	str("pg_admin_password", &pv.AdminPassword)
	str("pgbackrest_repo_path", &pv.BackupRepoPath)
	str("pg_backup_source", &pv.BackupSource)
	boolean("pg_checksum", &pv.Checksums)
	boolean("pg_synchronous_mode", &pv.SyncMode)
	boolean("pg_synchronous_mode_strict", &pv.SyncStrict)
	str("pigwf_approval_timeout", &pv.ApprovalTimeout)
	if v := eff["pigwf_approvers"]; v != nil {
		var a []string
		if err := v.Decode(&a); err == nil {
			pv.Approvers = a
		}
	}
	if v := eff["pg_parameters"]; v != nil {
		if m, ok := stringMap(v); ok {
			pv.Parameters = m
		}
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
	case *ServiceEntry:
		x.Line = line
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
