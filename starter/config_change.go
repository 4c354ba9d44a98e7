package starter

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/suggest"
)

// `pigwf config set` and `edit` both end in a new haagent.Config: this file turns NAME=VALUE
// arguments into one (ParseConfigArgs, ApplyConfigChanges), and sets an HA setting from text
// (setHASetting) for both, so a value is read the same way from an argument and from a YAML line.

// ErrConfigInvalid is what every refused setting wraps, from an argument, a YAML line or the
// validation against the cluster: errors.Is(err, ErrConfigInvalid).
var ErrConfigInvalid = errors.New("invalid configuration")

// ConfigSettingError is one refused setting: where it was given, what is wrong and the fix.
type ConfigSettingError struct {
	Where   string // "argument 2", "pg-test.yaml line 7"; "" when the input has no place
	Setting string
	Value   string
	Problem string
	Fix     string
}

func (e *ConfigSettingError) Error() string {
	s := e.Setting
	if e.Where != "" {
		s = e.Where + ": " + s
	}
	if e.Value != "" {
		s += fmt.Sprintf(" = %q", e.Value)
	}
	s += ": " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// Unwrap makes errors.Is(err, ErrConfigInvalid) hold.
func (e *ConfigSettingError) Unwrap() error { return ErrConfigInvalid }

// ParametersPrefix names a PostgreSQL parameter in full, as haagent.Config.Validate and the YAML
// do: postgresql.parameters.shared_buffers. `config set` takes the short name too.
const ParametersPrefix = "postgresql.parameters."

// haSetting is one HA setting of haagent.Config: a field by its json name (its yaml tag is the
// same: TestConfigYAMLNamesAreTheJSONNames in ha-agent).
type haSetting struct {
	name  string
	index int
}

// haSettings are haagent.Config's HA settings in struct order, read from the type itself so a
// new field is settable without a list to keep. postgresql (the parameters' section) is not one.
var haSettings = sync.OnceValue(func() []haSetting {
	t := reflect.TypeFor[haagent.Config]()
	var out []haSetting
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || t.Field(i).Type.Kind() == reflect.Struct {
			continue
		}
		out = append(out, haSetting{name: name, index: i})
	}
	return out
})

// lookupHASetting is the HA setting called name.
func lookupHASetting(name string) (haSetting, bool) {
	for _, s := range haSettings() {
		if s.name == name {
			return s, true
		}
	}
	return haSetting{}, false
}

// haSettingNames are the HA settings' names, for did-you-mean.
func haSettingNames() []string {
	names := make([]string, 0, len(haSettings()))
	for _, s := range haSettings() {
		names = append(names, s.name)
	}
	return names
}

// haSettingText is the setting's value in cfg as text, as `config set` takes it and the diff shows it.
func haSettingText(cfg haagent.Config, s haSetting) string {
	return fmt.Sprint(reflect.ValueOf(cfg).Field(s.index).Interface())
}

// setHASetting sets s in cfg from text: a whole number, a whole number of 0 or more, true or
// false, by the field's type. The error names the setting and an example of a good value.
func setHASetting(cfg *haagent.Config, s haSetting, value string) *ConfigSettingError {
	f := reflect.ValueOf(cfg).Elem().Field(s.index)
	bad := func(problem string) *ConfigSettingError {
		return &ConfigSettingError{Setting: s.name, Value: value, Problem: problem,
			Fix: fmt.Sprintf("write it like %s=%s (the default)", s.name, haSettingText(haagent.DefaultConfig(), s))}
	}
	v := strings.TrimSpace(value)
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return bad("is not a whole number")
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || f.OverflowUint(n) {
			return bad("is not a whole number of 0 or more")
		}
		f.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("is not true or false")
		}
		f.SetBool(b)
	case reflect.String:
		f.SetString(value)
	default:
		return &ConfigSettingError{Setting: s.name, Problem: fmt.Sprintf("pigwf cannot set a %s setting", f.Type())}
	}
	return nil
}

// ConfigChange is one change `pigwf config set` asks for: an HA setting (a field of
// haagent.Config by its json name) or, any other name, a PostgreSQL parameter.
type ConfigChange struct {
	Where   string // "argument 2" or "--unset work_mem", for errors
	Setting string // the HA setting's name or the parameter's (without ParametersPrefix)
	Value   string
	Unset   bool // back to the default (an HA setting) or removed (a parameter)
}

// ParseConfigArgs reads `config set`'s NAME=VALUE arguments and --unset NAMEs. Every problem is
// reported at once; the values themselves are judged by ApplyConfigChanges and the validation.
func ParseConfigArgs(assignments, unsets []string) ([]ConfigChange, error) {
	var (
		out  []ConfigChange
		errs []error
		seen = map[string]string{}
	)
	add := func(c ConfigChange) {
		c.Setting = strings.TrimPrefix(c.Setting, ParametersPrefix)
		switch {
		case c.Setting == "":
			errs = append(errs, &ConfigSettingError{Where: c.Where, Setting: "NAME", Problem: "is empty", Fix: "write NAME=VALUE, e.g. shared_buffers=1GB"})
			return
		case c.Setting == "postgresql" || c.Setting+"." == ParametersPrefix:
			errs = append(errs, &ConfigSettingError{Where: c.Where, Setting: c.Setting, Problem: "is the section of PostgreSQL parameters",
				Fix: "set a parameter by its name, e.g. shared_buffers=1GB"})
			return
		}
		if first, dup := seen[c.Setting]; dup {
			errs = append(errs, &ConfigSettingError{Where: c.Where, Setting: c.Setting, Problem: "is given twice (also " + first + ")", Fix: "give each setting once"})
			return
		}
		seen[c.Setting] = c.Where
		out = append(out, c)
	}
	for i, a := range assignments {
		where := fmt.Sprintf("argument %d", i+1)
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			errs = append(errs, &ConfigSettingError{Where: where, Setting: a, Problem: "is not NAME=VALUE",
				Fix: fmt.Sprintf("write %s=VALUE to set it, or --unset %s to remove it", a, a)})
			continue
		}
		add(ConfigChange{Where: where, Setting: strings.TrimSpace(name), Value: value})
	}
	for _, u := range unsets {
		add(ConfigChange{Where: "--unset " + u, Setting: strings.TrimSpace(u), Unset: true})
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: nothing to set: give NAME=VALUE (e.g. shared_buffers=1GB) or --unset NAME", ErrConfigInvalid))
	}
	return out, errors.Join(errs...)
}

// ApplyConfigChanges is cfg with changes made: an HA setting typed by its field (unset: its
// default), any other name a PostgreSQL parameter (unset: removed). cfg is not modified. The
// problems are values that do not parse, each naming its setting; they go on to be reported with
// the validation's, all at once.
func ApplyConfigChanges(cfg haagent.Config, changes []ConfigChange) (haagent.Config, []error) {
	next := cloneConfig(cfg)
	var problems []error
	for _, c := range changes {
		if s, ok := lookupHASetting(c.Setting); ok {
			value := c.Value
			if c.Unset {
				value = haSettingText(haagent.DefaultConfig(), s)
			}
			if err := setHASetting(&next, s, value); err != nil {
				err.Where = c.Where
				problems = append(problems, err)
			}
			continue
		}
		if c.Unset {
			delete(next.Postgresql.Parameters, c.Setting)
			continue
		}
		if next.Postgresql.Parameters == nil {
			next.Postgresql.Parameters = map[string]string{}
		}
		next.Postgresql.Parameters[c.Setting] = c.Value
	}
	if len(next.Postgresql.Parameters) == 0 {
		next.Postgresql.Parameters = nil
	}
	return next, problems
}

// cloneConfig copies cfg so that changing the copy's parameters leaves cfg alone.
func cloneConfig(cfg haagent.Config) haagent.Config {
	next := cfg
	next.Postgresql.Parameters = maps.Clone(cfg.Postgresql.Parameters)
	return next
}

// unknownHASettingFix is the fix for a name that is no HA setting where only HA settings go (a
// YAML key at the top): the setting it was likely meant to be, or where parameters go.
func unknownHASettingFix(name string) string {
	if near := suggest.Within(name, append(haSettingNames(), "postgresql"), 3); near != "" {
		return "did you mean " + near + "?"
	}
	return "PostgreSQL parameters go under postgresql: parameters:; the HA settings are " + strings.Join(haSettingNames(), ", ")
}
