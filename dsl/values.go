package dsl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/inventory"
)

// The rules of a runbook's scalar values. Names that reach PostgreSQL or the worker's files
// (databases, roles, secrets) are held to the inventory's rules, the ones the worker checks
// activity inputs against again (inventory.CheckDecoded): one rule per kind of value.

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	memberRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	lagRE    = regexp.MustCompile(`^([0-9]{1,15})\s*(B|kB|MB|GB)?$`)
)

func (p *parser) name(n *yaml.Node, f string) string {
	if n.Kind != yaml.ScalarNode || !nameRE.MatchString(n.Value) {
		p.add(n, f, fmt.Sprintf("%q is not a name", n.Value), "use lower-case letters, digits and '-', starting with a letter")
		return ""
	}
	return n.Value
}

func (p *parser) target(n *yaml.Node, f string, def Target, inEach bool) Target {
	if n == nil {
		return def
	}
	t := Target(n.Value)
	switch {
	case n.Kind != yaml.ScalarNode:
	case t == TargetLeader, t == TargetReplicas, t == TargetMembers:
		return t
	case t == TargetMember && inEach:
		return t
	case t == TargetMember:
		p.add(n, f, `"member" means the loop's member`, "use it inside each; here use leader, replicas or members")
		return def
	}
	p.add(n, f, fmt.Sprintf("%q is not a target", n.Value), "use leader, replicas or members (member inside each)")
	return def
}

// database is a database name (default postgres), by the inventory's rule.
func (p *parser) database(n *yaml.Node, f string) string {
	if n == nil {
		return "postgres"
	}
	return p.rule(n, f, inventory.RuleDatabaseName)
}

// rule checks a scalar against one of the inventory's value rules; "" when it breaks it.
func (p *parser) rule(n *yaml.Node, f, rule string) string {
	if n.Kind != yaml.ScalarNode {
		p.add(n, f, "must be a single value", "write it as text, not a list or mapping")
		return ""
	}
	if probs := inventory.CheckDecoded(f, rule, n.Value); len(probs) > 0 {
		for _, fe := range probs {
			p.add(n, f, fe.Problem, fe.Fix)
		}
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, f string) bool {
	if n == nil {
		return false
	}
	b, err := strconv.ParseBool(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.add(n, f, fmt.Sprintf("%q is not true or false", n.Value), "write true or false")
	}
	return b
}

func (p *parser) duration(n *yaml.Node, f string) time.Duration {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d <= 0 || d > 24*time.Hour {
		p.add(n, f, fmt.Sprintf("%q is not a duration", n.Value), "write it like 30s, 5m or 1h (at most 24h)")
		return 0
	}
	return d
}

// text is free text (a description, SQL): no control characters but newline and tab (SQL may
// span lines), and never empty when required.
func (p *parser) text(n *yaml.Node, f string, required bool) string {
	if n.Kind != yaml.ScalarNode {
		p.add(n, f, "must be text", "write a string")
		return ""
	}
	if required && strings.TrimSpace(n.Value) == "" {
		p.add(n, f, "is empty", "write it")
	}
	if r, bad := TextControl(n.Value); bad {
		p.add(n, f, fmt.Sprintf("has the control character %U", r), "remove it")
	}
	return n.Value
}

// TextControl is the first character of s that free text in a runbook may not hold: a control
// or format character other than newline and tab. The worker checks SQL statements by it again.
func TextControl(s string) (rune, bool) {
	for _, r := range s {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			return r, true
		}
	}
	return 0, false
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// yamlErrLine is the line a YAML syntax error names ("yaml: line 3: ..."), else 1.
func yamlErrLine(err error) int {
	var line int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); e == nil && line > 0 {
		return line
	}
	return 1
}
