// Package metrics names pigwf's own Prometheus metrics: each family's name, kind, help, labels
// and buckets, and the naming rule that turns a name emitted through a Temporal
// client.MetricsHandler into the name Prometheus shows. Workflow and activity code emit by these
// names (through workflow.GetMetricsHandler and activity.GetMetricsHandler, which are replay-safe);
// metrics/prom exports them; the rules and dashboard in deploy/monitoring read them.
//
// It imports nothing heavy, so the workflows package can use it.
package metrics

import "slices"

// Kind is how a family records values, as a Temporal client.MetricsHandler has them.
type Kind int

const (
	Counter Kind = iota // only goes up; exported as a Prometheus counter named <name>_total
	Gauge               // set to a value; exported as is
	Timer               // durations; exported as a histogram in seconds named <name>_seconds
)

func (k Kind) String() string {
	return [...]string{"counter", "gauge", "timer"}[k]
}

// Exposed is the name Prometheus shows for a metric emitted as name with kind k. It is Temporal's
// own Prometheus naming (the contrib/tally Prometheus scope): Temporal's Grafana dashboards read
// temporal_workflow_completed_total and temporal_activity_execution_latency_seconds_bucket, so
// the SDK's names get the same suffixes here, and so do pigwf's.
func Exposed(k Kind, name string) string {
	switch k {
	case Counter:
		return name + "_total"
	case Timer:
		return name + "_seconds"
	}
	return name
}

// Series are the names a Prometheus scrape shows for a metric emitted as name with kind k: a
// timer's histogram has a series per bucket, a sum and a count.
func Series(k Kind, name string) []string {
	n := Exposed(k, name)
	if k == Timer {
		return []string{n + "_bucket", n + "_sum", n + "_count"}
	}
	return []string{n}
}

// Labels pigwf's families carry. A family emitted from workflow code also carries the SDK's
// namespace, task_queue and workflow_type; one emitted from an activity, activity_type too.
const (
	LabelRunbook  = "runbook"  // the runbook's name, as in its workflow ID: "switchover"
	LabelCluster  = "cluster"  // the PostgreSQL cluster, as in the inventory and the agents' metrics
	LabelStep     = "step"     // a runbook step's name, as `pigwf status` shows it
	LabelState    = "state"    // how a step ended: changed, unchanged, failed
	LabelResult   = "result"   // how a run ended (Result* below)
	LabelDecision = "decision" // how an approval gate ended: approve, reject, timeout
)

// How a run ended, the values of LabelResult. A run the server ends by itself (its execution
// timeout, a terminate) is not seen by any worker and is not counted.
const (
	ResultCompleted   = "completed"
	ResultFailed      = "failed"
	ResultCanceled    = "canceled"
	ResultNotApproved = "not_approved" // refused by its precheck, rejected or its approval timed out: nothing changed
	ResultRolledBack  = "rolled_back"  // failed, and put back as it was (PITRRestore before its promotion)
	ResultContinued   = "continued_as_new"
)

// Family is one of pigwf's metric families.
type Family struct {
	Name    string    // as emitted through a client.MetricsHandler (without the suffix Exposed adds)
	Kind    Kind      //
	Help    string    //
	Labels  []string  // pigwf's labels (the SDK adds its own, see the Label constants)
	Buckets []float64 // a timer's histogram buckets, in seconds
}

// Exposed is the family's name in Prometheus.
func (f Family) Exposed() string { return Exposed(f.Kind, f.Name) }

// The names pigwf's code emits by.
const (
	RunsStarted       = "pigwf_runs_started"
	RunsFinished      = "pigwf_runs_finished"
	StepDuration      = "pigwf_step_duration"
	ApprovalWait      = "pigwf_approval_wait"
	BackupLastSuccess = "pigwf_backup_last_success_timestamp_seconds"
	// Open runs, counted from Temporal's visibility at each scrape (the RunState search attribute
	// each run keeps up to date), not from workflow code: a gauge set by a workflow lives in the
	// memory of the worker that ran its last task, so it would vanish when that worker restarts and
	// stay behind when another worker takes the run over.
	RunsOpen         = "pigwf_runs_open"
	ApprovalsWaiting = "pigwf_approvals_waiting"
	RunsListOK       = "pigwf_runs_list_ok"
)

// SDKTimerBuckets are the buckets of the Temporal SDK's own timers (requests, tasks, activities).
var SDKTimerBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Families are pigwf's own metric families.
func Families() []Family {
	return []Family{
		{Name: RunsStarted, Kind: Counter, Labels: []string{LabelRunbook, LabelCluster},
			Help: "Runbook runs started (counted by the worker that ran the run's first task)."},
		{Name: RunsFinished, Kind: Counter, Labels: []string{LabelRunbook, LabelCluster, LabelResult},
			Help: "Runbook runs ended, by result: completed, failed, canceled, not_approved (refused, rejected or approval timed out: nothing changed), rolled_back."},
		{Name: StepDuration, Kind: Timer, Labels: []string{LabelRunbook, LabelCluster, LabelStep, LabelState},
			Help:    "Runbook steps that ended and how long each took, from start to its final state (changed, unchanged, failed), retries included.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}},
		{Name: ApprovalWait, Kind: Timer, Labels: []string{LabelRunbook, LabelCluster, LabelDecision},
			Help:    "Time runs waited at an approval gate until its decision: approve, reject or timeout.",
			Buckets: []float64{60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}},
		{Name: BackupLastSuccess, Kind: Gauge, Labels: []string{LabelCluster},
			Help: "Unix time a full backup taken by a pigwf runbook on this worker last succeeded (backups taken outside pigwf do not set it)."},
		{Name: RunsOpen, Kind: Gauge, Labels: []string{LabelRunbook, LabelCluster},
			Help: "Open runbook runs, from Temporal's visibility (each worker exports the same count: aggregate with max)."},
		{Name: ApprovalsWaiting, Kind: Gauge, Labels: []string{LabelRunbook, LabelCluster},
			Help: "Runs waiting for an approval now, from Temporal's visibility (each worker exports the same count: aggregate with max)."},
		{Name: RunsListOK, Kind: Gauge,
			Help: "1 if the worker's last listing of open runs in Temporal's visibility succeeded (pigwf_runs_open and pigwf_approvals_waiting are missing otherwise)."},
	}
}

// Lookup is the family emitted as name, if it is one of pigwf's.
func Lookup(name string) (Family, bool) {
	fams := Families()
	i := slices.IndexFunc(fams, func(f Family) bool { return f.Name == name })
	if i < 0 {
		return Family{}, false
	}
	return fams[i], true
}

// Names are every series name pigwf's own families show in a scrape.
func Names() []string {
	var out []string
	for _, f := range Families() {
		out = append(out, Series(f.Kind, f.Name)...)
	}
	return out
}
