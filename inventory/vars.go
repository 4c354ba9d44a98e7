package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

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
