package haproxy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Service is one service of a cluster, in Pigsty's terms (a pg_services entry): a port on every
// HAProxy, whose connections go to the members the agents' health check Check accepts.
type Service struct {
	Name string `json:"name"` // the listen is <cluster>-<name>
	Port int    `json:"port"`
	// DestPort is the port on the member the connections go to; 0 = the member's PostgreSQL port.
	DestPort int    `json:"dest_port,omitempty"`
	Check    string `json:"check"` // the agents' health endpoint, e.g. /primary; "" = "/" (bare httpchk)
	// Selector lists the inventory roles (pg_role) whose members serve; empty = every member.
	Selector []string `json:"selector,omitempty"`
	// Backup lists the roles whose members are backup servers: used only while no selected
	// server is up (Pigsty's replica service falls back to the primary).
	Backup  []string `json:"backup,omitempty"`
	Balance string   `json:"balance,omitempty"`
	MaxConn int      `json:"maxconn,omitempty"`
}

// PigstyServices are Pigsty's default services (pg_default_services): primary 5433, replica
// 5434 (falls back to the primary), default 5436 and offline 5438. Pigsty points primary and
// replica at pgbouncer; pigwf runs no pgbouncer, so every service reaches PostgreSQL.
//
// One difference: Pigsty's replica service checks /read-only, which the primary passes too, and
// marks the inventory's primary a backup; after a failover the new primary (a replica in the
// inventory) takes reads as a full member. pigwf's checks /read-only?prefer=replica: the
// primary, whichever member it is, passes only while no standby streams from it.
func PigstyServices() []Service {
	return []Service{
		{Name: "primary", Port: 5433, Check: "/primary"},
		{Name: "replica", Port: 5434, Check: "/read-only?prefer=replica", Backup: []string{"primary", "offline"}},
		{Name: "default", Port: 5436, Check: "/primary"},
		{Name: "offline", Port: 5438, Check: "/replica", Selector: []string{"offline"}, Backup: []string{"replica"}},
	}
}

// Member is a cluster member as the services see it.
type Member struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Role    string `json:"role"` // inventory role: primary, replica, offline
	PGPort  int    `json:"pg_port"`
	APIPort int    `json:"api_port"`
	// VerifyHost is a DNS name in the member's node certificate (its nodename).
	VerifyHost string `json:"verify_host"`
}

// Cluster is what a cluster's HAProxy configuration is made from. Every HAProxy of the cluster
// gets the same one.
type Cluster struct {
	Name     string      `json:"name"`
	Members  []Member    `json:"members"`
	Services []Service   `json:"services"`
	Timing   CheckTiming `json:"timing"`
	// CAFile is the deployment CA on the HAProxy host: the checks verify the agents' certificates
	// against it. "" = the agents' API is plain text (a lab that says so).
	CAFile string `json:"ca_file,omitempty"`
	// StatsPort serves the stats page and HAProxy's Prometheus metrics (Pigsty: 9101); 0 = none.
	StatsPort int `json:"stats_port,omitempty"`
	// StatsAddr is the address the stats port binds (the HAProxy host's own address).
	StatsAddr   string `json:"stats_addr,omitempty"`
	AdminSocket string `json:"admin_socket,omitempty"`
}

// ServiceConnTimeouts: a connect to a live PostgreSQL on a LAN takes well under a millisecond,
// so a second is generous; a connect to a dead host fails over to another server after it
// (option redispatch). Sessions may idle for long between statements (30 minutes, as Patroni's
// sample sets).
var ServiceConnTimeouts = Timeouts{Connect: time.Second, Client: 30 * time.Minute, Server: 30 * time.Minute, Check: time.Second}

// ClusterConfig is the cluster's HAProxy configuration. Services that select no member (an
// offline service in a cluster without offline or replica members) are left out and named in
// skipped.
func ClusterConfig(c Cluster, header string) (cfg Config, skipped []string, err error) {
	if !nameRE.MatchString(c.Name) {
		return Config{}, nil, fmt.Errorf("cluster name %q: want letters, digits and _ . -", c.Name)
	}
	timeouts := ServiceConnTimeouts
	timeouts.Check = c.Timing.checkTimeout()
	// No process-wide maxconn: HAProxy derives it from the descriptors the host allows, where a
	// fixed one fails to start on a host with a low limit.
	cfg = Config{Header: header, AdminSocket: c.AdminSocket, Timeouts: timeouts}
	if c.StatsPort != 0 {
		cfg.Stats = &Stats{Addr: orDefault(c.StatsAddr, "*"), Port: c.StatsPort}
	}
	checkedBy := map[string]Listen{} // check URI -> the first listen that checks it
	for _, s := range c.Services {
		timing := c.Timing
		if !PrimaryCheck(s.Check) {
			timing = timing.forReads()
		}
		l := Listen{Name: c.Name + "-" + s.Name, Bind: "*", Port: s.Port, MaxConn: s.MaxConn, Balance: s.Balance,
			Check: HTTPCheck{URI: s.Check, CAFile: c.CAFile}, Timing: timing}
		first, tracked := checkedBy[s.Check]
		for _, m := range c.Members {
			selected := len(s.Selector) == 0 || slices.Contains(s.Selector, m.Role)
			backup := slices.Contains(s.Backup, m.Role)
			if !selected && !backup {
				continue
			}
			srv := Server{Name: m.Name, Addr: m.Addr, Port: cmp.Or(s.DestPort, m.PGPort), CheckPort: m.APIPort,
				Backup: backup, VerifyHost: m.VerifyHost}
			if tracked && first.has(m.Name) {
				srv.Track = first.Name // the same check: asked once, by the first service
			}
			l.Servers = append(l.Servers, srv)
		}
		if len(l.Servers) == 0 {
			skipped = append(skipped, s.Name)
			continue
		}
		if !tracked {
			checkedBy[s.Check] = l
		}
		cfg.Listens = append(cfg.Listens, l)
	}
	if len(cfg.Listens) == 0 {
		return Config{}, skipped, fmt.Errorf("cluster %s: no service selects any member (services %v)", c.Name, skipped)
	}
	return cfg, skipped, nil
}

// PrimaryCheck: the agents' check of a service that routes writes (Patroni's /, /primary and
// its aliases).
func PrimaryCheck(uri string) bool {
	path, _, _ := strings.Cut(uri, "?")
	switch path {
	case "", "/", "/primary", "/leader", "/master", "/read-write":
		return true
	}
	return false
}

// has: the listen checks a server of that name itself.
func (l Listen) has(name string) bool {
	for _, s := range l.Servers {
		if s.Name == name && s.Track == "" {
			return true
		}
	}
	return false
}
