package workflows

import (
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// TaskQueue is where pigwf workers poll.
const TaskQueue = "pigwf"

// WorkflowID is the ID scheme of every run, "<runbook>/<cluster>": Temporal keeps IDs unique among
// open runs, so a second start of the same runbook on a cluster is refused by the server itself,
// and a child run (pg-restart's switchover) is approved under the ID its runbook always has.
func WorkflowID(runbook, cluster string) string { return runbook + "/" + cluster }

// ScheduleID is the ID of a runbook's Temporal Schedule on a cluster: "<runbook>/<cluster>", like
// its runs by hand (schedules and workflows have IDs of their own kinds, so the two never clash).
func ScheduleID(runbook, cluster string) string { return WorkflowID(runbook, cluster) }

// ScheduledWorkflowID is the workflow ID a schedule gives its runs: "<runbook>/<cluster>/scheduled",
// to which Temporal appends each run's scheduled time ("...-2026-12-01T02:00:00Z"). It is not
// WorkflowID on purpose: a run by hand keeps its ID, so `pigwf start` while a scheduled run is
// open is refused by the CLI's check (by cluster, through visibility), not by an ID the server
// could confuse with the schedule's, and a scheduled run never takes the ID of a run by hand. The
// per-cluster rule for scheduled runs is the run's own first step, the cluster's lock
// (takeCluster; ClusterExclusive through visibility in runs recorded before it).
func ScheduledWorkflowID(runbook, cluster string) string {
	return WorkflowID(runbook, cluster) + "/scheduled"
}

// Search attributes every pigwf run carries, so runs can be found and read in the Web UI's list:
// PgCluster = "pg-test" AND Runbook = "switchover" AND RunState = "waiting for approval".
var (
	SearchAttrCluster = temporal.NewSearchAttributeKeyKeyword("PgCluster")
	SearchAttrRunbook = temporal.NewSearchAttributeKeyKeyword("Runbook")
	// SearchAttrState is the run's phase (PhaseRunning, PhaseWaitingForApproval, PhaseDone,
	// PhaseFailed), kept up to date by the run itself.
	SearchAttrState = temporal.NewSearchAttributeKeyKeyword("RunState")
	// SearchAttrSummary is the run's one-line summary, set by the starter; the Web UI's list shows
	// search attributes as columns, not a run's static summary.
	SearchAttrSummary = temporal.NewSearchAttributeKeyString("RunSummary")
)

// SummaryAttr sets RunSummary to summary as a Text attribute can hold it everywhere. Temporal's
// PostgreSQL visibility casts a Text value straight to tsvector, whose literal syntax gives ':',
// a single quote and a backslash a meaning: a summary with one ("node-init pg-test: 3 nodes")
// fails the run's whole visibility row, and the run is then missing from every list, pending
// approvals included. Those characters are written as look-alikes that mean nothing there.
func SummaryAttr(summary string) temporal.SearchAttributeUpdate {
	return SearchAttrSummary.ValueSet(textAttrReplacer.Replace(summary))
}

var textAttrReplacer = strings.NewReplacer(": ", " \u2014 ", ":", "\u2236", "'", "\u2019", `\`, "\u29f5")

// SearchAttribute is a custom search attribute: its name and its type, both read from the key
// the runs set it with, so the registered type can never differ from the one written.
type SearchAttribute struct {
	Name string
	Type enumspb.IndexedValueType
}

// TypeName is the type as the Temporal server names it when registering one (`temporal operator
// search-attribute create --type`, pigwf-temporal's --search-attribute NAME=TYPE): Keyword, Text,
// KeywordList...: the API enum's own short name.
func (sa SearchAttribute) TypeName() string { return sa.Type.String() }

// Flag is the attribute as pigwf-temporal's --search-attribute value: NAME=TYPE.
func (sa SearchAttribute) Flag() string { return sa.Name + "=" + sa.TypeName() }

// CustomSearchAttributes are the attributes a namespace must have registered before pigwf's runs
// start there: every place that registers them (pigwf dev, `pigwf temporal setup`, the tests'
// servers) reads this list.
func CustomSearchAttributes() []SearchAttribute {
	keys := []temporal.SearchAttributeKey{SearchAttrCluster, SearchAttrRunbook, SearchAttrState, SearchAttrSummary}
	attrs := make([]SearchAttribute, len(keys))
	for i, k := range keys {
		attrs[i] = SearchAttribute{Name: k.GetName(), Type: k.GetValueType()}
	}
	return attrs
}

// setSearchAttributes records cluster and runbook on the run (the starter sets them too; this
// makes runs started any other way, e.g. `temporal workflow start`, findable as well). Every
// runbook calls it first, so it also counts the run's start; the run's metrics read their labels
// from these attributes (metrics.go).
func setSearchAttributes(ctx workflow.Context, runbook, cluster string) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttrCluster.ValueSet(cluster), SearchAttrRunbook.ValueSet(runbook)); err != nil {
		return err
	}
	runStarted(ctx, runbook, cluster)
	return nil
}

// Registry is the part of a worker (or replayer) that workflows are registered on.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every pigwf workflow under its stable name. Workers and the replay tests
// both use it, so a replay always exercises exactly what the worker runs.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(NodeInit, workflowOpts(NodeInitName))
	r.RegisterWorkflowWithOptions(PgClusterCreate, workflowOpts(PgClusterCreateName))
	r.RegisterWorkflowWithOptions(Switchover, workflowOpts(SwitchoverName))
	r.RegisterWorkflowWithOptions(PITRRestore, workflowOpts(PITRRestoreName))
	r.RegisterWorkflowWithOptions(PgService, workflowOpts(PgServiceName))
	r.RegisterWorkflowWithOptions(PgRestart, workflowOpts(PgRestartName))
	r.RegisterWorkflowWithOptions(PgReload, workflowOpts(PgReloadName))
	r.RegisterWorkflowWithOptions(PgBackup, workflowOpts(PgBackupName))
	r.RegisterWorkflowWithOptions(PgUsers, workflowOpts(PgUsersName))
	r.RegisterWorkflowWithOptions(PgDatabases, workflowOpts(PgDatabasesName))
	r.RegisterWorkflowWithOptions(PgHBA, workflowOpts(PgHBAName))
	r.RegisterWorkflowWithOptions(PgMemberAdd, workflowOpts(PgMemberAddName))
	r.RegisterWorkflowWithOptions(PgReinit, workflowOpts(PgReinitName))
	r.RegisterWorkflowWithOptions(PgMemberRemove, workflowOpts(PgMemberRemoveName))
	r.RegisterWorkflowWithOptions(PgClusterRemove, workflowOpts(PgClusterRemoveName))
	r.RegisterWorkflowWithOptions(Runbook, workflowOpts(RunbookName))
	r.RegisterWorkflowWithOptions(ClusterLock, workflowOpts(ClusterLockName))
}

func workflowOpts(name string) workflow.RegisterOptions { return workflow.RegisterOptions{Name: name} }
