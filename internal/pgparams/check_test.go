package pgparams

import (
	"errors"
	"strings"
	"testing"
)

// catalog is a few PostgreSQL 15 pg_settings rows, as the server reports them.
var catalog = NewCatalog([]Setting{
	{Name: "shared_buffers", Setting: "16384", Unit: "8kB", Context: "postmaster", Vartype: "integer", MinVal: "16", MaxVal: "1073741823"},
	{Name: "work_mem", Setting: "4096", Unit: "kB", Context: "user", Vartype: "integer", MinVal: "64", MaxVal: "2147483647"},
	{Name: "max_connections", Setting: "100", Context: "postmaster", Vartype: "integer", MinVal: "1", MaxVal: "262143"},
	{Name: "checkpoint_timeout", Setting: "300", Unit: "s", Context: "sighup", Vartype: "integer", MinVal: "30", MaxVal: "86400"},
	{Name: "random_page_cost", Setting: "4", Context: "user", Vartype: "real", MinVal: "0", MaxVal: "1.79769e+308"},
	{Name: "log_min_duration_statement", Setting: "-1", Unit: "ms", Context: "superuser", Vartype: "integer", MinVal: "-1", MaxVal: "2147483647"},
	{Name: "jit", Setting: "on", Context: "user", Vartype: "bool"},
	{Name: "log_statement", Setting: "none", Context: "superuser", Vartype: "enum", EnumVals: []string{"none", "ddl", "mod", "all"}},
	{Name: "search_path", Setting: `"$user", public`, Context: "user", Vartype: "string"},
	{Name: "block_size", Setting: "8192", Context: "internal", Vartype: "integer", MinVal: "8192", MaxVal: "8192"},
	{Name: "wal_level", Setting: "replica", Context: "postmaster", Vartype: "enum", EnumVals: []string{"minimal", "replica", "logical"}},
})

func TestCheck(t *testing.T) {
	cases := []struct {
		n           int
		name, value string
		restart     bool
		problem     string // "" = accepted; else a part of the refusal
	}{
		{1, "shared_buffers", "256MB", true, ""},
		{2, "shared_buffers", "1GB", true, ""},
		{3, "shared_buffers", "64kB", true, "outside 16 × 8kB .. 1073741823 × 8kB"},
		{4, "shared_buffers", "256mb", false, `"mb" is not a unit of this setting`},
		{5, "shared_buffers", "lots", false, "is not a number"},
		{6, "work_mem", "64MB", false, ""},
		{7, "work_mem", "1.5MB", false, ""},
		{8, "work_mem", "32", false, "outside 64 × kB"},
		{9, "max_connections", "200", true, ""},
		{10, "max_connections", "200MB", false, `takes no unit, and "MB" is one`},
		{11, "max_connections", "0", false, "outside 1 .. 262143"},
		{12, "checkpoint_timeout", "15min", false, ""},
		{13, "checkpoint_timeout", "10s", false, "outside 30 × s"},
		{14, "checkpoint_timeout", "5MB", false, `"MB" is not a unit of this setting`},
		{15, "random_page_cost", "1.1", false, ""},
		{16, "log_min_duration_statement", "-1", false, ""},
		{17, "log_min_duration_statement", "250ms", false, ""},
		{18, "jit", "off", false, ""},
		{19, "jit", "Tru", false, ""},
		{20, "jit", "maybe", false, "is not a boolean"},
		{21, "log_statement", "DDL", false, ""},
		{22, "log_statement", "everything", false, "use one of: none, ddl, mod, all"},
		{23, "search_path", "app, public", false, ""},
		{24, "work_mme", "4MB", false, "did you mean work_mem?"},
		{25, "block_size", "16384", false, "is read-only"},
		{26, "port", "5433", false, "is set by pigwf"},
		{27, "recovery_target_time", "2026-01-01", false, "is set by pigwf"},
		{28, "search_path", "a\nport = 1", false, "control character"},
		{29, "search_path", `a\b`, false, "backslash"},
		{30, "wal_level", "minimal", false, "nothing to replicate"},
		{31, "pg_stat_statements.max", "10000", false, ""},
		{32, "Work_Mem", "4MB", false, "is not a PostgreSQL setting name"},
		{33, "work_mem", "0x100", false, ""},
		{34, "shared_buffers", "", false, "is not a number"},
	}
	for _, c := range cases {
		s, err := catalog.Check(c.name, c.value)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%d. %s = %q refused: %v", c.n, c.name, c.value, err)
		case c.problem != "" && err == nil:
			t.Errorf("%d. %s = %q accepted, want %q", c.n, c.name, c.value, c.problem)
		case c.problem != "" && !strings.Contains(err.Error(), c.problem):
			t.Errorf("%d. %s = %q: %v, want it to say %q", c.n, c.name, c.value, err, c.problem)
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Errorf("%d. %v does not wrap ErrInvalid", c.n, err)
		case err == nil && s.NeedsRestart() != c.restart:
			t.Errorf("%d. %s needs restart %v, want %v", c.n, c.name, s.NeedsRestart(), c.restart)
		}
	}
}

func TestRender(t *testing.T) {
	got := Render([]string{"head"}, map[string]string{"work_mem": "4MB", "search_path": "it's, public"})
	want := "# head\nsearch_path = 'it''s, public'\nwork_mem = '4MB'\n"
	if got != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, want)
	}
	if Render(nil, map[string]string{"b": "1", "a": "2"}) != Render(nil, map[string]string{"a": "2", "b": "1"}) {
		t.Fatal("Render depends on map order")
	}
}
