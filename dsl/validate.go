package dsl

import (
	"fmt"
	"strings"
)

// Member is what Validate knows of a member of the cluster a runbook is for: its name (the
// nodename) and its inventory role (primary, replica, offline).
type Member struct {
	Name string
	Role string
}

// Validate checks the rules across a parsed runbook's steps, against the cluster it is for,
// before any run starts; every problem at once (Problems):
//   - step names are unique (they name the steps in the run's progress and in when:);
//   - when: names a step that comes earlier, at this level or an enclosing one;
//   - a restart, a switchover or a risky child runbook has an approval before it that always
//     runs (no when:), at its level or an enclosing one;
//   - each loops over a selection the cluster has (each of replicas in a one-member cluster
//     would do nothing);
//   - a switchover's candidate is a member.
func Validate(rb *Runbook, members []Member) error {
	v := &validator{file: rb.File, members: members, seen: map[string]int{}}
	v.steps(rb.Steps, "steps", scope{})
	return v.probs.err()
}

type validator struct {
	file    string
	members []Member
	seen    map[string]int // step name -> line
	probs   Problems
}

// scope is what the steps of one list may rely on: the names of the steps before them (at
// this level and the enclosing ones) and whether an unconditional approval came before.
type scope struct {
	earlier  map[string]bool
	approved bool
}

func (s scope) with(name string) scope {
	e := make(map[string]bool, len(s.earlier)+1)
	for k := range s.earlier {
		e[k] = true
	}
	e[name] = true
	return scope{earlier: e, approved: s.approved}
}

func (v *validator) steps(steps []Step, field string, sc scope) {
	for i, s := range steps {
		f := fmt.Sprintf("%s[%d] (%s)", field, i, s.Name)
		if prev, dup := v.seen[s.Name]; dup && s.Name != "" {
			v.probs.add(v.file, s.Line, f+".name", fmt.Sprintf("is also the name of the step at line %d", prev), "give every step its own name")
		} else {
			v.seen[s.Name] = s.Line
		}
		if c := s.When; c != nil && !sc.earlier[c.Step] {
			fix := "name a step that comes before this one"
			switch line, known := v.seen[c.Step]; {
			case c.Step == s.Name:
				fix = "a step cannot depend on itself"
			case known && line < s.Line:
				fix = "a loop's steps are not visible after it: name the loop (changed when any member's run changed)"
			case known:
				fix = "a step can only depend on one that ran before it"
			}
			v.probs.add(v.file, c.Line, f+".when.step", fmt.Sprintf("%q is not an earlier step", c.Step), fix)
		}
		if s.risky() && !sc.approved {
			v.probs.add(v.file, s.Line, f, fmt.Sprintf("is a %s without an approval before it", s.describe()),
				"add an approval step before it (approval: {reason: ...}), one that always runs (no when:)")
		}
		switch s.Kind {
		case KindApproval:
			if s.When == nil {
				sc.approved = true
			}
		case KindSwitchover:
			if c := s.Switchover.Candidate; c != "" && !v.isMember(c) {
				v.probs.add(v.file, s.Line, f+".switchover.candidate", fmt.Sprintf("%q is not a member of the cluster (%s)", c, v.memberNames()), "name a member, or leave candidate out")
			}
		case KindEach:
			if n := v.selected(s.Each.Of); n == 0 {
				v.probs.add(v.file, s.Line, f+".each.of", fmt.Sprintf("selects no member: the cluster has %d member(s) (%s)", len(v.members), v.memberNames()), "loop over members, or leave the loop out")
			}
			v.steps(s.Each.Steps, f+".each.steps", sc)
		}
		sc = sc.with(s.Name)
	}
}

// selected is how many members a loop's selection has in the cluster as the inventory has it
// (the run selects by the roles the agents report then; the count does not change by a
// failover).
func (v *validator) selected(t Target) int {
	switch t {
	case TargetMembers:
		return len(v.members)
	case TargetReplicas:
		return max(len(v.members)-1, 0)
	}
	return 0
}

func (v *validator) isMember(name string) bool {
	for _, m := range v.members {
		if m.Name == name {
			return true
		}
	}
	return false
}

func (v *validator) memberNames() string {
	names := make([]string, len(v.members))
	for i, m := range v.members {
		names[i] = m.Name
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// describe names a risky step for a message.
func (s Step) describe() string {
	if s.Kind == KindRunbook {
		return "child run of " + s.Runbook.Name
	}
	return string(s.Kind)
}
