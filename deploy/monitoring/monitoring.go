// Package monitoring holds pigwf's Prometheus and Grafana files and reads them:
//   - prometheus.yml: an example configuration scraping the HA agents (HTTPS, the deployment CA)
//     and the workers;
//   - pigwf-rules.yml: the recording and alerting rules; pigwf-rules*.test.yml: their
//     `promtool test rules` tests;
//   - pigwf-cluster.json: the Grafana dashboard of a cluster.
//
// Queries and the metric names they read come from the files themselves, so tests can check
// that every name is one something exports: this package's tests against the code of the agents
// and the worker, a lab test against a real Prometheus scraping them (ScrapedMetrics).
package monitoring

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The files, by name in this directory.
const (
	PrometheusFile = "prometheus.yml"
	RulesFile      = "pigwf-rules.yml"
	DashboardFile  = "pigwf-cluster.json"
)

//go:embed prometheus.yml pigwf-rules.yml pigwf-cluster.json
var files embed.FS

// File is the content of one of the files.
func File(name string) ([]byte, error) { return files.ReadFile(name) }

// Rules is a Prometheus rule file.
type Rules struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording rule (Record) or an alert (Alert).
type Rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Name is the alert's name or the recorded metric's.
func (r Rule) Name() string { return r.Alert + r.Record }

// LoadRules reads pigwf-rules.yml.
func LoadRules() (Rules, error) {
	var r Rules
	data, err := File(RulesFile)
	if err == nil {
		err = yaml.Unmarshal(data, &r)
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", RulesFile, err)
	}
	return r, nil
}

// Dashboard is the part of a Grafana dashboard these checks read.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	SchemaVersion int        `json:"schemaVersion"`
	Templating    Templating `json:"templating"`
	Panels        []Panel    `json:"panels"`
}

// Templating is the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable; a query variable's Query is a string or an object holding
// one (newer Grafana).
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryText is the variable's query as text.
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

// Panel is a dashboard panel; a collapsed row holds its panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    *GridPos    `json:"gridPos"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// GridPos is where a panel sits on the dashboard's 24-column grid.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Datasource names a data source.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// LoadDashboard reads pigwf-cluster.json.
func LoadDashboard() (Dashboard, error) {
	var d Dashboard
	data, err := File(DashboardFile)
	if err == nil {
		err = json.Unmarshal(data, &d)
	}
	if err != nil {
		return d, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	return d, nil
}

// AllPanels are the dashboard's panels, those inside collapsed rows included.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Query is one PromQL expression of the files and where it is.
type Query struct {
	Where string // "pigwf-rules.yml: alert PigwfLeaderMissing", "pigwf-cluster.json: panel 3 (Replication lag) A"
	Expr  string
}

// labelValues is Grafana's variable query label_values(selector, label).
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// Queries are every PromQL expression of the rules and the dashboard (panels' targets and the
// variables' label_values selectors).
func Queries() ([]Query, error) {
	rules, err := LoadRules()
	if err != nil {
		return nil, err
	}
	dash, err := LoadDashboard()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			kind := "alert"
			if r.Record != "" {
				kind = "record"
			}
			out = append(out, Query{Where: fmt.Sprintf("%s: %s %s", RulesFile, kind, r.Name()), Expr: r.Expr})
		}
	}
	for _, p := range dash.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{Where: fmt.Sprintf("%s: panel %d (%s) %s", DashboardFile, p.ID, p.Title, t.RefID), Expr: t.Expr})
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := labelValues.FindStringSubmatch(v.QueryText()); m != nil {
			out = append(out, Query{Where: fmt.Sprintf("%s: variable %s", DashboardFile, v.Name), Expr: m[1]})
		}
	}
	return out, nil
}

// QueriedMetrics are the metric names the queries read, sorted.
func QueriedMetrics() ([]string, error) {
	qs, err := Queries()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, q := range qs {
		names = append(names, MetricNames(q.Expr)...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// RecordedMetrics are the names the recording rules make.
func RecordedMetrics() ([]string, error) {
	rules, err := LoadRules()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out = append(out, r.Record)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// PrometheusMetrics are names Prometheus makes itself for every scrape.
var PrometheusMetrics = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// ScrapedMetrics are the queried names a scrape of the agents or the workers must show: the
// queried ones less those the rules record and Prometheus's own.
func ScrapedMetrics() ([]string, error) {
	names, err := QueriedMetrics()
	if err != nil {
		return nil, err
	}
	recorded, err := RecordedMetrics()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool {
		return slices.Contains(recorded, n) || slices.Contains(PrometheusMetrics, n) || strings.HasPrefix(n, "ALERTS")
	}), nil
}
