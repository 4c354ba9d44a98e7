package inventory

import (
	"fmt"

	"github.com/pigwf/pigwf/internal/pgparams"
	"gopkg.in/yaml.v3"
)

func parametersRule(v *yaml.Node) []FieldError {
	if v.Kind != yaml.MappingNode {
		return []FieldError{{Line: v.Line, Problem: "must be a mapping of parameter: value", Fix: "write {shared_buffers: 1GB, ...}"}}
	}
	var out []FieldError
	for _, p := range pairs(v, collect(&out, "pg_parameters")) {
		k := p.key.Value
		f := "pg_parameters." + show(k)
		switch {
		case pgparams.NameProblem(k) != "":
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: fmt.Sprintf("%s is not a PostgreSQL setting name", show(k)), Fix: "use the setting's lower-case name (letters, digits, '_', '.')"})
		case owned(k) != "":
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "is set by pigwf: " + owned(k), Fix: "remove it from pg_parameters"})
		case p.val == nil || p.val.Kind != yaml.ScalarNode:
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "must be a single value"})
		default:
			if prob := pgparams.Problem(k, p.val.Value); prob != "" {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: prob})
			}
		}
	}
	return out
}

func owned(name string) string {
	why, _ := pgparams.Owned(name)
	return why
}
