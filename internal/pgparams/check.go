package pgparams

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pigwf/pigwf/internal/suggest"
)

// Setting is one row of a server's pg_settings: what a value of the setting may be. The HA
// agent serves its PostgreSQL's rows at GET /settings; the JSON names are pg_settings' columns.
type Setting struct {
	Name     string   `json:"name"`
	Setting  string   `json:"setting"`            // the current value, in Unit
	Unit     string   `json:"unit,omitempty"`     // "8kB", "kB", "MB", "B", "ms", "s", "min", ""
	Context  string   `json:"context"`            // postmaster | sighup | superuser | user | internal | ...
	Vartype  string   `json:"vartype"`            // bool | integer | real | enum | string
	MinVal   string   `json:"min_val,omitempty"`  // integer and real
	MaxVal   string   `json:"max_val,omitempty"`  // integer and real
	EnumVals []string `json:"enumvals,omitempty"` // enum
	// PendingRestart: the configuration files set it to a value that takes effect only at the
	// next restart.
	PendingRestart bool `json:"pending_restart,omitempty"`
}

// Query reads the rows Setting holds, in its field order. It is the one query behind GET
// /settings.
const Query = `SELECT name, setting, coalesce(unit, ''), context, vartype, coalesce(min_val, ''), coalesce(max_val, ''), coalesce(array_to_string(enumvals, ','), ''), pending_restart FROM pg_settings ORDER BY name`

// NeedsRestart: a change of the setting takes effect only when PostgreSQL restarts.
func (s Setting) NeedsRestart() bool { return s.Context == "postmaster" }

// ErrInvalid is what every refusal of Check wraps: errors.Is(err, ErrInvalid).
var ErrInvalid = errors.New("invalid parameter")

// InvalidError is one refused setting: the name, the value, what is wrong and the fix.
type InvalidError struct {
	Name, Value, Problem, Fix string
}

func (e *InvalidError) Error() string {
	s := fmt.Sprintf("%s = %q: %s", e.Name, e.Value, e.Problem)
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Catalog is a server's settings by name.
type Catalog map[string]Setting

// NewCatalog indexes rows by name.
func NewCatalog(rows []Setting) Catalog {
	c := make(Catalog, len(rows))
	for _, r := range rows {
		c[r.Name] = r
	}
	return c
}

// Check refuses a value PostgreSQL would refuse for the setting, as its GUC parser does: an
// unknown setting, a read-only one, a bool or enum value it does not know, a number that does
// not parse, a unit it does not take, a value out of range. It also refuses what Problem
// refuses. The returned Setting says whether the change needs a restart.
func (c Catalog) Check(name, value string) (Setting, error) {
	bad := func(problem, fix string) (Setting, error) {
		return Setting{}, &InvalidError{Name: name, Value: value, Problem: problem, Fix: fix}
	}
	if p := Problem(name, value); p != "" {
		return bad(p, "")
	}
	s, ok := c[name]
	if !ok {
		if strings.Contains(name, ".") {
			// An extension's setting the server does not know yet (the extension is not
			// loaded): PostgreSQL keeps it as a placeholder and checks it when the extension
			// loads. Only the form can be checked here.
			return Setting{Name: name, Context: "user", Vartype: "string"}, nil
		}
		names := make([]string, 0, len(c))
		for n := range c {
			names = append(names, n)
		}
		fix := "see pg_settings for the server's settings"
		if near := suggest.Within(name, names, 3); near != "" {
			fix = "did you mean " + near + "?"
		}
		return bad("is not a setting this PostgreSQL knows", fix)
	}
	if s.Context == "internal" {
		return bad("is read-only: PostgreSQL fixes it when it is built or initialised", "remove it")
	}
	switch s.Vartype {
	case "bool":
		if _, ok := parseBool(value); !ok {
			return bad("is not a boolean", "use on or off")
		}
	case "enum":
		if !slices.ContainsFunc(s.EnumVals, func(e string) bool { return strings.EqualFold(e, value) }) {
			return bad("is not one of its values", "use one of: "+strings.Join(s.EnumVals, ", "))
		}
	case "integer", "real":
		v, err := parseNumber(value, s.Unit, s.Vartype == "integer")
		if err != nil {
			return bad(err.Error(), unitFix(s.Unit))
		}
		lo, errLo := strconv.ParseFloat(s.MinVal, 64)
		hi, errHi := strconv.ParseFloat(s.MaxVal, 64)
		if errLo == nil && errHi == nil && (v < lo || v > hi) {
			return bad(fmt.Sprintf("is %s, outside %s .. %s", showNumber(v, s.Unit), showNumber(lo, s.Unit), showNumber(hi, s.Unit)), "choose a value in range")
		}
	}
	return s, nil
}

// parseBool is PostgreSQL's parse_bool: on, off, true, false, yes, no, 1, 0 and unambiguous
// prefixes, in any case.
func parseBool(v string) (bool, bool) {
	l := strings.ToLower(strings.TrimSpace(v))
	switch {
	case l == "":
		return false, false
	case l == "1", l == "on", strings.HasPrefix("true", l), strings.HasPrefix("yes", l):
		return true, true
	case l == "0", l == "off" || l == "of", strings.HasPrefix("false", l), strings.HasPrefix("no", l):
		return false, true
	}
	return false, false
}

// Units PostgreSQL takes on memory and time settings (case matters, as in guc.c), in each
// family's smallest unit: bytes and microseconds.
var (
	memoryUnits = map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
	timeUnits   = map[string]float64{"us": 1, "ms": 1e3, "s": 1e6, "min": 60e6, "h": 3600e6, "d": 86400e6}
)

// unitSize is the size of a setting's unit in its family's smallest unit ("8kB" is 8192 bytes).
func unitSize(unit string) (size float64, family map[string]float64) {
	num := strings.TrimRightFunc(unit, func(r rune) bool { return r < '0' || r > '9' })
	name := unit[len(num):]
	n := 1.0
	if num != "" {
		n, _ = strconv.ParseFloat(num, 64)
	}
	if f, ok := memoryUnits[name]; ok {
		return n * f, memoryUnits
	}
	if f, ok := timeUnits[name]; ok {
		return n * f, timeUnits
	}
	return 0, nil
}

// numberRE: a number (decimal, exponent, or hex as strtol reads it) and an optional unit.
var numberRE = regexp.MustCompile(`^\s*([-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?))\s*([a-zA-Z]*)\s*$`)

// parseNumber is a value in the setting's unit: a number optionally followed by a unit of the
// setting's family. An integer setting rounds a fractional result, as PostgreSQL does.
func parseNumber(v, unit string, integer bool) (float64, error) {
	m := numberRE.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("is not a number")
	}
	num, suffix := m[1], m[2]
	var n float64
	if iv, err := strconv.ParseInt(num, 0, 64); err == nil {
		n = float64(iv)
	} else if fv, err := strconv.ParseFloat(num, 64); err == nil && !math.IsInf(fv, 0) {
		n = fv
	} else {
		return 0, fmt.Errorf("is not a number")
	}
	if suffix != "" {
		size, family := unitSize(unit)
		if family == nil {
			return 0, fmt.Errorf("takes no unit, and %q is one", suffix)
		}
		f, ok := family[suffix]
		if !ok {
			return 0, fmt.Errorf("%q is not a unit of this setting", suffix)
		}
		n = n * f / size
	}
	if integer {
		n = math.Round(n)
	}
	return n, nil
}

func unitFix(unit string) string {
	_, family := unitSize(unit)
	switch {
	case family == nil:
		return "write a plain number"
	case family["kB"] != 0:
		return "write a number with B, kB, MB, GB or TB (the unit is case-sensitive)"
	default:
		return "write a number with us, ms, s, min, h or d"
	}
}

func showNumber(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if unit == "" {
		return s
	}
	return s + " × " + unit
}

// PendingChange is a setting waiting for a restart: the value in force (pg_settings.setting
// with its unit) and the one the configuration files ask for.
type PendingChange struct {
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
}
