package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
)

// PgBackup takes one pgBackRest backup of a cluster (full, diff or incr) on the member the
// inventory says (pg_backup_source: the leader, or a streaming replica with pgBackRest's
// backup-standby), then expires backups past the inventory's retention. Started by `pigwf start
// pg-backup` or by a Temporal Schedule (`pigwf schedule create`), whose runs the CLI's per-cluster
// check never sees: the run takes the cluster's lock first, like every runbook (clusterlock.go).
const (
	PgBackupName    = "PgBackup"
	PgBackupRunbook = "pg-backup"
)

// PgBackupInput is resolved from the inventory (starter.PgBackupInput, for the CLI and for
// schedules alike).
type PgBackupInput struct {
	Cluster string                 `json:"cluster"`
	Type    string                 `json:"type"`   // full, diff or incr
	Source  string                 `json:"source"` // pg_backup_source: inventory.BackupSourceLeader or BackupSourceReplica
	DCS     activities.DCSInput    `json:"dcs"`
	Members []activities.MemberAPI `json:"members"`
	// Nodes are the members' SSH settings (Node.Name is the member's nodename).
	Nodes       []activities.Node `json:"nodes"`
	Spec        activities.PGSpec `json:"spec"`
	RequestedBy string            `json:"requested_by"`
}

// PgBackupResult is the run's record.
type PgBackupResult struct {
	Cluster   string `json:"cluster"`
	Leader    string `json:"leader,omitempty"`
	Source    string `json:"source,omitempty"` // the member the backup was taken on
	Backup    string `json:"backup,omitempty"` // its label
	Type      string `json:"type,omitempty"`   // the type taken
	Requested string `json:"requested"`        // the type asked for
	// Notes: the type pgBackRest took instead, a replica asked for and the leader used.
	Notes   []string `json:"notes,omitempty"`
	Expired []string `json:"expired,omitempty"`
	Outcome string   `json:"outcome"` // backed up | refused | failed
}

// Error types of a PgBackup that did not finish.
const (
	PgBackupRefusedType = "PgBackupRefused" // another run holds the cluster, or it has no leader: nothing changed
	PgBackupFailedType  = "PgBackupFailed"  // the backup (or the expiry after it) failed; the message says what was recorded
)

var (
	pgBackupPlanStep = controlStep("plan", within(time.Minute, 3))
	// pgBackupRecheckStep reads the cluster again after a failed backup, to say whether the
	// leader moved meanwhile.
	pgBackupRecheckStep = controlStep("after-failure", within(time.Minute, 2))
)

func pgBackupServerStep(leader string) step {
	s := memberStep(leader, activities.StepBackupServer, within(2*time.Minute, 3))
	s.what = "pgBackRest's TLS server, for a backup from a standby"
	return s
}

// pgBackupStepTimeout bounds one attempt of a backup: a large database's full backup takes hours.
const pgBackupStepTimeout = 12 * time.Hour

func pgBackupStep(member, typ string) step {
	// A retried attempt waits for the earlier attempt's pgbackrest, then finds its backup by the
	// run's annotation: retries are safe. pgBackRest's own failure is final (not retried).
	s := memberStep(member, activities.StepBackup, retry{timeout: pgBackupStepTimeout, attempts: 3, maxWait: time.Minute})
	s.what = "pgBackRest " + typ + " backup"
	return s
}

func pgBackupExpireStep(member string) step {
	s := memberStep(member, activities.StepBackupExpire, within(10*time.Minute, 3))
	s.what = "expire backups past retention"
	return s
}

// PgBackupCommand is the command that starts a backup of cluster by hand.
func PgBackupCommand(cluster, typ string) string {
	return "pigwf start " + PgBackupRunbook + " --cluster " + cluster + " --type " + typ
}

// pgBackup is one PgBackup run.
type pgBackup struct {
	ctx   workflow.Context
	in    PgBackupInput
	track *tracker
	res   PgBackupResult
}

// PgBackup: the cluster to itself, its leader, the backup, the expiry.
func PgBackup(ctx workflow.Context, in PgBackupInput) (PgBackupResult, error) {
	w := &pgBackup{ctx: ctx, in: in, res: PgBackupResult{Cluster: in.Cluster, Requested: in.Type}}
	if err := setSearchAttributes(ctx, PgBackupRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PgBackupRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	w.track.plan(exclusiveStep, pgBackupPlanStep)
	if _, err := claimCluster(ctx, w.track, in.Cluster); err != nil {
		return w.res, w.refuse(err.Error())
	}
	var a *activities.Activities
	run := workflow.GetInfo(ctx).WorkflowExecution
	st, err := runStep(ctx, w.track, pgBackupPlanStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: in.DCS, Members: in.Members})
	if err != nil {
		return w.res, w.refuse("the cluster's state: " + err.Error())
	}
	if why := st.Unhealthy(); why != "" {
		msg := fmt.Sprintf("%s (%s): a backup needs the leader to start and stop it", why, st.View)
		w.track.set(pgBackupPlanStep, StateFailed, msg)
		return w.res, w.refuse(msg)
	}
	w.res.Leader = st.Leader
	source, note := backupSource(in, st)
	w.res.Source = source
	if note != "" {
		w.res.Notes = append(w.res.Notes, note)
	}
	fromStandby := source != st.Leader
	var steps []step
	if fromStandby {
		steps = append(steps, pgBackupServerStep(st.Leader))
	}
	w.track.plan(append(steps, pgBackupStep(source, in.Type), pgBackupExpireStep(source))...)
	w.track.set(pgBackupPlanStep, StateUnchanged, fmt.Sprintf("%s backup on %s; %s", in.Type, source, orDefault(note, st.View)))

	if fromStandby {
		if _, err := runStep(ctx, w.track, pgBackupServerStep(st.Leader), stepOutcome, a.BackupServer,
			activities.PgNodeInput{Node: w.node(st.Leader), Spec: in.Spec}); err != nil {
			return w.res, w.fail(fmt.Sprintf("pgBackRest's TLS server on the leader %s, which a backup from %s needs: %v; no backup was taken", st.Leader, source, err))
		}
	}
	leader := ""
	if fromStandby {
		leader = st.Leader
	}
	br, err := runStep(ctx, w.track, pgBackupStep(source, in.Type), stepOutcome, a.Backup,
		activities.BackupInput{Node: w.node(source), Spec: in.Spec, Type: in.Type, Key: run.RunID, Leader: leader})
	if err != nil {
		return w.res, w.backupFailed(source, st.Leader, err)
	}
	w.res.Backup, w.res.Type = br.Facts["label"], br.Facts["type"]
	w.res.Notes = append(w.res.Notes, br.Notes...)
	er, err := runStep(ctx, w.track, pgBackupExpireStep(source), stepOutcome, a.BackupExpire, activities.PgNodeInput{Node: w.node(source), Spec: in.Spec})
	if err != nil {
		return w.res, w.fail(fmt.Sprintf("backup %s was taken, but expiring backups past retention failed: %v; the next backup expires them", w.res.Backup, err))
	}
	if e := er.Facts["expired"]; e != "" {
		w.res.Expired = strings.Split(e, ",")
	}
	w.res.Outcome = "backed up"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// backupSource is the member to back up on: the leader, or with pg_backup_source: replica a
// replica that streams from it, an asynchronous one first (a synchronous standby slowed by the
// backup's reads would slow every commit); the leader when none streams, with a note saying so.
func backupSource(in PgBackupInput, st activities.ClusterState) (member, note string) {
	if in.Source != inventory.BackupSourceReplica {
		return st.Leader, ""
	}
	known := func(m string) bool {
		return slices.ContainsFunc(in.Nodes, func(n activities.Node) bool { return n.Name == m })
	}
	var async, sync []string
	for _, r := range st.Streaming {
		switch {
		case !known(r):
		case slices.Contains(st.SyncStandbys, r):
			sync = append(sync, r)
		default:
			async = append(async, r)
		}
	}
	if c := append(async, sync...); len(c) > 0 {
		return c[0], ""
	}
	return st.Leader, "pg_backup_source is replica, but no replica streams from the leader: the backup was taken on the leader " + st.Leader
}

// node is the member's SSH settings (the input names every member the agents can report).
func (w *pgBackup) node(member string) activities.Node {
	i := slices.IndexFunc(w.in.Nodes, func(n activities.Node) bool { return n.Name == member })
	if i < 0 {
		return activities.Node{Name: member} // refused by the activity's input check, naming the field
	}
	return w.in.Nodes[i]
}

// backupFailed ends a run whose backup failed: what pgBackRest said, whether the leader moved
// meanwhile (a failover), that no backup was recorded, and that the next run starts afresh.
func (w *pgBackup) backupFailed(source, leader string, err error) error {
	var a *activities.Activities
	w.track.plan(pgBackupRecheckStep)
	msg := fmt.Sprintf("the %s backup on %s failed: %v", w.in.Type, source, err)
	st, rerr := runStep(w.ctx, w.track, pgBackupRecheckStep, func(st activities.ClusterState) (string, string) { return StateUnchanged, st.View },
		a.ReadClusterState, activities.ClusterStateInput{DCS: w.in.DCS, Members: w.in.Members})
	switch {
	case rerr != nil:
	case st.Leader != leader:
		msg += fmt.Sprintf("; the leader changed during the backup (%s → %s): a failover or switchover", leader, orDefault(st.Leader, "none"))
	case !st.LeaderPrimary:
		msg += "; " + st.Unhealthy()
	}
	return w.fail(msg + fmt.Sprintf("; no backup was recorded (pgBackRest records a backup only once it is complete, and resumes or removes a partial one at the next backup): run `%s` again, or let the schedule's next run take it",
		PgBackupCommand(w.in.Cluster, w.in.Type)))
}

// refuse ends a run that changed nothing.
func (w *pgBackup) refuse(why string) error {
	w.res.Outcome = "refused"
	w.track.skipPending()
	return w.track.fail(fmt.Sprintf("pg-backup of %s refused: %s; nothing was changed", w.in.Cluster, why), PgBackupRefusedType, w.res)
}

// fail ends a run whose backup or expiry failed.
func (w *pgBackup) fail(msg string) error {
	w.res.Outcome = "failed"
	w.track.skipPending()
	return w.track.fail(fmt.Sprintf("pg-backup of %s: %s", w.in.Cluster, msg), PgBackupFailedType, w.res)
}
