package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pigwf/pigwf/internal/suggest"
	"gopkg.in/yaml.v3"
)

// The fields of pg_users, pg_databases and pg_hba_rules entries Pigsty defines; pigwf reads
// some of them (types.go) and ignores the others, but refuses a field neither knows (a typo such
// as pasword would otherwise create a user without its password).
var (
	userFields = set(`name password login superuser createdb createrole inherit replication bypassrls
		pgbouncer connlimit expire_in expire_at comment roles parameters pool_mode pool_connlimit search_path admin state`)
	databaseFields = set(`name owner comment template encoding locale lc_collate lc_ctype tablespace allowconn
		revokeconn register_datasource connlimit pool_auth_user pool_mode pool_size pool_size_reserve pool_size_min
		pool_max_db_conn pool_reserve pool_connlimit pgbouncer baseline schemas extensions parameters state strategy
		locale_provider icu_locale icu_rules builtin_locale is_template`)
	hbaFields = set(`user db addr auth title role order rules`)
)

// entriesRule checks a list of entries (mappings) field by field.
func entriesRule(field string, fields map[string]bool, check func(f string, line int, e []kv) []FieldError) varRule {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	return func(v *yaml.Node) []FieldError {
		if v.Kind != yaml.SequenceNode {
			return []FieldError{{Line: v.Line, Problem: "must be a list", Fix: "write each entry as '- {name: ...}'"}}
		}
		var out []FieldError
		for i, item := range v.Content {
			f := fmt.Sprintf("%s[%d]", field, i)
			if item = resolve(item); item == nil || item.Kind != yaml.MappingNode {
				out = append(out, FieldError{Line: v.Line, Field: f, Problem: "must be a mapping", Fix: "write the entry as '{name: ...}'"})
				continue
			}
			e := pairs(item, collect(&out, f))
			for _, p := range e {
				if !fields[p.key.Value] {
					fix := "remove it"
					if best, d := suggest.Closest(p.key.Value, known); d <= 2 {
						fix = fmt.Sprintf("did you mean %s?", best)
					}
					out = append(out, FieldError{Line: p.key.Line, Field: f + "." + show(p.key.Value), Problem: "is not a field of " + field + " entries", Fix: fix})
				}
			}
			out = append(out, check(f, item.Line, e)...)
		}
		return out
	}
}

// scalarField returns entry field k when it is a single value (lists and mappings are left to
// the decoder, which reports them).
func scalarField(e []kv, k string) (*yaml.Node, bool) {
	v := lookup(e, k)
	return v, v != nil && v.Kind == yaml.ScalarNode
}

// fieldChecks applies checks to the single-valued fields of an entry.
func fieldChecks(f string, e []kv, checks map[string]func(string) (string, string)) []FieldError {
	var out []FieldError
	for _, p := range e {
		check := checks[p.key.Value]
		if check == nil {
			check = textProblem // fields pigwf ignores may still be shown or logged
		}
		if p.val != nil && p.val.Kind == yaml.ScalarNode {
			if prob, fix := check(p.val.Value); prob != "" {
				out = append(out, FieldError{Line: p.val.Line, Field: f + "." + show(p.key.Value), Problem: prob, Fix: fix})
			}
		}
	}
	return out
}

func checkUser(f string, line int, e []kv) []FieldError {
	out := fieldChecks(f, e, map[string]func(string) (string, string){"name": roleNameProblem, "password": passwordProblem,
		"state": userStateProblem, "connlimit": connLimitProblem})
	if lookup(e, "name") == nil {
		out = append(out, FieldError{Line: line, Field: f + ".name", Problem: "is missing", Fix: "every user needs a name"})
	}
	if roles := lookup(e, "roles"); roles != nil && roles.Kind == yaml.SequenceNode {
		for i, r := range roles.Content {
			if r = resolve(r); r != nil && r.Kind == yaml.ScalarNode {
				if prob, fix := roleNameProblem(r.Value); prob != "" {
					out = append(out, FieldError{Line: r.Line, Field: fmt.Sprintf("%s.roles[%d]", f, i), Problem: prob, Fix: fix})
				}
			}
		}
	}
	return out
}

func checkDatabase(f string, line int, e []kv) []FieldError {
	out := fieldChecks(f, e, map[string]func(string) (string, string){"name": databaseNameProblem, "owner": roleNameProblem,
		"state": databaseStateProblem, "connlimit": connLimitProblem})
	if lookup(e, "name") == nil {
		out = append(out, FieldError{Line: line, Field: f + ".name", Problem: "is missing", Fix: "every database needs a name"})
	}
	return out
}

// userStateProblem: Pigsty's states of a user pigwf acts on.
func userStateProblem(s string) (string, string) {
	if s == StateCreate || s == StateAbsent {
		return "", ""
	}
	return fmt.Sprintf("%q is not a state of a user", s), "use create (the default) or absent (pg-users drops it)"
}

// databaseStateProblem: Pigsty's states of a database pigwf acts on. Pigsty's recreate (drop and
// create again in one go) is refused: it loses the data in a step no one approved separately.
func databaseStateProblem(s string) (string, string) {
	switch s {
	case StateCreate, StateAbsent:
		return "", ""
	case "recreate":
		return `"recreate" is not done by pigwf: it would drop the database and its data in the same run that creates it again`,
			"set state: absent and run pg-databases (the drop is approved), then state: create and run it again"
	}
	return fmt.Sprintf("%q is not a state of a database", s), "use create (the default) or absent (pg-databases drops it after an approval)"
}

// connLimitProblem: a role's or database's CONNECTION LIMIT, -1 for none.
func connLimitProblem(s string) (string, string) {
	if n, err := strconv.Atoi(s); err != nil || n < -1 || n > 1<<31-1 {
		return fmt.Sprintf("%q is not a connection limit", s), "write an integer from -1 (no limit) to 2147483647"
	}
	return "", ""
}

func databaseNameProblem(s string) (string, string) {
	return rx(s, identRE, "is not a valid database name", "use lower-case letters, digits and '_'")
}

// HBA rule fields: each from a set pigwf renders correctly, or a strict pattern.
var (
	hbaDBKeywords   = set("all replication sameuser samerole")
	hbaAddrKeywords = set("local localhost intra world cluster all samehost samenet")                  // pigwf's aliases (activities.RenderHBA) and PostgreSQL's
	hbaAuths        = set("pwd scram sha ssl cert trust reject scram-sha-256 md5 password peer ident") // activities.RenderHBA's meanings
	hbaTLSAuths     = set("ssl cert")                                                                  // hostssl only: never over the socket
)

func checkHBARule(f string, line int, e []kv) []FieldError {
	out := fieldChecks(f, e, map[string]func(string) (string, string){
		"user": func(s string) (string, string) {
			if s == "all" || identRE.MatchString(strings.TrimPrefix(s, "+")) {
				return "", ""
			}
			if strings.Contains(s, "${") {
				return fmt.Sprintf("%q is a Pigsty placeholder, which pigwf does not expand", s), "name the role (e.g. dbuser_dba)"
			}
			return fmt.Sprintf("%q is not a role", s), "use all, a role name, or +role for its members"
		},
		"db": func(s string) (string, string) {
			if hbaDBKeywords[s] || identRE.MatchString(s) {
				return "", ""
			}
			return fmt.Sprintf("%q is not a database", s), "use all, replication, sameuser, samerole or a database name"
		},
		"addr": hbaAddrProblem,
		"auth": func(s string) (string, string) {
			switch {
			case hbaAuths[s]:
				return "", ""
			case s == "deny":
				return `"deny" is not a PostgreSQL method`, "use reject"
			}
			return fmt.Sprintf("%q is not an authentication method", s), "use pwd, ssl, cert, trust, reject, md5, ident or peer"
		},
		"role": func(s string) (string, string) {
			if s == "common" {
				return "", ""
			}
			return fmt.Sprintf("%q: pigwf applies every rule on every member", s), "remove role (or use common), or leave the rule out"
		},
		"order": func(s string) (string, string) {
			if _, err := strconv.Atoi(s); err != nil {
				return fmt.Sprintf("%q is not an integer", s), "write a number"
			}
			return "", ""
		},
	})
	if r := lookup(e, "rules"); r != nil {
		out = append(out, FieldError{Line: r.Line, Field: f + ".rules", Problem: "raw pg_hba lines are not taken", Fix: "write the rule as {user, db, addr, auth}"})
	}
	for _, k := range []string{"user", "db", "addr", "auth"} {
		if lookup(e, k) == nil && lookup(e, "rules") == nil {
			out = append(out, FieldError{Line: line, Field: f + "." + k, Problem: "is missing: a rule needs user, db, addr and auth", Fix: "e.g. '{user: dbuser_meta, db: all, addr: intra, auth: pwd}'"})
		}
	}
	addr, _ := scalarField(e, "addr")
	auth, _ := scalarField(e, "auth")
	if addr != nil && auth != nil && auth.Value == "peer" && addr.Value != "local" {
		out = append(out, FieldError{Line: auth.Line, Field: f + ".auth", Problem: "peer works on local (socket) connections only", Fix: "use addr: local, or another method"})
	}
	if addr != nil && auth != nil && hbaTLSAuths[auth.Value] && addr.Value == "local" {
		out = append(out, FieldError{Line: auth.Line, Field: f + ".auth", Problem: auth.Value + " needs TLS, which local (socket) connections do not have", Fix: "use addr: localhost for TLS to this node, or auth: peer on the socket"})
	}
	return out
}

func hbaAddrProblem(s string) (string, string) {
	switch {
	case hbaAddrKeywords[s]:
		return "", ""
	case s == "infra" || s == "admin":
		return fmt.Sprintf("%q is a Pigsty alias pigwf does not resolve", s), "write the CIDR of those nodes (e.g. 10.10.10.10/32)"
	}
	if _, _, err := net.ParseCIDR(s); err == nil {
		return "", ""
	}
	if validHost(s) {
		return "", ""
	}
	return fmt.Sprintf("%q is not an address", s), "use a CIDR (10.0.0.0/8), an IP, a host name, or local, localhost, intra, world, cluster"
}
