package pgparams

import (
	"fmt"
	"regexp"
	"unicode"
)

// nameRE: a PostgreSQL setting, possibly an extension's (pg_stat_statements.max).
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_.]{0,127}$`)

// NameProblem says what is wrong with a setting name ("" when nothing is).
func NameProblem(name string) string {
	if !nameRE.MatchString(name) {
		return fmt.Sprintf("%q is not a PostgreSQL setting name (lower-case letters, digits, '_' and '.')", name)
	}
	return ""
}

// ValueProblem says what is wrong with a value before it reaches a configuration file ("" when
// nothing is): a control character would end the line and start another setting, and a
// backslash is an escape inside postgresql.conf's quotes. Quotes are fine: Render doubles them.
func ValueProblem(value string) string {
	for _, r := range value {
		if unicode.IsControl(r) {
			return fmt.Sprintf("holds the control character %U; remove line breaks, tabs and other control characters", r)
		}
		if r == '\\' {
			return "has a backslash, which postgresql.conf reads as an escape; write the value without '\\'"
		}
	}
	if len(value) > 4096 {
		return fmt.Sprintf("is %d bytes long; the longest value pigwf writes is 4096 bytes", len(value))
	}
	return ""
}

// Problem is the first thing wrong with setting a name to a value without a server to check it
// against: a bad name, a setting pigwf owns, a value that cannot be written safely, and
// wal_level minimal (nothing to replicate or archive). "" when nothing is.
func Problem(name, value string) string {
	if p := NameProblem(name); p != "" {
		return p
	}
	if why, ok := Owned(name); ok {
		return "is set by pigwf: " + why
	}
	if p := ValueProblem(value); p != "" {
		return p
	}
	if name == "wal_level" && value == "minimal" {
		return "minimal leaves nothing to replicate or archive; use replica (the default) or logical"
	}
	return ""
}
