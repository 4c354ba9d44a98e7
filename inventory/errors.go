package inventory

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem found in an inventory, located by file and line.
type FieldError struct {
	File, Where, Field, Problem, Fix string
	Line                             int
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" { // a value checked outside a file (CheckDecoded) has no place in one
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; " + e.Fix)
	}
	return b.String()
}

// ValidationError collects every problem of one inventory, so a user fixes them in one pass.
type ValidationError struct {
	Problems []FieldError
	seen     map[FieldError]bool // a problem found twice (one value read by several hosts) is reported once
}

func (v *ValidationError) Error() string {
	lines := make([]string, len(v.Problems))
	for i, p := range v.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

func (v *ValidationError) add(p FieldError) {
	k := p
	k.Fix = ""
	if v.seen == nil {
		v.seen = map[FieldError]bool{}
	}
	if v.seen[k] {
		return
	}
	v.seen[k] = true
	v.Problems = append(v.Problems, p)
}

// sortByLine orders the problems as they appear in the file (problems without a line first).
func (v *ValidationError) sortByLine() {
	sort.SliceStable(v.Problems, func(i, j int) bool { return v.Problems[i].Line < v.Problems[j].Line })
}

// IsValidation reports whether err is an inventory problem (the user must fix the file).
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
