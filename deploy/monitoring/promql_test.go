package monitoring

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`up{job="pigwf-agents"} == 0`, []string{"up"}},
		{`max by (scope) (patroni_primary) < 1 or max by (scope) (patroni_cluster_unlocked) > 0`, []string{"patroni_cluster_unlocked", "patroni_primary"}},
		{`sum(rate(x_total[5m])) by (le, job)`, []string{"x_total"}},
		{`sum without (instance) (a) / ignoring (code) group_left (team) b`, []string{"a", "b"}},
		{`patroni_replica == 1 unless on (scope, name) patroni_postgres_streaming == 1`, []string{"patroni_postgres_streaming", "patroni_replica"}},
		{`label_replace(increase(f_total[10m]), "scope", "$1", "cluster", "(.*)")`, []string{"f_total"}},
		{`histogram_quantile(0.95, sum by (le, activity_type) (rate(h_seconds_bucket{task_queue="$task_queue"}[$__rate_interval])))`, []string{"h_seconds_bucket"}},
		{`time() - max by (cluster) (g) > 8 * 86400`, []string{"g"}},
		{`m offset 5m and bool n @ start()`, []string{"m", "n"}},
		{`topk(1, p{cluster="$cluster"}) and on (cluster, member) q{c="a}b", d='x\'y'}`, []string{"p", "q"}},
		{`x * 1e3 + y * 0x1f - Inf + NaN`, []string{"x", "y"}},
		{`rate(a[${window}:1m]) # a comment naming fake_metric`, []string{"a"}},
		{`ns:recorded:rate5m`, []string{"ns:recorded:rate5m"}},
		{`count_values("version", build_info)`, []string{"build_info"}},
		{`vector(1)`, nil},
	} {
		if got := MetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("MetricNames(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
