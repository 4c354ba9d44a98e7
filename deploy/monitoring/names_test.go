package monitoring

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/metrics"
)

// Every name the rules and the dashboard read is exported by code: the worker's (pigwf's
// families in package metrics, and the Temporal SDK's names as the SDK's own source declares
// them), the HA agent's (the metric names in its source), Prometheus's own, or a recording rule's.
func TestQueriedNamesAreExported(t *testing.T) {
	queried, err := QueriedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := RecordedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	worker := metrics.Names()
	sdk := sdkMetricNames(t)
	agent := agentMetricNames(t)
	for _, n := range queried {
		exported := slices.Contains(worker, n) || slices.Contains(agent, n) || slices.Contains(recorded, n) ||
			slices.Contains(PrometheusMetrics, n) || sdkExports(sdk, n)
		if !exported {
			t.Errorf("%s is read by a query but nothing exports it (a typo, or a metric renamed?)", n)
		}
	}
}

// sdkExports reports whether the SDK emits a metric shown as n: a name of its source with the
// suffixes Temporal's Prometheus naming adds (metrics.Series).
func sdkExports(sdk []string, n string) bool {
	for _, base := range sdk {
		for _, k := range []metrics.Kind{metrics.Counter, metrics.Gauge, metrics.Timer} {
			if slices.Contains(metrics.Series(k, base), n) {
				return true
			}
		}
	}
	return false
}

// sdkMetricNames are the metric names the Temporal SDK of go.mod declares
// (internal/common/metrics/constants.go: TemporalMetricsPrefix + "workflow_completed", ...).
func sdkMetricNames(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk").Output()
	if err != nil {
		t.Fatalf("go list -m go.temporal.io/sdk: %v", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "internal", "common", "metrics", "constants.go")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the SDK's metric names: %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`TemporalMetricsPrefix\s*\+\s*"([a-z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
		names = append(names, "temporal_"+m[1])
	}
	if !slices.Contains(names, "temporal_workflow_completed") {
		t.Fatalf("%s declares no temporal_workflow_completed: the SDK's layout changed (%d names)", file, len(names))
	}
	return names
}

// agentMetricNames are the metric names in the HA agent's source (ha-agent/agent, tests left
// out): every string literal that is a whole pigwf_ha_ or patroni_ name.
func agentMetricNames(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "ha-agent", "agent")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the agent's source in %s: %v", dir, err)
	}
	name := regexp.MustCompile(`^(pigwf_ha|patroni)_[a-z0-9_]+$`)
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
					names = append(names, s)
				}
			}
			return true
		})
	}
	if !slices.Contains(names, "pigwf_ha_is_leader") {
		t.Fatalf("no pigwf_ha_is_leader in %s: the agent's metrics moved (%d names found)", dir, len(names))
	}
	slices.Sort(names)
	return slices.Compact(names)
}
