package starter

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// NAME=VALUE arguments and --unset NAMEs: every malformed one is refused at once, naming it and
// the fix; postgresql.parameters.NAME is NAME.
func TestParseConfigArgs(t *testing.T) {
	got, err := ParseConfigArgs([]string{"shared_buffers=1GB", "postgresql.parameters.work_mem=64MB", "log_line_prefix=%m [%p] a=b", "loop_interval_ms=50"}, []string{"synchronous_mode"})
	want := []ConfigChange{
		{Where: "argument 1", Setting: "shared_buffers", Value: "1GB"},
		{Where: "argument 2", Setting: "work_mem", Value: "64MB"},
		{Where: "argument 3", Setting: "log_line_prefix", Value: "%m [%p] a=b"},
		{Where: "argument 4", Setting: "loop_interval_ms", Value: "50"},
		{Where: "--unset synchronous_mode", Setting: "synchronous_mode", Unset: true},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseConfigArgs:\n  got  %+v %v\n  want %+v", got, err, want)
	}

	_, err = ParseConfigArgs([]string{"shared_buffers", "=1GB", "work_mem=1MB", "postgresql=x"}, []string{"work_mem"})
	if !errors.Is(err, ErrConfigInvalid) {
		t.Fatalf("malformed arguments: %v, want ErrConfigInvalid", err)
	}
	for _, want := range []string{
		"argument 1: shared_buffers: is not NAME=VALUE; write shared_buffers=VALUE to set it, or --unset shared_buffers to remove it",
		"argument 2: NAME: is empty",
		"argument 4: postgresql: is the section of PostgreSQL parameters; set a parameter by its name",
		"--unset work_mem: work_mem: is given twice (also argument 3)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := ParseConfigArgs(nil, nil); !errors.Is(err, ErrConfigInvalid) {
		t.Errorf("no change at all: %v, want refused", err)
	}
}

// An HA setting is typed by its field and a bad value names the setting and a good value;
// --unset puts it back to its default and removes a parameter; the config read is not changed.
func TestApplyConfigChanges(t *testing.T) {
	old := haagent.DefaultConfig()
	old.SynchronousMode = true
	old.Postgresql.Parameters = map[string]string{"work_mem": "4MB", "shared_buffers": "128MB"}
	changes, err := ParseConfigArgs([]string{"leader_timeout_ms=1000", "failsafe_mode=true", "maximum_lag_on_failover=0", "shared_buffers=1GB", "max_connections=200"},
		[]string{"synchronous_mode", "work_mem", "not_there"})
	if err != nil {
		t.Fatal(err)
	}
	next, problems := ApplyConfigChanges(old, changes)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := haagent.DefaultConfig()
	want.LeaderTimeoutMs, want.FailsafeMode, want.MaximumLagOnFailover = 1000, true, 0
	want.Postgresql.Parameters = map[string]string{"shared_buffers": "1GB", "max_connections": "200"}
	if !reflect.DeepEqual(next, want) {
		t.Errorf("next:\n  got  %+v\n  want %+v", next, want)
	}
	if !old.SynchronousMode || old.Postgresql.Parameters["work_mem"] != "4MB" || old.Postgresql.Parameters["shared_buffers"] != "128MB" {
		t.Errorf("the config read was changed: %+v", old)
	}

	bad, err := ParseConfigArgs([]string{"loop_interval_ms=99.9", "use_pg_rewind=maybe", "maximum_lag_on_failover=-1", "member_ttl_seconds=99999999999999999999"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, problems = ApplyConfigChanges(old, bad)
	var lines []string
	for _, p := range problems {
		var se *ConfigSettingError
		if !errors.As(p, &se) || !errors.Is(p, ErrConfigInvalid) {
			t.Errorf("%v is not a *ConfigSettingError", p)
		}
		lines = append(lines, p.Error())
	}
	want4 := []string{
		`argument 1: loop_interval_ms = "99.9": is not a whole number; write it like loop_interval_ms=100 (the default)`,
		`argument 2: use_pg_rewind = "maybe": is not true or false; write it like use_pg_rewind=true (the default)`,
		`argument 3: maximum_lag_on_failover = "-1": is not a whole number of 0 or more; write it like maximum_lag_on_failover=1048576 (the default)`,
		`argument 4: member_ttl_seconds = "99999999999999999999": is not a whole number; write it like member_ttl_seconds=10 (the default)`,
	}
	if !reflect.DeepEqual(lines, want4) {
		t.Errorf("problems:\n  got  %q\n  want %q", lines, want4)
	}
}

// Every HA setting of haagent.Config can be set from text (a field of a new type would need a
// case in setHASetting), and the list comes from the type: postgresql is not among them.
func TestEveryHASettingIsSettable(t *testing.T) {
	if len(haSettings()) < 16 {
		t.Fatalf("haSettings: %d, want every field of haagent.Config but postgresql", len(haSettings()))
	}
	for _, s := range haSettings() {
		if s.name == "postgresql" {
			t.Error("postgresql listed as an HA setting")
		}
		cfg := haagent.DefaultConfig()
		if err := setHASetting(&cfg, s, haSettingText(cfg, s)); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		if !reflect.DeepEqual(cfg, haagent.DefaultConfig()) {
			t.Errorf("%s: setting the default changed the config", s.name)
		}
	}
}
