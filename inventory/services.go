package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/haproxy"
)

// Services: Pigsty's pg_default_services and pg_services (HAProxy on every member routing by the
// agents' health checks) and pigwf_service_check (the checks' timing). The resolved values are
// Cluster.Services and Cluster.ServiceCheck; haproxy.ClusterConfig builds the file from them.

// ServiceStatsPort is where every member's HAProxy serves its stats page and Prometheus metrics
// (Pigsty's haproxy_exporter_port).
const ServiceStatsPort = 9101

var (
	serviceFields   = set("name port ip dest check selector backup maxconn balance options")
	serviceNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	serviceCheckRE  = regexp.MustCompile(`^/[A-Za-z0-9_./?=&%-]{0,200}$`)
	serviceBalances = set("roundrobin first leastconn static-rr")
	serviceRoles    = set(RolePrimary + " " + RoleReplica + " " + RoleOffline)
	// Pigsty's selectors are JMESPath over the members' variables; pigwf reads the form they
	// take in Pigsty's configurations: "[]" (every member) and "[? pg_role == `x` || ... ]",
	// where a pg_offline_query term is dropped (pigwf has no offline-query flag).
	jmesRoleRE = regexp.MustCompile("^pg_role\\s*==\\s*`([a-z]+)`$")
)

// serviceTimingKeys are pigwf_service_check's keys.
var serviceTimingKeys = set("inter fastinter downinter rise fall slowstart hold read_inter")

// ServiceEntry is one entry of pg_services or pg_default_services as written.
type ServiceEntry struct {
	Name     string       `yaml:"name"`
	Port     int          `yaml:"port"`
	IP       string       `yaml:"ip"`
	Dest     string       `yaml:"dest"`
	Check    string       `yaml:"check"`
	Selector RoleSelector `yaml:"selector"`
	Backup   RoleSelector `yaml:"backup"`
	MaxConn  int          `yaml:"maxconn"`
	Balance  string       `yaml:"balance"`
	Line     int          `yaml:"-"`
}

// RoleSelector is a selector as pigwf reads it: the roles it selects (nil = every member for a
// selector, none for a backup). Written as a list of roles or in Pigsty's JMESPath form.
type RoleSelector struct {
	Roles []string
	Set   bool // written in the entry
}

// UnmarshalYAML reads a list of roles or Pigsty's JMESPath form.
func (s *RoleSelector) UnmarshalYAML(n *yaml.Node) error {
	roles, prob, _ := parseSelector(n)
	if prob != "" {
		return fmt.Errorf("%s", prob)
	}
	s.Roles, s.Set = roles, true
	return nil
}

// parseSelector returns the roles a selector names (nil for "[]", every member).
func parseSelector(n *yaml.Node) (roles []string, problem, fix string) {
	const fixText = "write a list of roles (e.g. [replica, offline]) or Pigsty's form \"[? pg_role == `replica` ]\""
	n = resolve(n)
	switch {
	case n == nil:
		return nil, "is empty", fixText
	case n.Kind == yaml.SequenceNode:
		for _, r := range n.Content {
			if r = resolve(r); r == nil || r.Kind != yaml.ScalarNode || !serviceRoles[r.Value] {
				return nil, "lists something that is not a role", "use primary, replica or offline"
			}
			roles = append(roles, r.Value)
		}
		return roles, "", ""
	case n.Kind != yaml.ScalarNode:
		return nil, "must be a list of roles or a selector string", fixText
	}
	s := strings.TrimSpace(n.Value)
	if regexp.MustCompile(`^\[\s*\]$`).MatchString(s) {
		return nil, "", ""
	}
	if !strings.HasPrefix(s, "[?") || !strings.HasSuffix(s, "]") {
		return nil, fmt.Sprintf("%q is not a selector pigwf reads", s), fixText
	}
	for _, term := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "[?"), "]"), "||") {
		var role string
		for _, part := range strings.Split(term, "&&") {
			part = strings.TrimSpace(part)
			if part == "pg_offline_query" || part == "!pg_offline_query" {
				continue
			}
			m := jmesRoleRE.FindStringSubmatch(part)
			if m == nil || !serviceRoles[m[1]] || role != "" {
				return nil, fmt.Sprintf("%q: pigwf selects members by pg_role only", s), fixText
			}
			role = m[1]
		}
		if role != "" {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Sprintf("%q selects no role", s), fixText
	}
	return roles, "", ""
}

func checkService(f string, line int, e []kv) []FieldError {
	out := fieldChecks(f, e, map[string]func(string) (string, string){
		"name": func(s string) (string, string) {
			return rx(s, serviceNameRE, "is not a service name", "use lower-case letters, digits and '-' (it becomes <cluster>-<name>)")
		},
		"port": func(s string) (string, string) {
			if p, ok := portOf(s); !ok || p < 1 {
				return fmt.Sprintf("%q is not a TCP port", s), "use an integer 1-65535 (Pigsty: primary 5433, replica 5434, default 5436, offline 5438)"
			}
			return "", ""
		},
		"ip": func(s string) (string, string) {
			if s == "*" {
				return "", ""
			}
			return fmt.Sprintf("%q: pigwf binds services on every address of the host", s), "use ip: '*' or leave it out"
		},
		"dest": func(s string) (string, string) {
			switch {
			case s == "default" || s == "postgres":
				return "", ""
			case s == "pgbouncer":
				return `"pgbouncer": pigwf runs no PgBouncer`, "use dest: postgres (or a port number of a pooler you run)"
			}
			if p, ok := portOf(s); ok && p > 0 {
				return "", ""
			}
			return fmt.Sprintf("%q is not a destination", s), "use postgres, default or a port number"
		},
		"check": func(s string) (string, string) {
			return rx(s, serviceCheckRE, "is not a health check path", "use an agent endpoint such as /primary, /read-only or /replica?lag=16MB")
		},
		"maxconn": func(s string) (string, string) {
			if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 1000000 {
				return fmt.Sprintf("%q is not a connection limit", s), "use an integer 1-1000000"
			}
			return "", ""
		},
		"balance": func(s string) (string, string) {
			if serviceBalances[s] {
				return "", ""
			}
			return fmt.Sprintf("%q is not a balance algorithm pigwf writes", s), "use roundrobin, first, leastconn or static-rr"
		},
	})
	for _, k := range []string{"name", "port"} {
		if lookup(e, k) == nil {
			out = append(out, FieldError{Line: line, Field: f + "." + k, Problem: "is missing", Fix: "a service needs a name and a port, e.g. {name: primary, port: 5433, check: /primary}"})
		}
	}
	for _, k := range []string{"selector", "backup"} {
		if v := lookup(e, k); v != nil {
			if _, prob, fix := parseSelector(v); prob != "" {
				out = append(out, FieldError{Line: v.Line, Field: f + "." + k, Problem: prob, Fix: fix})
			}
		}
	}
	if v := lookup(e, "options"); v != nil {
		out = append(out, FieldError{Line: v.Line, Field: f + ".options", Problem: "raw HAProxy options are not taken",
			Fix: "remove it; check timings go in pigwf_service_check, e.g. {inter: 100ms, rise: 1, fall: 2}"})
	}
	return out
}

// serviceTimingRule checks pigwf_service_check: the keys of haproxy.CheckTiming, durations and
// counts, and a result HAProxy can run.
func serviceTimingRule(v *yaml.Node) []FieldError {
	if v.Kind != yaml.MappingNode {
		return []FieldError{{Line: v.Line, Problem: "must be a mapping", Fix: "write e.g. {inter: 100ms, rise: 1, fall: 2}"}}
	}
	_, errs := serviceTiming(v)
	return errs
}

// serviceTiming is pigwf_service_check over haproxy.FastTiming.
func serviceTiming(v *yaml.Node) (haproxy.CheckTiming, []FieldError) {
	t := haproxy.FastTiming()
	if v == nil {
		return t, nil
	}
	var out []FieldError
	for _, p := range pairs(v, collect(&out, "pigwf_service_check")) {
		f := "pigwf_service_check." + show(p.key.Value)
		if !serviceTimingKeys[p.key.Value] {
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "is not a check setting", Fix: "use inter, fastinter, downinter, rise, fall, slowstart, hold or read_inter"})
			continue
		}
		if p.val == nil || p.val.Kind != yaml.ScalarNode {
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "must be a single value"})
			continue
		}
		switch p.key.Value {
		case "rise", "fall":
			n, err := strconv.Atoi(p.val.Value)
			if err != nil {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: fmt.Sprintf("%q is not an integer", p.val.Value), Fix: "use 1-10"})
				continue
			}
			if p.key.Value == "rise" {
				t.Rise = n
			} else {
				t.Fall = n
			}
		default:
			d, err := time.ParseDuration(p.val.Value)
			if err != nil {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: fmt.Sprintf("%q is not a duration", p.val.Value), Fix: "write it like 100ms or 3s"})
				continue
			}
			switch p.key.Value {
			case "inter":
				t.Inter = d
			case "fastinter":
				t.FastInter = d
			case "downinter":
				t.DownInter = d
			case "slowstart":
				t.SlowStart = d
			case "hold":
				t.Hold = d
			case "read_inter":
				t.ReadInter = d
			}
		}
	}
	if len(out) == 0 {
		if err := t.Validate(); err != nil {
			out = append(out, FieldError{Line: v.Line, Field: "pigwf_service_check", Problem: err.Error(), Fix: "pigwf's default is inter 100ms fastinter 100ms downinter 100ms rise 1 fall 2 hold 1s read_inter 1s"})
		}
	}
	return t, out
}

// clusterServices resolves a cluster's services: pg_default_services (Pigsty's four when not
// set) followed by pg_services.
func clusterServices(file, where string, defaults, extra *yaml.Node, verr *ValidationError) []haproxy.Service {
	var entries []ServiceEntry
	if defaults == nil {
		for _, s := range haproxy.PigstyServices() {
			entries = append(entries, ServiceEntry{Name: s.Name, Port: s.Port, Check: s.Check, Selector: RoleSelector{Roles: s.Selector}, Backup: RoleSelector{Roles: s.Backup}})
		}
	} else {
		entries = decodeList[ServiceEntry](file, where, "pg_default_services", defaults, verr)
	}
	entries = append(entries, decodeList[ServiceEntry](file, where, "pg_services", extra, verr)...)
	var out []haproxy.Service
	seen := map[string]int{}
	ports := map[int]string{}
	for _, e := range entries {
		if prev, dup := seen[e.Name]; dup {
			verr.add(FieldError{File: file, Line: e.Line, Where: where, Field: "pg_services", Problem: fmt.Sprintf("service %s is defined twice (also line %d)", show(e.Name), prev), Fix: "give each service its own name"})
			continue
		}
		seen[e.Name] = e.Line
		if other, dup := ports[e.Port]; dup {
			verr.add(FieldError{File: file, Line: e.Line, Where: where, Field: "pg_services", Problem: fmt.Sprintf("service %s uses port %d, as service %s does", show(e.Name), e.Port, other), Fix: "give each service its own port"})
			continue
		}
		ports[e.Port] = e.Name
		s := haproxy.Service{Name: e.Name, Port: e.Port, Check: e.Check, Selector: e.Selector.Roles, Backup: e.Backup.Roles, Balance: e.Balance, MaxConn: e.MaxConn}
		if p, ok := portOf(e.Dest); ok {
			s.DestPort = p
		}
		out = append(out, s)
	}
	return out
}

// servicePorts are the ports every member's HAProxy takes.
func servicePorts(services []haproxy.Service, line int) []portUse {
	out := []portUse{{port: ServiceStatsPort, what: fmt.Sprintf("HAProxy's stats port (%d, fixed)", ServiceStatsPort), line: line}}
	for _, s := range services {
		out = append(out, portUse{port: s.Port, field: "pg_services", what: fmt.Sprintf("service %s's port (pg_services)", s.Name), line: line})
	}
	return out
}
