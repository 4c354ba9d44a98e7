package inventory

import (
	"fmt"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// Values already decoded. The CLI builds a workflow's input from an inventory it checked, but
// anyone who may start a workflow can send another input (temporal workflow start --input ...),
// so the worker checks the values it receives again (activities' Validate methods) before acting
// on them. It does so with the rules here, which are the loader's own: CheckDecoded encodes a
// value back to YAML and hands it to the rule the loader applies to the file.

// Rules of values that are not one variable's, for CheckDecoded and CheckEntry.
const (
	RuleHost         = "host"          // a key under hosts: an IP address or a host name
	RuleLocalPath    = "local path"    // a file on the worker's machine: absolute, printable
	RuleText         = "text"          // free text (comments, titles): printable
	RuleRoleName     = "role name"     // a PostgreSQL role pigwf creates or grants
	RuleDatabaseName = "database name" // a PostgreSQL database pigwf creates
	RulePort         = "port"          // a TCP port without a variable of its own
	RuleHostURL      = "host URL"      // http(s)://<host>:<port>, as etcd endpoints and agent APIs are written
	RuleSecretName   = "secret name"   // a file in the worker's secret store: $PIGWF_HOME/secrets/<cluster>/<name>
)

var valueRules = map[string]varRule{
	RuleHost:         scalarRule(hostProblem),
	RuleLocalPath:    scalarRule(localPathProblem),
	RuleText:         scalarRule(textProblem),
	RuleRoleName:     scalarRule(roleNameProblem),
	RuleDatabaseName: scalarRule(databaseNameProblem),
	RulePort:         portRule(0),
	RuleHostURL:      scalarRule(hostURLProblem),
	RuleSecretName:   scalarRule(secretNameProblem),
}

// CheckDecoded checks value, as decoded from an inventory, against rule: the rule of an inventory
// variable (rules.go; e.g. "pg_data", "node_packages", "pg_parameters") or one of the Rule*
// constants. The problems it returns name field, the value's place in the caller's input (e.g.
// "spec.data_dir"; "packages[2]" for the third item of a value checked as node_packages); none
// when the value passes. An unknown rule is a bug in the caller, and panics.
func CheckDecoded(field, rule string, value any) []FieldError {
	return check(field, rule, rule, value)
}

// CheckEntry checks one entry, as decoded, against the rule of a list of entries ("pg_users",
// "pg_databases", "pg_hba_rules"): entry is a mapping of the entry's fields.
func CheckEntry(field, rule string, entry any) []FieldError {
	return check(field, rule, rule+"[0]", []any{entry})
}

// check runs rule on value encoded as YAML; a problem's Field starting with prefix (the rule's
// own name for the value) is renamed to field.
func check(field, rule, prefix string, value any) []FieldError {
	r := varRules[rule]
	if r == nil {
		r = valueRules[rule]
	}
	if r == nil {
		panic("inventory: no rule " + rule)
	}
	var n yaml.Node
	if err := n.Encode(value); err != nil {
		return []FieldError{{Field: field, Problem: fmt.Sprintf("cannot be read as %s: %v", rule, err)}}
	}
	var out []FieldError
	for _, fe := range r(&n) {
		switch {
		case fe.Field == "":
			fe.Field = field
		case strings.HasPrefix(fe.Field, prefix):
			fe.Field = field + strings.TrimPrefix(fe.Field, prefix)
		}
		fe.Line = 0 // of the YAML encoded here, which no one wrote
		out = append(out, fe)
	}
	return out
}

// hostURLProblem: http(s)://<host>:<port> and nothing more, the host by the hosts' rule and the
// port by the ports' (etcdEndpoints writes them so from the etcd hosts and etcd_port).
func hostURLProblem(s string) (string, string) {
	const fix = "write http://<host>:<port> (or https), e.g. http://10.10.10.11:2379"
	if p, f := textProblem(s); p != "" {
		return p, f
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "?") || strings.Contains(s, "#") {
		return fmt.Sprintf("%q is not a URL of a host and port", s), fix
	}
	if !validHost(u.Hostname()) {
		return fmt.Sprintf("%q: %q is not an IP address or host name", s, u.Hostname()), fix
	}
	if p, ok := portOf(u.Port()); !ok || p < 1 {
		return fmt.Sprintf("%q: %q is not a TCP port", s, u.Port()), "use an integer 1-65535"
	}
	return "", ""
}
