package starter

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// pgSettings are rows of a PostgreSQL 15's pg_settings, as an agent's GET /settings answers them.
var pgSettings = []pgparams.Setting{
	{Name: "shared_buffers", Setting: "16384", Unit: "8kB", Context: "postmaster", Vartype: "integer", MinVal: "16", MaxVal: "1073741823"},
	{Name: "work_mem", Setting: "4096", Unit: "kB", Context: "user", Vartype: "integer", MinVal: "64", MaxVal: "2147483647"},
	{Name: "max_connections", Setting: "100", Context: "postmaster", Vartype: "integer", MinVal: "1", MaxVal: "262143"},
	{Name: "log_min_duration_statement", Setting: "-1", Unit: "ms", Context: "superuser", Vartype: "integer", MinVal: "-1", MaxVal: "2147483647"},
	{Name: "wal_level", Setting: "replica", Context: "postmaster", Vartype: "enum", EnumVals: []string{"minimal", "replica", "logical"}},
	{Name: "synchronous_commit", Setting: "on", Context: "user", Vartype: "enum", EnumVals: []string{"local", "remote_write", "remote_apply", "on", "off"}},
	{Name: "jit", Setting: "on", Context: "user", Vartype: "bool"},
	{Name: "server_version_num", Setting: "150004", Context: "internal", Vartype: "integer", MinVal: "150004", MaxVal: "150004"},
	{Name: "port", Setting: "5432", Context: "postmaster", Vartype: "integer", MinVal: "1", MaxVal: "65535"},
}

// settingsAgent is an HA agent's API answering GET /settings with rows (status 503 when down),
// as the leader's agent; it counts the requests.
type settingsAgent struct {
	srv   *httptest.Server
	down  bool
	calls int
}

func newSettingsAgent(t *testing.T) *settingsAgent {
	a := &settingsAgent{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/settings" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		a.calls++
		if a.down {
			http.Error(w, "postgresql is not running", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(pgSettings)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// configRead is a read of the config whose leader is the agent.
func (a *settingsAgent) configRead(cfg haagent.Config) ConfigRead {
	return ConfigRead{Cluster: "pg-test", Revision: 7, Config: cfg, Leader: "pg-test-1", LeaderAPI: a.srv.URL}
}

// check runs set's path up to the write: the arguments, the changes, checkConfig.
func (a *settingsAgent) check(t *testing.T, old haagent.Config, args, unsets []string) ([]ConfigDiffEntry, error) {
	t.Helper()
	changes, err := ParseConfigArgs(args, unsets)
	if err != nil {
		t.Fatal(err)
	}
	next, problems := ApplyConfigChanges(old, changes)
	h := &HAClient{cluster: "pg-test", http: a.srv.Client()}
	diff := diffConfig(old, next)
	more, unavailable := h.checkConfig(context.Background(), a.configRead(old), next, diff)
	if problems = append(problems, more...); len(problems) > 0 || unavailable != nil {
		return diff, &ConfigRefusedError{Cluster: "pg-test", Problems: problems, Unavailable: unavailable}
	}
	return diff, nil
}

// Every problem of a change is reported at once, each naming the setting and the fix: a
// parameter its leader's PostgreSQL does not know (with the one it likely meant), out of range,
// not one of an enum's values, a setting pigwf owns, a unit the setting does not take, a
// read-only setting, a bad boolean, an HA setting that does not parse, and HA timings that
// cannot hold (which, and why), and a parameter that is no setting but an HA setting mistyped.
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	a := newSettingsAgent(t)
	_, err := a.check(t, haagent.DefaultConfig(), []string{
		"shared_bufers=1GB", "max_connections=300000", "wal_level=archive", "port=5433", "work_mem=64Mb",
		"server_version_num=160000", "jit=maybe", "failsafe_mode=perhaps", "loop_interval_ms=200", "fence_margin_ms=-1",
		"leader_timeout=1000",
	}, nil)
	if !errors.Is(err, ErrConfigInvalid) || !errors.Is(err, pgparams.ErrInvalid) || errors.Is(err, ErrSettingsUnavailable) {
		t.Fatalf("err = %v; want ErrConfigInvalid and pgparams.ErrInvalid", err)
	}
	for _, want := range []string{
		"nothing written to pg-test's config:",
		`shared_bufers = "1GB": is not a setting this PostgreSQL knows; did you mean shared_buffers?`,
		`max_connections = "300000": is 300000, outside 1 .. 262143; choose a value in range`,
		`wal_level = "archive": is not one of its values; use one of: minimal, replica, logical`,
		`ha config postgresql.parameters.port: is set by pigwf: pigwf sets it from pg_port`,
		`work_mem = "64Mb": "Mb" is not a unit of this setting; write a number with B, kB, MB, GB or TB (the unit is case-sensitive)`,
		`server_version_num = "160000": is read-only`,
		`jit = "maybe": is not a boolean; use on or off`,
		`argument 8: failsafe_mode = "perhaps": is not true or false; write it like failsafe_mode=false (the default)`,
		"ha config loop_interval_ms: 200 must be below leader_timeout_ms/3 (500/3)",
		"ha config fence_margin_ms: -1 must not be negative",
		`leader_timeout = "1000": is neither an HA setting nor a setting this PostgreSQL knows; did you mean the HA setting leader_timeout_ms?`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if strings.Count(err.Error(), "parameters.port") != 1 || strings.Contains(err.Error(), `port = "5433"`) {
		t.Errorf("the owned setting is not reported exactly once:\n%v", err)
	}
}

// A good change passes, and the diff says which parameters only a restart applies (the leader's
// pg_settings context): a new one, a changed one and a removed one.
func TestConfigCheckMarksRestarts(t *testing.T) {
	a := newSettingsAgent(t)
	old := haagent.DefaultConfig()
	old.Postgresql.Parameters = map[string]string{"max_connections": "100", "work_mem": "4MB", "shared_buffers": "128MB"}
	diff, err := a.check(t, old, []string{"shared_buffers=1GB", "work_mem=64MB", "wal_level=logical", "leader_timeout_ms=1000", "log_min_duration_statement=250ms"}, []string{"max_connections"})
	if err != nil {
		t.Fatal(err)
	}
	restart := map[string]bool{}
	for _, e := range diff {
		restart[e.Setting] = e.Restart
	}
	want := map[string]bool{"leader_timeout_ms": false, "log_min_duration_statement": false, "max_connections": true, "shared_buffers": true, "wal_level": true, "work_mem": false}
	if len(restart) != len(want) {
		t.Fatalf("diff %+v, want %v", diff, want)
	}
	for k, v := range want {
		if restart[k] != v {
			t.Errorf("%s: restart %v, want %v", k, restart[k], v)
		}
	}
}

// Without the leader's settings a new parameter is not written unchecked; a removal, or an HA
// setting, needs none and goes on (a parameter that keeps PostgreSQL from starting can be taken
// out); nothing at all asks the agent when no parameter changes.
func TestConfigCheckWithoutTheLeader(t *testing.T) {
	a := newSettingsAgent(t)
	a.down = true
	old := haagent.DefaultConfig()
	old.Postgresql.Parameters = map[string]string{"shared_buffers": "64GB"}
	_, err := a.check(t, old, []string{"work_mem=64MB"}, nil)
	if !errors.Is(err, ErrSettingsUnavailable) || errors.Is(err, ErrConfigInvalid) {
		t.Fatalf("err = %v, want ErrSettingsUnavailable only", err)
	}
	for _, want := range []string{"503", "run again when `pigwf ha list --cluster pg-test` shows a running leader"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	diff, err := a.check(t, old, nil, []string{"shared_buffers"})
	if err != nil || len(diff) != 1 || !diff[0].RestartUnknown {
		t.Errorf("removal while PostgreSQL is down: %+v %v, want allowed with restart unknown", diff, err)
	}
	calls := a.calls
	if _, err := a.check(t, old, []string{"leader_timeout_ms=1000"}, nil); err != nil || a.calls != calls {
		t.Errorf("HA setting only: %v, agent asked %d times; want allowed without asking", err, a.calls-calls)
	}
	h := &HAClient{cluster: "pg-test", http: a.srv.Client()}
	if _, err := h.leaderCatalog(context.Background(), ConfigRead{Cluster: "pg-test"}); !errors.Is(err, ErrSettingsUnavailable) || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("no leader: %v", err)
	}
}

// The diff shows old → new per setting, not set for an absent parameter, and which need a restart.
func TestPrintConfigDiff(t *testing.T) {
	var b strings.Builder
	PrintConfigDiff(&b, ConfigRead{Cluster: "pg-test", Revision: 7}, []ConfigDiffEntry{
		{Setting: "leader_timeout_ms", Old: "500", New: "1000", OldSet: true, NewSet: true},
		{Setting: "shared_buffers", Parameter: true, Old: "128MB", New: "1GB", OldSet: true, NewSet: true, Restart: true},
		{Setting: "work_mem", Parameter: true, New: "64MB", NewSet: true},
		{Setting: "max_connections", Parameter: true, Old: "100", OldSet: true, Restart: true},
		{Setting: "search_path", Parameter: true, Old: "", OldSet: true, RestartUnknown: true},
	})
	want := "Changes to pg-test's config (read at etcd revision 7):\n" +
		"  leader_timeout_ms  500 → 1000\n" +
		"  shared_buffers     128MB → 1GB   (takes effect at a restart)\n" +
		"  work_mem           (not set) → 64MB\n" +
		"  max_connections    100 → (not set)   (takes effect at a restart)   (postgresql.conf's value applies)\n" +
		"  search_path        '' → (not set)   (whether it needs a restart is unknown: the leader's settings could not be read)   (postgresql.conf's value applies)\n" +
		"Only a restart applies shared_buffers, max_connections: after the write, `pigwf start pg-restart --cluster pg-test --pending` restarts the members that wait for it.\n"
	if b.String() != want {
		t.Errorf("diff:\n%s\nwant:\n%s", b.String(), want)
	}
}
