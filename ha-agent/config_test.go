package haagent

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// `pigwf config show|edit` reads and writes Config as YAML under the names the DCS holds as JSON:
// every field of Config and PostgresqlConfig has a yaml tag equal to its json name.
func TestConfigYAMLNamesAreTheJSONNames(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[PostgresqlConfig]()} {
		for i := range typ.NumField() {
			f := typ.Field(i)
			jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			yamlName, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if jsonName == "" || yamlName != jsonName {
				t.Errorf("%s.%s: json name %q, yaml name %q: want both, equal", typ.Name(), f.Name, jsonName, yamlName)
			}
		}
	}
}

// DecodeConfig fills defaults and does not validate (pigwf config shows a stored config that
// does not validate, so that it can be fixed); ParseConfig refuses the same bytes.
func TestDecodeConfigDoesNotValidate(t *testing.T) {
	raw := []byte(`{"loop_interval_ms": 400, "postgresql": {"parameters": {"work_mem": "64MB"}}}`)
	cfg, err := DecodeConfig(raw)
	if err != nil || cfg.LoopIntervalMs != 400 || cfg.LeaderTimeoutMs != DefaultConfig().LeaderTimeoutMs || cfg.Postgresql.Parameters["work_mem"] != "64MB" {
		t.Fatalf("DecodeConfig: %+v %v", cfg, err)
	}
	if _, err := ParseConfig(raw); err == nil || !strings.Contains(err.Error(), "loop_interval_ms") {
		t.Errorf("ParseConfig: %v, want loop_interval_ms refused", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	for i, c := range []struct {
		raw  string
		want []string
	}{
		{`{"loop_interval_ms": 100, "postgresql": {"parameters": {"work_mem": "4MB"}}}`, nil},
		{`{"loop_interval_ms": 100, "quorum_commit_mode": true}`, []string{"quorum_commit_mode"}},
		{`{"postgresql": {"parameters": {}, "use_pg_hba": true}, "zz": 1}`, []string{"postgresql.use_pg_hba", "zz"}},
		{`not json`, nil},
	} {
		if got := UnknownKeys([]byte(c.raw)); !slices.Equal(got, c.want) {
			t.Errorf("%d. UnknownKeys(%s) = %v, want %v", i+1, c.raw, got, c.want)
		}
	}
}

// WithLeaderTimeout: at the default lease it is the default config; longer and shorter leases
// keep every timing rule (Validate), and one below the floor is refused by Validate.
func TestWithLeaderTimeout(t *testing.T) {
	def := DefaultConfig()
	if got := def.WithLeaderTimeout(def.LeaderTimeout()); !reflect.DeepEqual(got, def) {
		t.Errorf("at the default lease: %+v, want the default %+v", got, def)
	}
	for i, c := range []struct {
		lease       time.Duration
		loop, stale int
		valid       bool
	}{
		{500 * time.Millisecond, 100, 500, true},
		{3 * time.Second, 600, 3000, true},
		{30 * time.Second, 6000, 30000, true},
		{200 * time.Millisecond, 40, 200, true},
		{100 * time.Millisecond, 20, 100, false}, // below the lease's floor
		{90 * time.Second, 18000, 90000, false},  // above its ceiling
	} {
		got := def.WithLeaderTimeout(c.lease)
		if got.LoopIntervalMs != c.loop || got.MemberReportFreshMs != c.stale || got.LeaderTimeout() != c.lease {
			t.Errorf("%d: lease %v gives loop %d ms, stale after %d ms, lease %v; want %d, %d", i+1, c.lease, got.LoopIntervalMs, got.MemberReportFreshMs, got.LeaderTimeout(), c.loop, c.stale)
		}
		if err := got.Validate(); (err == nil) != c.valid {
			t.Errorf("%d: lease %v: Validate %v, want valid %v", i+1, c.lease, err, c.valid)
		}
		if got.FenceMarginMs != def.FenceMarginMs || got.PromoteMarginMs != def.PromoteMarginMs || got.MaxFenceMs != def.MaxFenceMs {
			t.Errorf("%d: the fence's margins moved: %+v", i+1, got)
		}
	}
}
