package metrics

import (
	"slices"
	"testing"
)

func TestExposedNames(t *testing.T) {
	if got := Exposed(Counter, "temporal_workflow_completed"); got != "temporal_workflow_completed_total" {
		t.Errorf("counter: %s", got)
	}
	if got := Series(Timer, "temporal_activity_execution_latency"); !slices.Equal(got, []string{
		"temporal_activity_execution_latency_seconds_bucket", "temporal_activity_execution_latency_seconds_sum", "temporal_activity_execution_latency_seconds_count"}) {
		t.Errorf("timer: %v", got)
	}
	if got := Exposed(Gauge, BackupLastSuccess); got != BackupLastSuccess {
		t.Errorf("gauge: %s", got)
	}
}

// Every family is complete: a unique name with pigwf's prefix, help, and buckets exactly for
// timers, ascending.
func TestFamilies(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Families() {
		if seen[f.Exposed()] {
			t.Errorf("%s twice", f.Exposed())
		}
		seen[f.Exposed()] = true
		if len(f.Name) < 7 || f.Name[:6] != "pigwf_" || f.Help == "" {
			t.Errorf("%+v: want a pigwf_ name and help", f)
		}
		if (f.Kind == Timer) != (len(f.Buckets) > 0) || !slices.IsSorted(f.Buckets) {
			t.Errorf("%s: buckets %v (timers have ascending buckets, others none)", f.Name, f.Buckets)
		}
		if got, ok := Lookup(f.Name); !ok || got.Name != f.Name {
			t.Errorf("Lookup(%s): %v %v", f.Name, got, ok)
		}
	}
	if _, ok := Lookup("temporal_request"); ok {
		t.Error("Lookup found an SDK name")
	}
	if !slices.IsSorted(SDKTimerBuckets) {
		t.Error("SDKTimerBuckets are not ascending")
	}
}
