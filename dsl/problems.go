package dsl

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong in a runbook file, at a line, with the fix.
type Problem struct {
	File    string
	Line    int
	Field   string // e.g. steps[2].restart.on
	Problem string
	Fix     string
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d: %s %s", p.File, p.Line, p.Field, p.Problem)
	if p.Field == "" {
		s = fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Problem)
	}
	if p.Fix != "" {
		s += "; " + p.Fix
	}
	return s
}

// Problems is every problem of a file, in line order: a file is refused with all of them at
// once, before any run starts.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) add(file string, line int, field, problem, fix string) {
	*ps = append(*ps, Problem{File: file, Line: line, Field: field, Problem: problem, Fix: fix})
}

// err is ps as an error, nil when there is none.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
