package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/deploy/monitoring"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// promLab is a real Prometheus (Debian's package) scraping the lab's agents over HTTPS with the
// deployment CA, the worker and every member's HAProxy, with pigwf's rules loaded.
type promLab struct {
	url string
}

// freeAddr is a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus writes the configuration (marshalled from the shape Prometheus reads, as
// deploy/monitoring/prometheus.yml has it) and runs Prometheus until the test ends.
func startPrometheus(t *testing.T, st *lab.Status, home, workerMetrics string) *promLab {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: run `make deps` (Debian package prometheus)")
	}
	dir := t.TempDir()
	rules, err := monitoring.File("pigwf-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pigwf-rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadInventory(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels,omitempty"`
	}
	var agents, haproxies []target
	for _, h := range inv.Clusters["pg-test"].Hosts {
		agents = append(agents, target{Targets: []string{net.JoinHostPort(h.Addr, strconv.Itoa(starter.AgentAPIPort))}, Labels: map[string]string{"scope": "pg-test", "name": h.Node.Nodename}})
		haproxies = append(haproxies, target{Targets: []string{net.JoinHostPort(h.Addr, strconv.Itoa(inventory.ServiceStatsPort))}, Labels: map[string]string{"scope": "pg-test", "name": h.Node.Nodename}})
	}
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{"pigwf-rules.yml"},
		"scrape_configs": []map[string]any{
			{"job_name": "pigwf-agents", "scheme": "https", "honor_labels": true,
				"tls_config": map[string]string{"ca_file": filepath.Join(home, "ca", "ca.crt")}, "static_configs": agents},
			{"job_name": "pigwf-worker", "static_configs": []target{{Targets: []string{workerMetrics}}}},
			{"job_name": "haproxy", "static_configs": haproxies},
		},
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, text)
	}
	listen := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen)
	logf, err := os.Create(filepath.Join(home, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	return &promLab{url: "http://" + listen}
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	return v
}

// query runs an instant query through Prometheus's HTTP API, as Grafana does.
func (p *promLab) query(q string) ([]promSample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	return r.Data.Result, nil
}

// waitSeries waits until q returns series that ok accepts.
func (p *promLab) waitSeries(t *testing.T, q string, within time.Duration, ok func([]promSample) bool) []promSample {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := p.query(q)
		if err == nil && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus: %s returned %+v (%v) after %s", q, got, err, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkScraped: every metric the dashboard and the alert rules read returns a series from the
// scrape, except those that exist only after an event this test did not cause (said why).
func (p *promLab) checkScraped(t *testing.T, absentOK map[string]string) {
	t.Helper()
	want, err := monitoring.QueriedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		got, err := p.query(m)
		switch {
		case err != nil:
			t.Errorf("Prometheus: %v", err)
		case len(got) == 0 && absentOK[m] == "":
			t.Errorf("the dashboard or the rules read %s, which the scrape does not return", m)
		case len(got) == 0:
			t.Logf("%s: no series (%s)", m, absentOK[m])
		}
	}
}

// checkMonitoring: Prometheus sees the cluster as PostgreSQL has it (one patroni_primary, the
// leader; the replicas' lag), pigwf's runbook metrics from the worker, HAProxy's own metrics.
func checkMonitoring(t *testing.T, p *promLab, leader string) {
	t.Helper()
	primary := p.waitSeries(t, "patroni_primary == 1", 30*time.Second, func(s []promSample) bool { return len(s) == 1 })
	if primary[0].Metric["name"] != leader || primary[0].Metric["scope"] != "pg-test" {
		t.Errorf("patroni_primary == 1 names %v; want the leader %s in scope pg-test", primary[0].Metric, leader)
	}
	p.waitSeries(t, "patroni_replica == 1", 30*time.Second, func(s []promSample) bool { return len(s) == 2 })
	p.waitSeries(t, "patroni_up", 30*time.Second, func(s []promSample) bool { return len(s) == 3 })
	p.waitSeries(t, `pigwf_ha_lag_bytes{cluster="pg-test"}`, 30*time.Second, func(s []promSample) bool { return len(s) == 3 })
	p.waitSeries(t, "patroni_xlog_replayed_location > 0", 30*time.Second, func(s []promSample) bool { return len(s) == 2 })
	runs := p.waitSeries(t, `pigwf_runs_finished_total{cluster="pg-test"}`, 30*time.Second, func(s []promSample) bool { return len(s) > 0 })
	done := map[string]bool{}
	for _, s := range runs {
		if s.value() > 0 {
			done[s.Metric["runbook"]+"/"+s.Metric["result"]] = true
		}
	}
	for _, want := range []string{"pg-cluster-create/completed", "pg-service/completed"} {
		if !done[want] {
			t.Errorf("pigwf_runs_finished_total lacks %s: %+v", want, runs)
		}
	}
	p.waitSeries(t, `haproxy_backend_active_servers{proxy="pg-test-primary"} == 1`, 30*time.Second, func(s []promSample) bool { return len(s) == 3 })
}
