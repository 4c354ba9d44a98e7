package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// promtool is the path of promtool; without it the test skips, unless PIGWF_REQUIRE_INTEGRATION=1
// (make test) demands it (Debian's prometheus package has it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PIGWF_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("PIGWF_REQUIRE_INTEGRATION=1 but promtool is not on PATH (apt-get install prometheus)")
		}
		t.Skip("promtool is not on PATH (apt-get install prometheus)")
	}
	return p
}

// testFiles are the promtool rule test files beside the rules.
func testFiles(t *testing.T) []string {
	t.Helper()
	fs, err := filepath.Glob("*.test.yml")
	if err != nil || len(fs) == 0 {
		t.Fatalf("no *.test.yml: %v", err)
	}
	return fs
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) { runPromtool(t, "check", "rules", RulesFile) }

func TestPromtoolCheckConfig(t *testing.T) { runPromtool(t, "check", "config", PrometheusFile) }

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, append([]string{"test", "rules"}, testFiles(t)...)...)
}

// Every alert has a severity and says what and where (summary, description naming the cluster);
// every alert is tested by promtool both firing and not firing.
func TestAlertsAreCompleteAndTested(t *testing.T) {
	rules, err := LoadRules()
	if err != nil {
		t.Fatal(err)
	}
	firing, quiet := alertTests(t)
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if v := r.Annotations[a]; !strings.Contains(v, "{{ $labels.scope }}") && !strings.Contains(v, "{{ $labels.cluster }}") {
					t.Errorf("%s: the %s does not name the cluster: %q", r.Alert, a, v)
				}
			}
			if !firing[r.Alert] {
				t.Errorf("%s: no promtool test sees it fire", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s: no promtool test checks that it does not fire", r.Alert)
			}
		}
	}
	if alerts < 7 {
		t.Errorf("%d alerts: leader missing, member down, lag, replication broken, failover, approval waiting, backup too old", alerts)
	}
}

// alertTests are the alerts the promtool tests expect firing, and those they expect silent.
func alertTests(t *testing.T) (firing, quiet map[string]bool) {
	firing, quiet = map[string]bool{}, map[string]bool{}
	for _, f := range testFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(data, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(tf.RuleFiles, []string{RulesFile}) {
			t.Errorf("%s tests %v, want %s", f, tf.RuleFiles, RulesFile)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	return firing, quiet
}

// The dashboard has what Grafana needs to import it and what the brief of each panel says: a
// schema version, uid and title, the datasource and cluster variables; every panel an id, a type,
// a place on the grid (not overlapping another), the datasource variable and at least one query.
func TestDashboard(t *testing.T) {
	d, err := LoadDashboard()
	if err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("datasource variable: %+v", v)
	}
	if v := vars["cluster"]; v.Type != "query" || !labelValues.MatchString(v.QueryText()) || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
		t.Errorf("cluster variable: %+v (want label_values over the datasource variable)", v)
	}
	ids := map[int]bool{}
	var placed []Panel
	queries := 0
	for _, p := range d.AllPanels() {
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "" || p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: type %q, gridPos %+v", p.ID, p.Title, p.Type, p.GridPos)
			continue
		}
		for _, o := range placed {
			if overlap(*o.GridPos, *p.GridPos) {
				t.Errorf("panel %d %q overlaps panel %d %q", p.ID, p.Title, o.ID, o.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %d %q: datasource %+v, want the datasource variable", p.ID, p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %d %q: target %+v (want an expr and a unique refId)", p.ID, p.Title, tg)
			}
			refs[tg.RefID] = true
			if len(MetricNames(tg.Expr)) == 0 {
				t.Errorf("panel %d %q: %s reads no metric", p.ID, p.Title, tg.Expr)
			}
			queries++
		}
	}
	if queries < 10 {
		t.Errorf("%d queries", queries)
	}
	// The panels the dashboard is for, by what they read.
	read := map[string]bool{}
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			for _, n := range MetricNames(tg.Expr) {
				read[n] = true
			}
		}
	}
	for what, name := range map[string]string{
		"roles per member": "patroni_primary", "lag": "pigwf_ha_lag_bytes", "timeline": "patroni_postgres_timeline",
		"last failover": "pigwf_ha_last_promotion_timestamp_seconds", "its RTO": "pigwf_ha_last_failover_seconds",
		"runbooks running": "pigwf_runs_open", "waiting approvals": "pigwf_approvals_waiting", "run results": "pigwf_runs_finished_total",
	} {
		if !read[name] {
			t.Errorf("no panel shows %s (%s)", what, name)
		}
	}
}

func overlap(a, b GridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// Every query reads at least one metric, and the variable's selector is among the queries.
func TestQueries(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	variable := false
	for _, q := range qs {
		if len(MetricNames(q.Expr)) == 0 {
			t.Errorf("%s: %q reads no metric", q.Where, q.Expr)
		}
		variable = variable || strings.Contains(q.Where, "variable cluster")
	}
	if !variable {
		t.Error("the cluster variable's query is not among the queries")
	}
	scraped, err := ScrapedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(scraped, "patroni_up") || slices.Contains(scraped, "up") {
		t.Errorf("ScrapedMetrics holds recorded or Prometheus's own names: %v", scraped)
	}
}
