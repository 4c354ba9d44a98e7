// Package haproxy is the one model of the HAProxy configuration pigwf writes: the access layer
// in front of a cluster, which routes clients by the HA agents' health checks so they need no
// change on failover. Render turns a Config into haproxy.cfg text; every value that reaches the
// file is checked against a strict rule first (names, addresses, paths, check URIs), so a hostile
// inventory cannot add directives. services.go builds a cluster's Config in Pigsty's service
// layout; timing.go holds the check timings (Pigsty's defaults and pigwf's fast ones).
//
// It has no Temporal, SSH or inventory imports: the runbook's activity renders here, the chaos
// suite renders the anchor's configuration here, and `haproxy -c` is the reader that checks it.
package haproxy

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is one haproxy.cfg: process settings, an optional stats listener and one listen
// section per service.
type Config struct {
	// Header is a comment written at the top (who manages the file).
	Header string
	// AdminSocket is the admin stats socket; it exposes the listening sockets so a reload hands
	// them to the new process without refusing a connection. "" = none.
	AdminSocket string
	// Timeouts of the defaults section.
	Timeouts Timeouts
	// Stats serves HAProxy's stats page and Prometheus metrics; nil = none.
	Stats *Stats
	// Listens are the services, in order.
	Listens []Listen
}

// Timeouts are the defaults section's timeouts. Client and server timeouts are long: a database
// session may idle for minutes between statements, and HAProxy must not cut it.
type Timeouts struct {
	Connect, Client, Server, Check time.Duration
}

// Stats is a read-only HTTP listener with the stats page at /stats and HAProxy's own Prometheus
// exporter at /metrics.
type Stats struct {
	Addr string
	Port int
}

// Listen is one service: a TCP port whose connections go to the servers whose health check
// answers 200.
type Listen struct {
	Name    string
	Bind    string // address to bind; "*" = every address of the host
	Port    int
	MaxConn int
	Balance string // roundrobin, first, leastconn
	Check   HTTPCheck
	Timing  CheckTiming
	Servers []Server
}

// HTTPCheck is the health check every server of a listen gets: an HTTP request to the server's
// check port. An empty URI is a bare `option httpchk`, which HAProxy sends as "OPTIONS /"
// (Patroni's sample configuration).
type HTTPCheck struct {
	URI string
	// CAFile, when set, makes the check HTTPS, verifying the agent's certificate against this
	// CA and the server's VerifyHost name.
	CAFile string
}

// Server is one backend server of a listen.
type Server struct {
	Name      string
	Addr      string
	Port      int
	CheckPort int
	Backup    bool
	// VerifyHost is the name the agent's certificate must carry (a DNS name in it); required
	// when the check is HTTPS.
	VerifyHost string
	// Track names an earlier listen whose server of the same name this one follows instead of
	// checking itself (HAProxy's track): two services with the same check ask the agents once.
	Track string
}

// Rules every value written to the file obeys: no spaces, quotes, '#' or newlines, so nothing
// can end a directive or start another.
var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
	pathRE    = regexp.MustCompile(`^/[A-Za-z0-9_./-]{1,255}$`)
	uriRE     = regexp.MustCompile(`^/[A-Za-z0-9_./?=&%-]{0,255}$`)
	balancing = map[string]bool{"roundrobin": true, "first": true, "leastconn": true, "static-rr": true}
)

// Render is the configuration as haproxy.cfg text, or an error naming the first value that
// breaks a rule.
func Render(c Config) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for _, line := range strings.Split(strings.TrimSpace(c.Header), "\n") {
		if line != "" {
			w("# %s", line)
		}
	}
	w("global")
	// Server state changes (UP, DOWN, no server available) are logged at notice and above;
	// one line per client connection (info) is not.
	w("    log stderr format iso local0 notice")
	if c.AdminSocket != "" {
		w("    stats socket %s mode 600 level admin expose-fd listeners", c.AdminSocket)
	}
	// Checks of the agents' HTTPS API verify the agent's certificate; the default would trust none.
	w("    ssl-server-verify required")
	w("")
	w("defaults")
	w("    mode tcp")
	w("    log global")
	w("    retries 1")
	w("    option redispatch")
	w("    timeout connect %s", ms(c.Timeouts.Connect))
	w("    timeout client %s", ms(c.Timeouts.Client))
	w("    timeout server %s", ms(c.Timeouts.Server))
	w("    timeout check %s", ms(c.Timeouts.Check))
	if s := c.Stats; s != nil {
		w("")
		w("listen stats")
		w("    mode http")
		w("    bind %s", hostPort(s.Addr, s.Port))
		w("    http-request use-service prometheus-exporter if { path /metrics }")
		w("    stats enable")
		w("    stats uri /stats")
		w("    stats refresh 5s")
	}
	for _, l := range c.Listens {
		w("")
		w("listen %s", l.Name)
		w("    bind %s", hostPort(l.Bind, l.Port))
		if l.MaxConn > 0 {
			w("    maxconn %d", l.MaxConn)
		}
		w("    balance %s", orDefault(l.Balance, "roundrobin"))
		w("    option httpchk")
		if uri := l.Timing.checkURI(l.Check.URI); uri != "" {
			w("    http-check send meth OPTIONS uri %s", uri)
		}
		w("    http-check expect status 200")
		w("    default-server %s", l.Timing.serverOptions())
		for _, s := range l.Servers {
			line := fmt.Sprintf("    server %s %s check port %d", s.Name, hostPort(s.Addr, s.Port), s.CheckPort)
			switch {
			case s.Track != "":
				line = fmt.Sprintf("    server %s %s track %s/%s", s.Name, hostPort(s.Addr, s.Port), s.Track, s.Name)
			case l.Check.CAFile != "":
				line += fmt.Sprintf(" check-ssl ca-file %s verify required verifyhost %s check-sni %s", l.Check.CAFile, s.VerifyHost, s.VerifyHost)
			}
			if s.Backup {
				line += " backup"
			}
			w("%s", line)
		}
	}
	return b.String(), nil
}

func (c Config) validate() error {
	if c.AdminSocket != "" && !pathRE.MatchString(c.AdminSocket) {
		return fmt.Errorf("haproxy admin socket %q: want an absolute path of letters, digits and _ . / -", c.AdminSocket)
	}
	for what, d := range map[string]time.Duration{"connect": c.Timeouts.Connect, "client": c.Timeouts.Client, "server": c.Timeouts.Server, "check": c.Timeouts.Check} {
		if d < time.Millisecond {
			return fmt.Errorf("haproxy timeout %s %v: want at least 1ms", what, d)
		}
	}
	if s := c.Stats; s != nil {
		if err := checkBind("stats", s.Addr, s.Port); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	serversOf := map[string]map[string]bool{} // listen -> its checked servers (track targets)
	ports := map[int]string{}
	if c.Stats != nil {
		ports[c.Stats.Port] = "stats"
	}
	for _, l := range c.Listens {
		if !nameRE.MatchString(l.Name) || l.Name == "stats" {
			return fmt.Errorf("service name %q: want letters, digits and _ . - (and not \"stats\")", l.Name)
		}
		if seen[l.Name] {
			return fmt.Errorf("service %s is listed twice", l.Name)
		}
		seen[l.Name] = true
		if err := checkBind(l.Name, l.Bind, l.Port); err != nil {
			return err
		}
		if other, dup := ports[l.Port]; dup {
			return fmt.Errorf("service %s: port %d is also used by %s", l.Name, l.Port, other)
		}
		ports[l.Port] = l.Name
		if l.Balance != "" && !balancing[l.Balance] {
			return fmt.Errorf("service %s: balance %q: want roundrobin, first, leastconn or static-rr", l.Name, l.Balance)
		}
		if l.Check.URI != "" && !uriRE.MatchString(l.Check.URI) {
			return fmt.Errorf("service %s: check %q: want a path such as /primary or /replica?lag=16MB", l.Name, l.Check.URI)
		}
		if l.Check.CAFile != "" && !pathRE.MatchString(l.Check.CAFile) {
			return fmt.Errorf("service %s: CA file %q: want an absolute path", l.Name, l.Check.CAFile)
		}
		if err := l.Timing.Validate(); err != nil {
			return fmt.Errorf("service %s: %w", l.Name, err)
		}
		if len(l.Servers) == 0 {
			return fmt.Errorf("service %s selects no server: check its selector", l.Name)
		}
		serversOf[l.Name] = map[string]bool{}
		for _, s := range l.Servers {
			if s.Track == "" {
				serversOf[l.Name][s.Name] = true
			}
		}
		names := map[string]bool{}
		for _, s := range l.Servers {
			if !nameRE.MatchString(s.Name) || names[s.Name] {
				return fmt.Errorf("service %s: server name %q: want a unique name of letters, digits and _ . -", l.Name, s.Name)
			}
			names[s.Name] = true
			if !validHost(s.Addr) {
				return fmt.Errorf("service %s: server %s: address %q is not an IP address or host name", l.Name, s.Name, s.Addr)
			}
			if !validPort(s.Port) || !validPort(s.CheckPort) {
				return fmt.Errorf("service %s: server %s: ports %d and %d: want 1-65535", l.Name, s.Name, s.Port, s.CheckPort)
			}
			if s.Track != "" && !serversOf[s.Track][s.Name] {
				return fmt.Errorf("service %s: server %s tracks %s, which has no checked server %s before it", l.Name, s.Name, s.Track, s.Name)
			}
			if l.Check.CAFile != "" && s.Track == "" && !hostRE.MatchString(s.VerifyHost) {
				return fmt.Errorf("service %s: server %s: an HTTPS check needs the name in the agent's certificate (got %q)", l.Name, s.Name, s.VerifyHost)
			}
		}
	}
	return nil
}

func checkBind(what, addr string, port int) error {
	if addr != "*" && !validHost(addr) {
		return fmt.Errorf("%s: bind address %q: want * or an IP address", what, addr)
	}
	if !validPort(port) {
		return fmt.Errorf("%s: port %d: want 1-65535", what, port)
	}
	return nil
}

func validHost(s string) bool { return net.ParseIP(s) != nil || hostRE.MatchString(s) }
func validPort(p int) bool    { return p > 0 && p < 65536 }

// hostPort is addr:port as HAProxy reads it ("*:5433", "10.0.0.1:5432", "[::1]:5432").
func hostPort(addr string, port int) string {
	if addr == "*" {
		return "*:" + strconv.Itoa(port)
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// ms is a duration in HAProxy's millisecond notation.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
