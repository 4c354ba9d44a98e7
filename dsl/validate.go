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
//     would do nothing); a loop over members restarts no member (one is the leader); a
//     parallel loop holds no approval, switchover or child runbook (one run has one approval
//     gate open at a time, and one switchover makes sense at a time);
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
		if !s.wellFormed() {
			// Only a Runbook built some other way than Parse (a crafted workflow input) gets here.
			v.probs.add(v.file, s.Line, f, fmt.Sprintf("has no arguments for its kind %q", s.Kind), "write the step as Parse reads it")
			continue
		}
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
			v.loop(s, f)
			v.steps(s.Each.Steps, f+".each.steps", sc)
		}
		sc = sc.with(s.Name)
	}
}

// loop checks what a loop's steps may do for each of its members.
func (v *validator) loop(s Step, f string) {
	for i, n := range s.Each.Steps {
		nf := fmt.Sprintf("%s.each.steps[%d] (%s)", f, i, n.Name)
		switch {
		case n.Kind == KindRestart && n.wellFormed() && n.Restart.On == TargetMember && s.Each.Of == TargetMembers:
			v.probs.add(v.file, n.Line, nf+".restart", "restarts the leader too: the loop is over members",
				"loop over replicas (each: {of: replicas}); switch over, then restart the old leader as a replica")
		case s.Each.Parallel && (n.Kind == KindApproval || n.Kind == KindSwitchover || n.Kind == KindRunbook):
			v.probs.add(v.file, n.Line, nf, fmt.Sprintf("is %s inside a parallel loop", n.Kind.article()),
				"put it before the loop, or make the loop sequential (parallel: false)")
		}
	}
}

// wellFormed: the step's kind is one of Kinds and its arguments are there.
func (s Step) wellFormed() bool {
	switch s.Kind {
	case KindSQL:
		return s.SQL != nil
	case KindReload:
		return s.Reload != nil
	case KindRestart:
		return s.Restart != nil
	case KindSwitchover:
		return s.Switchover != nil
	case KindRunbook:
		return s.Runbook != nil
	case KindWait:
		return s.Wait != nil
	case KindApproval:
		return s.Approval != nil
	case KindEach:
		return s.Each != nil
	case KindPassword:
		return s.Password != nil
	}
	return false
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
	switch s.Kind {
	case KindRunbook:
		return "child run of " + s.Runbook.Name
	case KindPassword:
		return "password change"
	}
	return string(s.Kind)
}
