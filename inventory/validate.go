package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// validateUsersAndDBs checks what the entries' own rules (entries.go) cannot: references between
// them, the roles pigwf creates itself, and what state: absent may not drop.
func validateUsersAndDBs(file, where string, c *Cluster, verr *ValidationError) {
	users := map[string]bool{"postgres": true}
	absent := map[string]int{} // a user to drop -> its index
	own := map[string]string{  // roles pigwf creates (starter.PgClusterCreateInput), and why
		c.PG.ReplicationUser: "the replication user (pg_replication_username)",
		c.PG.AdminUser:       "the admin user (pg_admin_username)",
		"postgres":           "the superuser",
		"dbrole_readonly":    "a role of Pigsty's default role model",
		"dbrole_offline":     "a role of Pigsty's default role model",
		"dbrole_readwrite":   "a role of Pigsty's default role model",
		"dbrole_admin":       "a role of Pigsty's default role model",
	}
	firstUser := map[string]int{}
	for i, u := range c.Users {
		f := fmt.Sprintf("pg_users[%d].name", i)
		if what, ok := own[u.Name]; ok {
			verr.add(FieldError{File: file, Line: u.Line, Where: where, Field: f, Problem: fmt.Sprintf("%s is %s, which pigwf creates itself", show(u.Name), what),
				Fix: "leave it out of pg_users"})
		} else if prev, dup := firstUser[u.Name]; dup {
			verr.add(FieldError{File: file, Line: u.Line, Where: where, Field: f, Problem: fmt.Sprintf("%s is also pg_users[%d]", show(u.Name), prev), Fix: "define each user once"})
		} else {
			firstUser[u.Name] = i
		}
		if u.Absent() {
			absent[u.Name] = i
		} else {
			users[u.Name] = true
		}
	}
	// A user that stays may not be made a member of one that goes.
	for i, u := range c.Users {
		if u.Absent() {
			continue
		}
		for j, r := range u.Roles {
			if k, gone := absent[r]; gone {
				verr.add(FieldError{File: file, Line: u.Line, Where: where, Field: fmt.Sprintf("pg_users[%d].roles[%d]", i, j),
					Problem: fmt.Sprintf("%s is pg_users[%d], which has state: absent", show(r), k), Fix: "take it out of roles, or keep that user (state: create)"})
			}
		}
	}
	firstDB := map[string]int{}
	for i, d := range c.Databases {
		if prev, dup := firstDB[d.Name]; dup {
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: fmt.Sprintf("pg_databases[%d].name", i), Problem: fmt.Sprintf("%s is also pg_databases[%d]", show(d.Name), prev), Fix: "define each database once"})
		} else {
			firstDB[d.Name] = i
		}
		if d.Absent() {
			if systemDatabases[d.Name] {
				verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: fmt.Sprintf("pg_databases[%d].state", i),
					Problem: fmt.Sprintf("%s is PostgreSQL's own database, which pigwf never drops", show(d.Name)), Fix: "leave it out of pg_databases"})
			}
			continue // its owner does not matter any more
		}
		switch _, gone := absent[d.Owner]; {
		case gone:
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: fmt.Sprintf("pg_databases[%d].owner", i),
				Problem: fmt.Sprintf("owner %q of database %s has state: absent in pg_users", d.Owner, show(d.Name)),
				Fix:     "give the database another owner, or drop it too (state: absent)"})
		case d.Owner != "" && !users[d.Owner]:
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: fmt.Sprintf("pg_databases[%d].owner", i),
				Problem: fmt.Sprintf("owner %q of database %s is not in pg_users", d.Owner, show(d.Name)), Fix: "add the user to pg_users or change the owner"})
		}
	}
}

// systemDatabases are the databases every PostgreSQL cluster has and pigwf's own steps connect
// to: never dropped.
var systemDatabases = set("postgres template0 template1")

// checkAcrossClusters refuses what no single group shows: a cluster name used twice, a host in
// two PostgreSQL clusters, a nodename on two hosts, and two services on one port of a host.
func checkAcrossClusters(file string, inv *Inventory, metas []*clusterMeta, global varMap, verr *ValidationError) {
	names := map[string]string{} // pg_cluster -> group
	for _, m := range metas {
		c := inv.Clusters[m.group]
		if c.Name == "" {
			continue
		}
		where := "cluster " + show(m.group)
		if other, dup := names[c.Name]; dup {
			verr.add(FieldError{File: file, Line: m.nameLine, Where: where, Field: "pg_cluster", Problem: fmt.Sprintf("%s is also the pg_cluster of group %s", show(c.Name), show(other)),
				Fix: "give each cluster its own name"})
			continue
		}
		if o := inv.Clusters[c.Name]; o != nil && o != c {
			verr.add(FieldError{File: file, Line: m.nameLine, Where: where, Field: "pg_cluster", Problem: fmt.Sprintf("%s is the name of another group", show(c.Name)),
				Fix: "name the group after its pg_cluster, or choose another name"})
		}
		names[c.Name] = m.group
	}

	// Hosts of PostgreSQL clusters: each address (and SSH address) in one cluster only.
	hostAt := map[string]string{}       // canonical address -> where it is first
	nodenames := map[string]namedHost{} // by slot name
	uses := map[string][]portUse{}
	for _, m := range metas {
		c := inv.Clusters[m.group]
		for _, hm := range m.hosts {
			if c.Name != "" {
				for _, a := range uniq(canonical(hm.addr), canonical(hm.sshHost)) {
					if other, dup := hostAt[a]; dup {
						verr.add(FieldError{File: file, Line: hm.line, Where: "cluster " + show(m.group), Field: "hosts." + show(hm.addr),
							Problem: fmt.Sprintf("address %s is also %s", show(a), other), Fix: "a node belongs to one PostgreSQL cluster; remove it from one of them"})
						break
					}
				}
				for _, a := range uniq(canonical(hm.addr), canonical(hm.sshHost)) {
					hostAt[a] = hm.where
				}
			}
			// Compared as slot names: pg-test.1 and pg-test-1 would share one replication slot.
			if slot := slotName(hm.nodename); hm.nodename != "" {
				cur := namedHost{canonical(hm.addr), show(hm.nodename), hm.where, hm.nodenameLine, hm.nodenameSet}
				if other, dup := nodenames[slot]; dup && other.addr != cur.addr {
					at, was := cur, other
					if !cur.explicit && other.explicit { // report it where the user wrote it
						at, was = other, cur
					}
					problem := fmt.Sprintf("%s is also the nodename of host %s", at.name, show(was.addr))
					if at.name != was.name {
						problem = fmt.Sprintf("%s and host %s's nodename %s would share the replication slot name %s", at.name, show(was.addr), was.name, slot)
					}
					verr.add(FieldError{File: file, Line: at.line, Where: at.where, Field: "nodename", Problem: problem, Fix: "give every node its own nodename"})
				} else if !dup {
					nodenames[slot] = cur
				}
			}
			uses[canonical(hm.addr)] = append(uses[canonical(hm.addr)], hm.ports...)
		}
	}

	// etcd members: the client and peer ports on each host of the etcd group.
	if ec := inv.Clusters[etcdGroup(global)]; ec != nil {
		for _, h := range ec.Hosts {
			for _, k := range []string{"etcd_port", "etcd_peer_port"} {
				u := portUse{field: k, what: "its etcd " + map[string]string{"etcd_port": "client", "etcd_peer_port": "peer"}[k] + " port (" + k + ")", line: ec.Line}
				u.port, _ = strconv.Atoi(globalKeys[k])
				if v := global[k]; v != nil {
					if p, ok := portOf(v.Value); ok {
						u.port, u.line, u.explicit = p, v.Line, true
					}
				}
				uses[canonical(h.Addr)] = append(uses[canonical(h.Addr)], u)
			}
		}
	}
	for _, m := range metas {
		for _, hm := range m.hosts {
			a := canonical(hm.addr)
			reportClashes(file, hm.where, show(hm.addr), uses[a], verr)
			delete(uses, a) // a host in several groups is reported once
		}
	}
}

// reportClashes reports two services of one host on the same port, on the one the inventory
// sets (a fixed or default port is not what the user can change).
func reportClashes(file, where, addr string, us []portUse, verr *ValidationError) {
	for i := range us {
		for j := i + 1; j < len(us); j++ {
			a, b := us[i], us[j]
			if a.port != b.port || a.port == 0 || a.field == b.field {
				continue // the same service seen from two groups the host is in
			}
			if !a.explicit && b.explicit || a.field == "" {
				a, b = b, a
			}
			fix := "give each service on a host its own port"
			if a.field == "pg_services" || b.field == "pg_services" {
				fix += " (or set haproxy_enabled: false where no HAProxy runs)"
			}
			verr.add(FieldError{File: file, Line: a.line, Where: where, Field: a.field, Problem: fmt.Sprintf("%d on host %s is also %s", a.port, addr, b.what), Fix: fix})
		}
	}
}

// namedHost is where a nodename is used, for the duplicate check.
type namedHost struct {
	addr, name, where string
	line              int
	explicit          bool // written as nodename (not derived from pg_cluster and pg_seq)
}

// canonical is an address as compared: an IP in its canonical form, a name in lower case.
func canonical(addr string) string {
	if ip := net.ParseIP(addr); ip != nil {
		return ip.String()
	}
	return strings.ToLower(addr)
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
