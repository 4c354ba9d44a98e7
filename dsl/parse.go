package dsl

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/internal/suggest"
	"github.com/pigwf/pigwf/inventory"
)

// commonKeys are the keys every step may have besides its kind.
var commonKeys = []string{"name", "when", "retry", "timeout"}

// ParseFile reads and parses a runbook file.
func ParseFile(path string) (*Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading runbook %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses a runbook: every problem of the file at once (Problems), or the typed Runbook.
// Parse checks each value's type and shape; Validate checks the rules across steps.
func Parse(file string, data []byte) (*Runbook, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{{File: file, Line: yamlErrLine(err), Problem: "is not YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Fix: "fix the syntax"}}
	}
	p := &parser{file: file}
	rb := &Runbook{File: file, Format: FormatVersion}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		p.probs.add(file, 1, "", "is not a runbook", "write a mapping with runbook, description and steps")
		return nil, p.probs
	}
	root := doc.Content[0]
	keys := p.pairs(root, "", []string{"runbook", "description", "steps"})
	if n := keys["runbook"]; n == nil {
		p.probs.add(file, root.Line, "runbook", "is missing", "name the runbook, e.g. runbook: rolling-restart")
	} else {
		rb.Name = p.name(n, "runbook")
	}
	if n := keys["description"]; n != nil {
		rb.Description = p.text(n, "description", false)
	}
	if n := keys["steps"]; n == nil {
		p.probs.add(file, root.Line, "steps", "is missing", "list the steps")
	} else {
		rb.Steps = p.steps(n, "steps", false)
	}
	if len(p.probs) > 0 {
		return nil, p.probs
	}
	return rb, nil
}

type parser struct {
	file  string
	probs Problems
}

func (p *parser) add(n *yaml.Node, field, problem, fix string) {
	p.probs.add(p.file, n.Line, field, problem, fix)
}

// pairs reads a mapping's keys, refusing unknown and repeated ones (with "did you mean").
func (p *parser) pairs(n *yaml.Node, field string, known []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := join(field, k.Value)
		switch {
		case !slices.Contains(known, k.Value):
			fix := "remove it"
			if best := suggest.Within(k.Value, known, 2); best != "" {
				fix = "did you mean " + best + "?"
			}
			p.add(k, f, "is not a field here", fix+" (fields: "+strings.Join(known, ", ")+")")
		case out[k.Value] != nil:
			p.add(k, f, "is written twice", "keep one")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) steps(n *yaml.Node, field string, inEach bool) []Step {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.add(n, field, "must be a non-empty list of steps", "write each step as '- name: ...'")
		return nil
	}
	var out []Step
	for i, sn := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if sn.Kind != yaml.MappingNode {
			p.add(sn, f, "must be a mapping", "write the step as '- name: ..., <kind>: {...}'")
			continue
		}
		out = append(out, p.step(sn, f, inEach))
	}
	return out
}

func (p *parser) step(n *yaml.Node, field string, inEach bool) Step {
	known := append([]string(nil), commonKeys...)
	for _, k := range Kinds {
		known = append(known, string(k))
	}
	keys := p.pairs(n, field, known)
	s := Step{Line: n.Line}
	if v := keys["name"]; v == nil {
		p.add(n, join(field, "name"), "is missing", "name every step (it names the step in the run's progress and in when:)")
	} else {
		s.Name = p.name(v, join(field, "name"))
		field = fmt.Sprintf("%s (%s)", field, s.Name)
	}
	var kinds []Kind
	for _, k := range Kinds {
		if keys[string(k)] != nil {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		kindNames := make([]string, len(Kinds))
		for i, k := range Kinds {
			kindNames[i] = string(k)
		}
		p.add(n, field, "has no step type", "give it exactly one of "+strings.Join(kindNames, ", "))
	case 1:
		s.Kind = kinds[0]
	default:
		p.add(n, field, fmt.Sprintf("has %d step types (%v)", len(kinds), kinds), "split it into one step per type")
	}
	if v := keys["when"]; v != nil {
		s.When = p.condition(v, join(field, "when"))
	}
	if v := keys["retry"]; v != nil {
		s.Retry = p.retry(v, join(field, "retry"))
		if s.Kind != "" && !retried[s.Kind] {
			p.add(v, join(field, "retry"), "does not apply to "+s.Kind.article()+" step", noRetry[s.Kind])
		}
	}
	if v := keys["timeout"]; v != nil {
		s.Timeout = p.duration(v, join(field, "timeout"))
		if s.Kind != "" && !timed[s.Kind] {
			p.add(v, join(field, "timeout"), "does not apply to "+s.Kind.article()+" step", noTimeout[s.Kind])
		}
	}
	if s.Kind == "" {
		return s
	}
	v, f := keys[string(s.Kind)], join(field, string(s.Kind))
	if v.Kind != yaml.MappingNode {
		p.add(v, f, "must be a mapping of the step's arguments", "e.g. "+string(s.Kind)+": {on: replicas}")
		return s
	}
	p.args(&s, v, f, inEach)
	return s
}

// The kinds retry and timeout apply to; the others say why not.
var (
	retried   = map[Kind]bool{KindSQL: true, KindReload: true, KindRestart: true, KindWait: true, KindPassword: true}
	timed     = map[Kind]bool{KindSQL: true, KindReload: true, KindRestart: true, KindWait: true, KindPassword: true, KindApproval: true}
	noRetry   = map[Kind]string{KindSwitchover: "a child run is not retried: its own steps are (remove retry)", KindRunbook: "a child run is not retried: its own steps are (remove retry)", KindApproval: "a decision is not retried (remove retry)", KindEach: "put retry on the loop's steps"}
	noTimeout = map[Kind]string{KindSwitchover: "a child run keeps its own timeouts (the approval's: pigwf_approval_timeout); remove timeout", KindRunbook: "a child run keeps its own timeouts; remove timeout", KindEach: "put timeout on the loop's steps"}
)

// args reads the arguments of s's kind from v.
func (p *parser) args(s *Step, v *yaml.Node, f string, inEach bool) {
	switch s.Kind {
	case KindSQL:
		a := p.pairs(v, f, []string{"on", "database", "statement"})
		s.SQL = &SQLArgs{On: p.target(a["on"], join(f, "on"), TargetLeader, inEach), Database: p.database(a["database"], join(f, "database"))}
		if a["statement"] == nil {
			p.add(v, join(f, "statement"), "is missing", "write the SQL to run")
		} else {
			s.SQL.Statement = p.text(a["statement"], join(f, "statement"), true)
		}
	case KindReload:
		a := p.pairs(v, f, []string{"on"})
		s.Reload = &TargetArgs{On: p.target(a["on"], join(f, "on"), defaultTarget(inEach, TargetMembers), inEach)}
	case KindRestart:
		a := p.pairs(v, f, []string{"on", "pending"})
		s.Restart = &RestartArgs{On: p.target(a["on"], join(f, "on"), defaultTarget(inEach, TargetReplicas), inEach), Pending: p.boolean(a["pending"], join(f, "pending"))}
		// The agents restart replicas only (a restart of the leader is a write outage): the
		// leader is restarted as a replica, after a switchover.
		if on := s.Restart.On; on == TargetLeader || on == TargetMembers {
			p.add(a["on"], join(f, "on"), fmt.Sprintf("%q includes the leader, which is never restarted in place", on),
				"switch over first (a switchover step), then restart the old leader as one of the replicas (on: replicas)")
		}
	case KindSwitchover:
		a := p.pairs(v, f, []string{"candidate"})
		s.Switchover = &SwitchoverArgs{}
		if c := a["candidate"]; c != nil {
			if c.Kind != yaml.ScalarNode || !memberRE.MatchString(c.Value) {
				p.add(c, join(f, "candidate"), fmt.Sprintf("%q is not a member name", c.Value), "name a member (its nodename), or leave candidate out to let pigwf choose")
			} else {
				s.Switchover.Candidate = c.Value
			}
		}
	case KindRunbook:
		s.Runbook = p.childRunbook(v, f)
	case KindWait:
		s.Wait = p.wait(v, f, inEach)
	case KindApproval:
		a := p.pairs(v, f, []string{"reason"})
		s.Approval = &ApprovalArgs{}
		if r := a["reason"]; r != nil {
			s.Approval.Reason = p.text(r, join(f, "reason"), false)
		}
	case KindEach:
		if inEach {
			p.add(v, f, "is inside another each", "loops do not nest: one each per list of steps")
		}
		a := p.pairs(v, f, []string{"of", "parallel", "steps"})
		s.Each = &EachArgs{Of: p.target(a["of"], join(f, "of"), TargetReplicas, false), Parallel: p.boolean(a["parallel"], join(f, "parallel"))}
		if s.Each.Of == TargetLeader {
			p.add(a["of"], join(f, "of"), "loops over one member", "use each over replicas or members; a step on the leader needs no loop")
		}
		if a["steps"] == nil {
			p.add(v, join(f, "steps"), "is missing", "list the steps to run for each member")
		} else {
			s.Each.Steps = p.steps(a["steps"], join(f, "steps"), true)
		}
	case KindPassword:
		if inEach {
			p.add(v, f, "is inside each", "a role belongs to the whole cluster: set its password once, outside the loop")
		}
		a := p.pairs(v, f, []string{"role", "secret"})
		s.Password = &PasswordArgs{}
		for _, k := range []struct {
			key, rule, fix string
			to             *string
		}{
			{"role", inventory.RuleRoleName, "name the role whose password to set, e.g. role: dbuser_meta", &s.Password.Role},
			{"secret", inventory.RuleSecretName, "name the secret in the worker's store, e.g. secret: dbuser_meta", &s.Password.Secret},
		} {
			if a[k.key] == nil {
				p.add(v, join(f, k.key), "is missing", k.fix)
			} else {
				*k.to = p.rule(a[k.key], join(f, k.key), k.rule)
			}
		}
	}
}

// childRunbook reads a runbook step's arguments: a built-in runbook a run can start.
func (p *parser) childRunbook(v *yaml.Node, f string) *RunbookArgs {
	a := p.pairs(v, f, []string{"name"})
	c := a["name"]
	switch {
	case c != nil && c.Kind == yaml.ScalarNode && slices.Contains(ChildRunbooks, c.Value):
		return &RunbookArgs{Name: c.Value}
	case c != nil && c.Kind == yaml.ScalarNode && notChildRunbooks[c.Value] != "":
		p.add(c, join(f, "name"), c.Value+" cannot run inside a runbook", notChildRunbooks[c.Value])
	case c != nil:
		p.add(c, join(f, "name"), "is not a built-in runbook", "use one of "+strings.Join(ChildRunbooks, ", "))
	default:
		p.add(v, join(f, "name"), "is missing", "name a built-in runbook: one of "+strings.Join(ChildRunbooks, ", "))
	}
	return &RunbookArgs{}
}

func defaultTarget(inEach bool, outside Target) Target {
	if inEach {
		return TargetMember
	}
	return outside
}

func (p *parser) wait(v *yaml.Node, f string, inEach bool) *WaitArgs {
	a := p.pairs(v, f, []string{"until", "on", "lag", "statement", "database"})
	w := &WaitArgs{On: p.target(a["on"], join(f, "on"), defaultTarget(inEach, TargetReplicas), inEach)}
	u := a["until"]
	if u == nil || u.Kind != yaml.ScalarNode || (u.Value != UntilStreaming && u.Value != UntilLag && u.Value != UntilSQL) {
		at := v
		if u != nil {
			at = u
		}
		p.add(at, join(f, "until"), "is not a condition", "use streaming, lag (with lag: 16MB) or sql (with statement: a query returning true)")
		return w
	}
	w.Until = u.Value
	switch w.Until {
	case UntilLag:
		l := a["lag"]
		if l == nil {
			p.add(v, join(f, "lag"), "is missing", "say how far behind is close enough, e.g. lag: 16MB")
			break
		}
		m := lagRE.FindStringSubmatch(strings.TrimSpace(l.Value))
		if l.Kind != yaml.ScalarNode || m == nil {
			p.add(l, join(f, "lag"), fmt.Sprintf("%q is not a size", l.Value), "write bytes or a size like 16MB (B, kB, MB, GB)")
			break
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		w.Lag = n * map[string]uint64{"": 1, "B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]]
	case UntilSQL:
		if a["statement"] == nil {
			p.add(v, join(f, "statement"), "is missing", "write a query that returns true once the condition holds")
		} else {
			w.Statement = p.text(a["statement"], join(f, "statement"), true)
		}
		w.Database = p.database(a["database"], join(f, "database"))
	}
	for _, k := range []string{"lag", "statement", "database"} {
		if a[k] != nil && !(k == "lag" && w.Until == UntilLag) && !(k != "lag" && w.Until == UntilSQL) {
			p.add(a[k], join(f, k), "does not apply to until: "+w.Until, "remove it")
		}
	}
	return w
}

func (p *parser) condition(v *yaml.Node, f string) *Condition {
	if v.Kind != yaml.MappingNode {
		p.add(v, f, "must be a mapping", "e.g. when: {step: restart-replicas, changed: true}")
		return nil
	}
	a := p.pairs(v, f, []string{"step", "changed"})
	c := &Condition{Line: v.Line}
	if s := a["step"]; s == nil {
		p.add(v, join(f, "step"), "is missing", "name the earlier step whose result decides")
	} else {
		c.Step = p.name(s, join(f, "step"))
	}
	if ch := a["changed"]; ch == nil {
		p.add(v, join(f, "changed"), "is missing", "say changed: true or changed: false")
	} else {
		b := p.boolean(ch, join(f, "changed"))
		c.Changed = &b
	}
	return c
}

func (p *parser) retry(v *yaml.Node, f string) *Retry {
	if v.Kind != yaml.MappingNode {
		p.add(v, f, "must be a mapping", "e.g. retry: {attempts: 3, wait: 10s}")
		return nil
	}
	a := p.pairs(v, f, []string{"attempts", "wait"})
	r := &Retry{Attempts: 1, Wait: time.Second}
	if n := a["attempts"]; n != nil {
		k, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil || k < 1 || k > 100 {
			p.add(n, join(f, "attempts"), fmt.Sprintf("%q is not a number of attempts", n.Value), "use 1-100")
		} else {
			r.Attempts = k
		}
	}
	if w := a["wait"]; w != nil {
		r.Wait = p.duration(w, join(f, "wait"))
	}
	return r
}
