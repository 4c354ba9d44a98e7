package inventory

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// The rules below are strict on purpose: inventory values end up in root shell scripts on the
// nodes, in generated files (postgresql.conf, pg_hba.conf, limits.d, /etc/hosts) and in SQL, so
// a value is accepted only in the shape its use needs, and anything else is refused at load,
// before any connection, with the variable named.
var (
	// identRE: a PostgreSQL role or database name pigwf can use unquoted in SQL and files.
	identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	// nodenameRE: a host name (a label, or dotted labels), at most 63 characters: it is also the
	// HA member name and, with '-' and '.' as '_', the member's replication slot name, so '_' and
	// upper case (which would collide there) are out, and two nodenames must not collide.
	nodenameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	// unixUserRE: an SSH login name.
	unixUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// debPkgRE: Debian's rule for package names (Policy 5.6.7); never starts with '-'.
	debPkgRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`)
	// nodePathRE: a path on the nodes, used in shell scripts and configuration files.
	nodePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._+@,=:-]+)+/?$`)
	// namespaceRE: an etcd key prefix.
	namespaceRE = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)
	// groupNameRE: an inventory group (Ansible/Pigsty group names; '-' as Pigsty uses it).
	groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	// sysctlValueRE: a kernel setting's value (numbers, words, space-separated vectors).
	sysctlValueRE = regexp.MustCompile(`^[A-Za-z0-9._:/,+-]+( [A-Za-z0-9._:/,+-]+)*$`)
	// limitValueRE: a limits.conf value.
	limitValueRE = regexp.MustCompile(`^(-1|[0-9]{1,19}|unlimited|infinity)$`)
	sysctlKeyRE  = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_-]+)+$`)
	hostnameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	numericRE    = regexp.MustCompile(`^[0-9.]+$`)
	digitsRE     = regexp.MustCompile(`^[0-9]{1,5}$`)
	plainRE      = regexp.MustCompile(`^[A-Za-z0-9._:/@+-]+$`)
	// secretNameRE: one path element of the worker's secret store (a cluster's directory, a
	// secret's file): no '/', never '.' or '..', never a hidden file.
	secretNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
)

// limitItems are the items limits.conf knows (limits.conf(5)).
var limitItems = set("core data fsize memlock nofile rss stack cpu nproc as maxlogins maxsyslogins nonewprivs priority locks sigpending msgqueue nice rtprio")

// validHost: an IP address, or a host name whose labels are not all numeric (10.0.0.256 is a
// mistyped address, not a name).
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	return len(s) <= 253 && hostnameRE.MatchString(s) && !numericRE.MatchString(s)
}

// badRune returns the first control, format (e.g. bidirectional override) or line/paragraph
// separator character of s: none of them belongs in a value that reaches a file, a shell or a
// terminal.
func badRune(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) || r == unicode.ReplacementChar {
			return r, true
		}
	}
	return 0, false
}

// show prints a name from the file in a message: as is when it is plain, quoted (control
// characters escaped) when not, so a hostile name cannot forge lines of the report.
func show(s string) string {
	if plainRE.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// varRule checks one variable where it is written; the FieldErrors it returns carry their line
// and, for a part of a structured value, their own Field (e.g. pg_parameters.port). Where and
// File are filled in by the caller.
type varRule func(v *yaml.Node) []FieldError

// varRules: every variable pigwf reads, with its rule. Values are checked where they are written
// (all.vars, a group's vars or a host's), once, whichever level ends up used; the parsers in
// vars.go then read the effective values and need not check them again.
var varRules map[string]varRule

func init() {
	varRules = map[string]varRule{
		"pg_cluster":   scalarRule(clusterNameProblem),
		"ansible_host": scalarRule(hostProblem),
		"ansible_port": portRule(DefaultSSHPort),
		"ansible_user": scalarRule(func(s string) (string, string) {
			return rx(s, unixUserRE, "is not a user name", "use a login name like root or admin")
		}),
		"ansible_ssh_private_key_file": scalarRule(localPathProblem),
		"pigwf_known_hosts":            scalarRule(localPathProblem),
		"nodename":                     scalarRule(nodenameProblem),
		"node_packages":                listRule("node_packages", packageProblem),
		"node_sysctl_params":           mapRule("node_sysctl_params", sysctlProblem),
		"node_limits":                  mapRule("node_limits", limitProblem),
		"pg_port":                      portRule(5432),
		"pg_data":                      scalarRule(nodePathProblem),
		"pg_bin_dir":                   scalarRule(nodePathProblem),
		"pgbackrest_repo_path":         scalarRule(nodePathProblem),
		"pg_namespace": scalarRule(func(s string) (string, string) {
			return rx(s, namespaceRE, "is not an etcd key prefix", "use a path of plain words, e.g. /pigwf")
		}),
		"pg_replication_username":    scalarRule(roleNameProblem),
		"pg_admin_username":          scalarRule(roleNameProblem),
		"pg_replication_password":    scalarRule(passwordProblem),
		"pg_admin_password":          scalarRule(passwordProblem),
		"pg_checksum":                scalarRule(boolProblem),
		"pg_synchronous_mode":        scalarRule(boolProblem),
		"pg_synchronous_mode_strict": scalarRule(boolProblem),
		"pg_rpo":                     intRule(0, 1<<50),
		"pg_rto":                     scalarRule(rtoProblem),
		"pgbackrest_retention_full":  intRule(1, 9999999),
		"pg_backup_source": scalarRule(func(s string) (string, string) {
			if s != BackupSourceLeader && s != BackupSourceReplica {
				return fmt.Sprintf("%q is not a backup source", s), "write leader (the default) or replica"
			}
			return "", ""
		}),
		"pigwf_approval_timeout": scalarRule(func(s string) (string, string) {
			if d, err := time.ParseDuration(s); err != nil || d <= 0 {
				return fmt.Sprintf("%q is not a duration", s), "write it like 30m or 2h"
			}
			return "", ""
		}),
		"pigwf_approvers": approversRule,
		"pg_parameters":   parametersRule,
		"pg_users":        entriesRule("pg_users", userFields, checkUser),
		"pg_databases":    entriesRule("pg_databases", databaseFields, checkDatabase),
		"pg_hba_rules":    entriesRule("pg_hba_rules", hbaFields, checkHBARule),
		// the access layer (services.go)
		"pg_services":         entriesRule("pg_services", serviceFields, checkService),
		"pg_default_services": entriesRule("pg_default_services", serviceFields, checkService),
		"pigwf_service_check": serviceTimingRule,
		"haproxy_enabled":     scalarRule(boolProblem),
		"etcd_cluster": scalarRule(func(s string) (string, string) {
			return rx(s, groupNameRE, "is not a group name", "name the group under all.children that lists the etcd nodes")
		}),
		"etcd_port":         portRule(2379),
		"etcd_peer_port":    portRule(2380),
		"pgbouncer_port":    portRule(6432),
		"pgbouncer_enabled": scalarRule(boolProblem),
		// lab-only: etcd, the agents' API and replication in plain text (see Inventory.Plaintext)
		"pigwf_insecure_plaintext": scalarRule(boolProblem),
		"pg_tags":                  mapRule("pg_tags", tagProblem),
	}
}

// tagProblem: pg_tags, a member's HA tags as Patroni's tags section holds them: the switches
// (nofailover, nosync, noloadbalance) true or false, and custom tags by the agent's own rule
// (haagent.CustomTagProblem), which its config file is checked against too.
func tagProblem(k, v string) (string, string) {
	if slices.Contains(haagent.Switches, k) {
		return boolProblem(v)
	}
	return haagent.CustomTagProblem(k, v)
}

// rx is the common case of a scalar rule: the value must match re.
func rx(s string, re *regexp.Regexp, problem, fix string) (string, string) {
	if !re.MatchString(s) {
		return fmt.Sprintf("%q %s", s, problem), fix
	}
	return "", ""
}

// scalarRule lifts a check of one string value into a varRule; lists and mappings are refused.
func scalarRule(check func(string) (problem, fix string)) varRule {
	return func(v *yaml.Node) []FieldError {
		if v.Kind != yaml.ScalarNode {
			return []FieldError{{Line: v.Line, Problem: "must be a single value, not a list or mapping"}}
		}
		if p, f := check(v.Value); p != "" {
			return []FieldError{{Line: v.Line, Problem: p, Fix: f}}
		}
		return nil
	}
}

// portRule: an integer 1-65535 written as digits only ("2379$(id)" and "0x50" are refused);
// def is the default the fix names (0: none).
func portRule(def int) varRule {
	return scalarRule(func(s string) (string, string) {
		if p, ok := portOf(s); !ok || p < 1 {
			fix := "use an integer 1-65535"
			if def != 0 {
				fix += fmt.Sprintf(" (%d by default)", def)
			}
			return fmt.Sprintf("%q is not a TCP port", s), fix
		}
		return "", ""
	})
}

// portOf parses a port written as digits only.
func portOf(s string) (int, bool) {
	if !digitsRE.MatchString(s) {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p <= 65535
}

func intRule(lo, hi int64) varRule {
	return scalarRule(func(s string) (string, string) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Sprintf("%q is not an integer >= %d", s, lo), fmt.Sprintf("use an integer from %d to %d", lo, hi)
		}
		return "", ""
	})
}

// ParseRTO reads pg_rto, the leadership lease a cluster's HA agents fail over after: an integer
// is seconds, as Pigsty writes it (its default is 30); a duration ("500ms", "2s") says any other.
func ParseRTO(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// rtoProblem: pg_rto must be a lease the agents accept, every timing derived from it included.
func rtoProblem(s string) (string, string) {
	d, err := ParseRTO(s)
	if err != nil {
		return fmt.Sprintf("%q is not a number of seconds or a duration", s), "write seconds as Pigsty does (30), or a duration like 500ms or 3s"
	}
	if err := haagent.DefaultConfig().WithLeaderTimeout(d).Validate(); err != nil {
		return fmt.Sprintf("%s is not a lease the HA agents take: %v", d, err), "use a value from 150ms to 60s"
	}
	return "", ""
}

func boolProblem(s string) (string, string) {
	if _, err := strconv.ParseBool(s); err != nil {
		return fmt.Sprintf("%q is not true or false", s), "write true or false"
	}
	return "", ""
}

func clusterNameProblem(s string) (string, string) {
	return rx(s, clusterNameRE, "is not a valid cluster name", "use lower-case letters, digits and '-', starting with a letter (a DNS label, e.g. pg-test)")
}

func hostProblem(s string) (string, string) {
	if !validHost(s) {
		return fmt.Sprintf("%q is not an IP address or host name", s), "use the node's address, e.g. 10.10.10.11"
	}
	return "", ""
}

func roleNameProblem(s string) (string, string) {
	return rx(s, identRE, "is not a valid role name", "use lower-case letters, digits and '_', starting with a letter or '_' (at most 63)")
}

func secretNameProblem(s string) (string, string) {
	return rx(s, secretNameRE, "is not a secret name", "use lower-case letters, digits, '_', '.' and '-', starting with a letter or digit (at most 63)")
}

// textProblem: free text (passwords, comments, titles) may hold anything printable.
func textProblem(s string) (string, string) {
	if r, bad := badRune(s); bad {
		return fmt.Sprintf("holds the control character %U", r), "remove line breaks, tabs and other control characters"
	}
	return "", ""
}

// passwordProblem: printable ASCII. PostgreSQL hashes a non-ASCII password in its SASLprep
// form, which pigwf (setting SCRAM verifiers computed on the worker) does not reproduce: the
// role would be locked out, so such a password is refused here, before anything runs.
func passwordProblem(s string) (string, string) {
	if p, f := textProblem(s); p != "" {
		return p, f
	}
	for _, r := range s {
		if r > unicode.MaxASCII {
			return fmt.Sprintf("holds the non-ASCII character %q", r), "use ASCII letters, digits and punctuation (pigwf sets passwords as SCRAM verifiers and does not reproduce PostgreSQL's normalisation of other characters)"
		}
	}
	return "", ""
}

// localPathProblem: a file on the worker's machine (SSH key, known_hosts), opened by Go, never
// by a shell; it must be absolute since nothing expands '~' or knows the worker's directory.
func localPathProblem(s string) (string, string) {
	if p, f := textProblem(s); p != "" {
		return p, f
	}
	if !strings.HasPrefix(s, "/") {
		return fmt.Sprintf("%q is not an absolute path", s), "write the full path (~ is not expanded), e.g. /home/admin/.ssh/id_ed25519"
	}
	return "", ""
}

// nodePathProblem: a directory on the nodes, written into root shell scripts and configuration.
func nodePathProblem(s string) (string, string) {
	if !nodePathRE.MatchString(s) {
		return fmt.Sprintf("%q is not an absolute path of plain names", s), "use an absolute path of letters, digits and . _ - + @ , = : (no spaces, quotes or $)"
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." || part == "." {
			return fmt.Sprintf("%q has a '%s' component", s, part), "write the path without . or .."
		}
	}
	return "", ""
}

func nodenameProblem(s string) (string, string) {
	if len(s) > 63 || !nodenameRE.MatchString(s) {
		return fmt.Sprintf("%q is not a valid node name", s), "use lower-case letters, digits, '-' and '.', at most 63 (a host name, e.g. pg-test-1)"
	}
	return "", ""
}

// slotName is the replication slot the HA agent names after a member (pgctl.SlotName).
func slotName(nodename string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(nodename)
}

func packageProblem(s string) (string, string) {
	if parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }); len(parts) > 1 {
		several := true
		for _, p := range parts {
			several = several && debPkgRE.MatchString(p)
		}
		if several {
			return fmt.Sprintf("%q is several packages in one entry", s), "pigwf installs each entry as one package: write one name per entry"
		}
	}
	return rx(s, debPkgRE, "is not a Debian package name", "use lower-case letters, digits and + . -, starting with a letter or digit (e.g. postgresql-15)")
}

func sysctlProblem(k, v string) (string, string) {
	if !sysctlKeyRE.MatchString(k) || !sysctlValueRE.MatchString(v) {
		return fmt.Sprintf("%s = %q is not a sysctl setting", show(k), v), "use dotted names like net.core.somaxconn and plain values"
	}
	return "", ""
}

func limitProblem(k, v string) (string, string) {
	if !limitItems[k] {
		return fmt.Sprintf("%s is not a limits.conf item", show(k)), "use nofile, nproc, memlock, core, stack, ... (limits.conf(5))"
	}
	if !limitValueRE.MatchString(v) {
		return fmt.Sprintf("%s = %q is not a limit", k, v), "use a number, -1 or unlimited"
	}
	return "", ""
}

// listRule: a list of single values, each checked.
func listRule(field string, check func(string) (string, string)) varRule {
	return func(v *yaml.Node) []FieldError {
		if v.Kind != yaml.SequenceNode {
			return []FieldError{{Line: v.Line, Problem: "must be a list", Fix: "write [a, b] or one '- a' per line"}}
		}
		var out []FieldError
		for i, item := range v.Content {
			f := fmt.Sprintf("%s[%d]", field, i)
			if item = resolve(item); item == nil || item.Kind != yaml.ScalarNode {
				out = append(out, FieldError{Line: v.Line, Field: f, Problem: "must be a single value"})
			} else if p, fix := check(item.Value); p != "" {
				out = append(out, FieldError{Line: item.Line, Field: f, Problem: p, Fix: fix})
			}
		}
		return out
	}
}

// mapRule: a mapping of name: single value, each pair checked.
func mapRule(field string, check func(k, v string) (string, string)) varRule {
	return func(v *yaml.Node) []FieldError {
		if v.Kind != yaml.MappingNode {
			return []FieldError{{Line: v.Line, Problem: "must be a mapping of name: value", Fix: "write {name: value, ...}"}}
		}
		var out []FieldError
		for _, p := range pairs(v, collect(&out, field)) {
			f := field + "." + show(p.key.Value)
			if p.val == nil || p.val.Kind != yaml.ScalarNode {
				out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "must be a single value"})
			} else if prob, fix := check(p.key.Value, p.val.Value); prob != "" {
				out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: prob, Fix: fix})
			}
		}
		return out
	}
}

// collect turns problems found while reading a mapping into FieldErrors of field (or of
// field.key for a problem with one key).
func collect(out *[]FieldError, field string) reporter {
	return func(line int, key, problem, fix string) {
		f := field
		if key != "" {
			f += "." + show(key)
		}
		*out = append(*out, FieldError{Line: line, Field: f, Problem: problem, Fix: fix})
	}
}

func approversRule(v *yaml.Node) []FieldError {
	out := listRule("pigwf_approvers", func(s string) (string, string) {
		if p, f := textProblem(s); p != "" {
			return p, f
		}
		if strings.TrimSpace(s) != s || s == "" || len(s) > 128 {
			return fmt.Sprintf("%q is not a name", s), "write each approver's name as they sign approvals, e.g. alice"
		}
		return "", ""
	})(v)
	seen := map[string]bool{}
	for i, item := range v.Content {
		if item = resolve(item); item != nil && item.Kind == yaml.ScalarNode {
			if seen[item.Value] {
				out = append(out, FieldError{Line: item.Line, Field: fmt.Sprintf("pigwf_approvers[%d]", i), Problem: fmt.Sprintf("%q is listed twice", item.Value), Fix: "list each approver once"})
			}
			seen[item.Value] = true
		}
	}
	return out
}
