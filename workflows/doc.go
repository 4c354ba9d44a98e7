// Package workflows holds pigwf's runbooks as deterministic Temporal workflows.
//
// What lives where:
//   - nodeinit.go, switchover.go: one runbook each, with its input and result types and its
//     phases as methods of one struct (nodeInit, switchover).
//   - pgclustercreate.go: PgClusterCreate's types and its run (the pgClusterCreate struct);
//     pgprecheck.go its prechecks and the forced move-aside; pgplan.go its build as data, stage
//     by stage, from which the progress query, the dry-run plan and the execution all read;
//     pgclusterfollow.go the build run again on a new leader after a failover during it.
//   - pitrrestore.go: PITRRestore, a whole cluster back to a point in time: precheck, approval,
//     the steps until the target is proven (rolled back on any failure, rejection or timeout),
//     an optional inspection gate, then forward from the promotion.
//   - pgservice.go, pgreload.go: one runbook each. pgrestart.go: PgRestart, the replicas one at a
//     time, then the leader through a Switchover child run; pgrestartplan.go its plan and
//     refusals, pure functions of the cluster's state. pgbackup.go: PgBackup, one pgBackRest
//     backup on the leader or a streaming replica and the expiry after it, started by hand or by
//     a Temporal Schedule; its first step checks that no other run holds the cluster.
//     refusals, pure functions of the cluster's state.
//   - pgobjects.go: PgUsers and PgDatabases, the inventory's users and databases on the leader,
//     two runbooks (each its own ID and gate) with one body: the leader, the plan from its
//     catalog, a database drop's approval, one step per object. pghba.go: PgHBA, pg_hba.conf on
//     every member, one at a time.
//   - pgmemberadd.go: PgMemberAdd, hosts of the inventory added to a running cluster: its
//     prechecks (the cluster's state, the new hosts, node-init as a child run where needed);
//     pgmemberaddbuild.go its changes (pg_hba.conf on the members, then PgClusterCreate's own
//     replica steps from pgplan.go, cloned from the leader read just before, and streaming).
//   - pgreinit.go, pgmemberremove.go, pgclusterremove.go: PgReinit (a replica re-created from the
//     leader: its agent stopped, its data moved aside, the agent's own clone, streaming),
//     PgMemberRemove (a replica out for good after an approval: agent stopped, DCS keys and slot
//     gone, data aside) and PgClusterRemove (every agent stopped, the cluster's keys deleted, data
//     aside; a purge only after a second approval); pgmembers.go what the three share: their
//     input, the run's key that names what it moves aside.
//   - clusterlock.go: one runbook at a time per cluster, atomically: every runbook's first step
//     starts the child workflow lock/<cluster> (ClusterLock, ended with its holder), a run that
//     finds it held refuses naming the holder, a holder's child runs get ClusterLocked; behind
//     GetVersion "cluster-lock" (runs from before it: the check through visibility, or none).
//   - runbook.go: Runbook, the interpreter of custom runbooks (dsl/): its input, the check of an
//     input pigwf would not send, the dry run, the scopes of when: and loops; runbookstep.go each
//     step kind on its members (targets read through the agents, retries and timeouts by kind,
//     approvals); runbookloop.go each, in turn or in parallel; runbookchild.go the built-in
//     runbooks it starts as child runs.
//   - step.go: the one step runner every runbook uses. runStep tracks a step in the progress
//     query, runs its activity with options built in one place (step.activityOptions) and
//     reports a failure with the activity's own message; parallel is the one fan-out;
//     sleepUntil the one wait for a runbook's --at.
//   - progress.go: the progress query (Progress, StepState) and the tracker behind it.
//   - approval.go: the approval gate (signal, validated Update, timeout), its types, and the
//     input's allow-list that runs from before verified approvals keep; approvalverified.go:
//     verified approvals (the worker's policy, signed decisions verified by an activity, four
//     eyes, quorum), behind GetVersion "verified-approvals"; a child run's requester proven by
//     the signed request its parent received (ParentRequest), checked against the parent the
//     server names.
//   - notify.go: chat notifications, which never fail a run.
//   - metrics.go: the runs' Prometheus metrics (package metrics names them), emitted through
//     workflow.GetMetricsHandler only (replay-safe, no commands): starts (setSearchAttributes),
//     steps (runStep), approval waits (the gate's decide) and results (RunMetrics, the worker
//     interceptor that sees every runbook's return).
//   - register.go: workflow registration, the task queue, the workflow ID scheme (by hand,
//     scheduled, the schedules' own IDs) and the search attributes every run carries.
//
// Determinism rules: time comes from workflow.Now, concurrency from workflow.Go, iteration over
// maps only through sorted keys. A change to a released workflow that changes its commands
// (another activity ID, type or order, another timer) goes behind workflow.GetVersion; the saved
// histories in replaytests/ replay against this code and fail when it is not. Activity options,
// inputs and results are compared with those histories too.
package workflows
