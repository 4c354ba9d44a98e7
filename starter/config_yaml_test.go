package starter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// A config with every kind of value: HA settings off their defaults and parameters YAML would
// read as other types unquoted.
func sampleConfig() haagent.Config {
	cfg := haagent.DefaultConfig()
	cfg.LoopIntervalMs, cfg.LeaderTimeoutMs, cfg.SynchronousMode, cfg.MaximumLagOnFailover = 50, 1000, true, 0
	cfg.Postgresql.Parameters = map[string]string{
		"max_connections": "200", "jit": "on", "autovacuum": "true", "checkpoint_completion_target": "0.9",
		"log_line_prefix": "%m [%p] ", "application_name": "it's", "shared_preload_libraries": "",
		"effective_io_concurrency": "1e3", "log_directory": "null", "cron.database_name": "~",
	}
	return cfg
}

// show → edit → JSON: the YAML `config show` prints, read back as `config edit` reads it, is the
// config the DCS held, byte for byte as JSON; the header says the revision.
func TestConfigYAMLRoundTrip(t *testing.T) {
	for _, cfg := range []haagent.Config{haagent.DefaultConfig(), sampleConfig()} {
		read := ConfigRead{Cluster: "pg-test", Revision: 42, Config: cfg}
		text, err := RenderConfigYAML(read)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(text), "# cluster pg-test: the DCS config at etcd revision 42\n") ||
			!strings.Contains(string(text), "\nloop_interval_ms: ") || !strings.Contains(string(text), "\npostgresql:\n  parameters:") {
			t.Errorf("show:\n%s", text)
		}
		got, problems := DecodeConfigYAML("edited.yaml", text)
		if len(problems) > 0 {
			t.Fatalf("read back: %v\n%s", problems, text)
		}
		want, _ := json.Marshal(cfg)
		back, _ := json.Marshal(got)
		if string(back) != string(want) {
			t.Errorf("round trip:\n  got  %s\n  want %s\nYAML:\n%s", back, want, text)
		}
		if len(diffConfig(cfg, got)) != 0 {
			t.Errorf("an unchanged file differs: %+v", diffConfig(cfg, got))
		}
	}
}

// The HA settings come in haagent.Config's order, one per line, as the type declares them.
func TestConfigYAMLInStructOrder(t *testing.T) {
	text, err := RenderConfigYAML(ConfigRead{Cluster: "pg-test", Revision: 1, Config: haagent.DefaultConfig(), Problems: []string{"ha config x: y"}})
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for _, s := range haSettings() {
		at := strings.Index(string(text), "\n"+s.name+": ")
		if at < last {
			t.Errorf("%s is at %d, before the previous setting (%d)", s.name, at, last)
		}
		last = at
	}
	if !strings.Contains(string(text), "# NOT VALID as stored: ha config x: y\n") {
		t.Errorf("a stored config that does not validate is not flagged:\n%s", text)
	}
}

// Typed values for parameters are their text, as postgresql.conf reads them; HA settings are
// read by the rule `config set` uses.
func TestDecodeConfigYAMLTypedValues(t *testing.T) {
	got, problems := DecodeConfigYAML("f.yaml", []byte("synchronous_mode: true\nmember_ttl_seconds: 30\npostgresql:\n  parameters:\n    max_connections: 200\n    jit: off\n    fsync: true\n    random_page_cost: 1.1\n    work_mem: 64MB\n"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := haagent.DefaultConfig()
	want.SynchronousMode, want.MemberTTLSeconds = true, 30
	want.Postgresql.Parameters = map[string]string{"max_connections": "200", "jit": "off", "fsync": "true", "random_page_cost": "1.1", "work_mem": "64MB"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// Every problem of an edited file at once, each with its line, the setting and the fix.
func TestDecodeConfigYAMLRefusals(t *testing.T) {
	text := `loop_intervl_ms: 100
leader_timeout_ms: 99.9
use_pg_rewind: maybe
synchronous_mode: [true]
failsafe_mode:
clock_drift_ppm: 1000
clock_drift_ppm: 2000
shared_buffers: 1GB
postgresql:
  parameter:
    work_mem: 64MB
  parameters:
    work_mem: 64MB
    shared_buffers:
    search_path: [a, b]
`
	_, problems := DecodeConfigYAML("pg-test.yaml", []byte(text))
	var lines []string
	for _, p := range problems {
		if !errors.Is(p, ErrConfigInvalid) {
			t.Errorf("%v does not wrap ErrConfigInvalid", p)
		}
		lines = append(lines, p.Error())
	}
	want := []string{
		"pg-test.yaml line 1: loop_intervl_ms: is not a setting of the cluster's config; did you mean loop_interval_ms?",
		`pg-test.yaml line 2: leader_timeout_ms = "99.9": is not a whole number; write it like leader_timeout_ms=500 (the default)`,
		`pg-test.yaml line 3: use_pg_rewind = "maybe": is not true or false; write it like use_pg_rewind=true (the default)`,
		"pg-test.yaml line 4: synchronous_mode: must be a single value, not a list or mapping; write synchronous_mode: value",
		"pg-test.yaml line 5: failsafe_mode: has no value; write a value (quote an empty string: '') or leave the setting out",
		"pg-test.yaml line 7: clock_drift_ppm: is given twice (also on line 6); keep one",
		"pg-test.yaml line 8: shared_buffers: is not a setting of the cluster's config; PostgreSQL parameters go under postgresql: parameters:; the HA settings are loop_interval_ms, leader_timeout_ms,",
		"pg-test.yaml line 10: postgresql.parameter: is not a part of postgresql:; PostgreSQL settings go under postgresql: parameters:",
		"pg-test.yaml line 14: postgresql.parameters.shared_buffers: has no value",
		"pg-test.yaml line 15: postgresql.parameters.search_path: must be a single value, not a list or mapping",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d:\n  got  %s\n  want %s...", i+1, lines[i], want[i])
		}
	}

	for name, text := range map[string]string{"empty": "# nothing\n", "not YAML": "a: [", "a list": "- a\n"} {
		if _, problems := DecodeConfigYAML("f.yaml", []byte(text)); len(problems) != 1 || !errors.Is(problems[0], ErrConfigInvalid) {
			t.Errorf("%s: %v, want one refusal", name, problems)
		}
	}
}
