// Package workflows holds pigwf's runbooks as deterministic Temporal workflows.
//
// What lives where:
//   - nodeinit.go, pgclustercreate.go, switchover.go: one runbook each, with its input and result
//     types.
//   - step.go: the one step runner every runbook uses. A step is tracked in the progress query,
//     runs one activity with options built in one place, and reports a failure with the
//     activity's own message.
//   - progress.go: the progress query (Progress, StepState) and the tracker behind it.
//   - approval.go: the approval gate (signal, validated Update, allow-list, timeout).
//   - register.go: workflow names, the task queue and the search attributes every run carries.
//
// Determinism rules: time comes from workflow.Now, concurrency from workflow.Go, iteration over
// maps only through sorted keys. A logic change to a released workflow, including another
// activity ID, type, order or option, goes behind workflow.GetVersion; the saved histories in
// replaytests/ replay against this code and fail when it is not.
package workflows
