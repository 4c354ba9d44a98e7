package activities

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/metrics"
	"github.com/pigwf/pigwf/metrics/prom"
)

// backupGauge is the last-backup gauge of cluster in reg; ok false when it was never set.
func backupGauge(t *testing.T, reg *prom.Registry, cluster string) (v float64, ok bool) {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != metrics.BackupLastSuccess {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == metrics.LabelCluster && l.GetValue() == cluster {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// A full backup the step took sets the cluster's last-backup time; a repository that already
// held one leaves it unset (that backup's age is not known here).
func TestBackupFullSetsTheLastBackupGauge(t *testing.T) {
	for _, tc := range []struct {
		stdout string
		set    bool
	}{
		{"changed: full backup 20261130-101010F in 42 s\n", true},
		{"note: the repository holds 1 full backup(s)\n", false},
	} {
		reg := prom.NewRegistry()
		s := &testsuite.WorkflowTestSuite{}
		s.SetMetricsHandler(reg.Handler())
		env := s.NewTestActivityEnvironment()
		a := &Activities{Remote: &fakeRemote{reply: func(int, sshrun.Command) sshrun.Result { return sshrun.Result{Stdout: tc.stdout} }}}
		env.RegisterActivity(a)
		before := time.Now().Unix()
		if _, err := env.ExecuteActivity(a.BackupFull, PgNodeInput{Node: goodNode, Spec: PGSpec{Cluster: "pg-test"}}); err != nil {
			t.Fatal(err)
		}
		v, ok := backupGauge(t, reg, "pg-test")
		if ok != tc.set {
			t.Fatalf("%q: gauge set %v, want %v", tc.stdout, ok, tc.set)
		}
		if ok && (int64(v) < before || int64(v) > time.Now().Unix()) {
			t.Errorf("gauge %v is not the time the backup finished (%d..now)", v, before)
		}
	}
}
