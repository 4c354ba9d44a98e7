package dsl

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pigwf/pigwf/internal/human"
)

// A runbook in words: what each step does, for the plans a run shows (its details in the Web UI,
// the approval's plan, a dry run), written here once.

// At is where a step is written, for people: "rolling-restart.yml:13".
func (rb *Runbook) At(s Step) string { return fmt.Sprintf("%s:%d", filepath.Base(rb.File), s.Line) }

// Plan is the runbook's steps in words, one line each, a loop's steps under it:
// "2. replicas (rolling-restart.yml:9): for each of the replicas, one at a time". targets, when
// not nil, names the members a step would act on now ("" when it cannot say); they follow the
// step's words.
func (rb *Runbook) Plan(targets func(Step) string) []string {
	var out []string
	// Plan numbers nested steps, so it walks the lists itself rather than through Walk.
	var walk func(steps []Step, prefix, indent string)
	walk = func(steps []Step, prefix, indent string) {
		for i, s := range steps {
			n := fmt.Sprintf("%s%d", prefix, i+1)
			line := fmt.Sprintf("%s%s. %s (%s): %s", indent, n, s.Name, rb.At(s), s.Describe())
			if targets != nil {
				if t := targets(s); t != "" {
					line += " → " + t
				}
			}
			out = append(out, line)
			if s.Kind == KindEach {
				walk(s.Each.Steps, n+".", indent+"   ")
			}
		}
	}
	walk(rb.Steps, "", "")
	return out
}

// Describe is what the step does, with its condition, retries and timeout.
func (s Step) Describe() string {
	out := s.what()
	if c := s.When; c != nil && c.Changed != nil {
		out += fmt.Sprintf("; only if %s %s", c.Step, map[bool]string{true: "changed something", false: "changed nothing"}[*c.Changed])
	}
	if r := s.Retry; r != nil && r.Attempts > 1 {
		out += fmt.Sprintf("; up to %d attempts, %s apart", r.Attempts, human.Duration(r.Wait))
	}
	if s.Timeout > 0 {
		out += "; within " + human.Duration(s.Timeout)
	}
	return out
}

func (s Step) what() string {
	switch s.Kind {
	case KindSQL:
		return fmt.Sprintf("run %q in %s on %s", Headline(s.SQL.Statement), s.SQL.Database, s.SQL.On.words())
	case KindReload:
		return "reload PostgreSQL's configuration on " + s.Reload.On.words()
	case KindRestart:
		out := "restart PostgreSQL on " + s.Restart.On.words() + ", each streaming again before the next"
		if s.Restart.Pending {
			out += " (only where a setting waits for a restart)"
		}
		return out
	case KindSwitchover:
		to := "the best candidate"
		if c := s.Switchover.Candidate; c != "" {
			to = c
		}
		return "switch the primary over to " + to + ": a child switchover run, which asks for its own approval"
	case KindRunbook:
		return "run the built-in runbook " + s.Runbook.Name + " as a child run"
	case KindWait:
		stream := "stream"
		if s.Wait.On == TargetMember || s.Wait.On == TargetLeader {
			stream = "streams"
		}
		switch s.Wait.Until {
		case UntilStreaming:
			return fmt.Sprintf("wait until %s %s from the leader", s.Wait.On.words(), stream)
		case UntilLag:
			return fmt.Sprintf("wait until %s %s at most %s behind the leader", s.Wait.On.words(), stream, bytesWords(s.Wait.Lag))
		}
		return fmt.Sprintf("wait until %q returns true in %s on %s", Headline(s.Wait.Statement), s.Wait.Database, s.Wait.On.words())
	case KindApproval:
		if s.Approval.Reason == "" {
			return "wait for an approval"
		}
		return "wait for an approval: " + s.Approval.Reason
	case KindEach:
		how := "one at a time"
		if s.Each.Parallel {
			how = "all at once"
		}
		return fmt.Sprintf("for each of %s, %s", s.Each.Of.words(), how)
	case KindPassword:
		return fmt.Sprintf("set the password of role %s to the worker's secret %s (as a SCRAM verifier)", s.Password.Role, s.Password.Secret)
	}
	return string(s.Kind)
}

// words names a target in a sentence.
func (t Target) words() string {
	return map[Target]string{TargetLeader: "the leader", TargetReplicas: "the replicas", TargetMembers: "every member", TargetMember: "the loop's member"}[t]
}

// Headline is a statement's first line, shortened: enough to recognise it in a plan.
func Headline(sql string) string {
	line, _, more := strings.Cut(strings.TrimSpace(sql), "\n")
	if r := []rune(line); len(r) > 60 {
		line, more = string(r[:60]), true
	}
	if more {
		line += " ..."
	}
	return line
}

func bytesWords(n uint64) string {
	for _, u := range []struct {
		size uint64
		unit string
	}{{1 << 30, "GB"}, {1 << 20, "MB"}, {1 << 10, "kB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
