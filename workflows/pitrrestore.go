package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/pitr"
)

// PITRRestore brings an HA cluster back to a point in time, in place, as one durable run.
const (
	PITRRestoreName    = "PITRRestore"
	PITRRestoreRunbook = "pitr-restore"
)

// PITRRestoreInput is resolved from the inventory and the command line. The target was parsed
// by pitr.Parse; its timeline may still be unset (the precheck puts it on the cluster's own).
type PITRRestoreInput struct {
	Cluster   string                  `json:"cluster"`
	Members   []activities.PITRMember `json:"members"`
	Spec      activities.PITRSpec     `json:"spec"` // Key is set by the run
	DCS       activities.DCSInput     `json:"dcs"`
	Target    pitr.Target             `json:"target"`
	BackupSet string                  `json:"backup_set,omitempty"`
	Inspect   bool                    `json:"inspect,omitempty"` // a second approval at the target, before promoting
	// Cleanup: no restore; delete the data directories earlier runs kept aside, after an approval.
	Cleanup     bool           `json:"cleanup,omitempty"`
	DryRun      bool           `json:"dry_run,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	RequestedBy string         `json:"requested_by"`
	Approval    ApprovalPolicy `json:"approval"`
}

// PITRRestoreResult is the run's record.
type PITRRestoreResult struct {
	Cluster     string                   `json:"cluster"`
	Key         string                   `json:"key"`
	Plan        activities.PITRPlan      `json:"plan"`
	Approval    ApprovalState            `json:"approval"`
	Inspection  *ApprovalState           `json:"inspection,omitempty"`
	Proof       activities.RecoveryProof `json:"proof"`
	NewTimeline uint32                   `json:"new_timeline,omitempty"`
	NewBackup   string                   `json:"new_backup,omitempty"`
	// Leftovers: with --cleanup, the directories found (and, once approved, removed).
	Leftovers []activities.PITRLeftover `json:"leftovers,omitempty"`
	// Outcome: restored | dry run | refused | rejected | timed out | rolled back | failed;
	// with --cleanup: cleaned | nothing to clean.
	Outcome string                  `json:"outcome"`
	Steps   []activities.StepResult `json:"steps"`
}

// Error types of a PITRRestore that did not restore.
const (
	PITRRestoreRejectedType   = "PITRRestoreNotApproved" // refused by the precheck, rejected or timed out: nothing changed
	PITRRestoreRolledBackType = "PITRRestoreRolledBack"  // failed before the promotion: the original data is back and HA runs
	PITRRestoreFailedType     = "PITRRestoreFailed"      // failed after the promotion, or its roll-back failed: see the steps
)

var (
	pitrPrecheck = controlStep("precheck", within(2*time.Minute, 3))
	pitrPause    = controlStep("pause-ha", within(time.Minute, 5))
	pitrHandOver = controlStep("hand-over", within(time.Minute, 5))
	pitrResume   = controlStep("resume-ha", within(time.Minute, 5))
	pitrMembers  = controlStep("members", within(20*time.Minute, 3))
	pitrVerify   = controlStep("verify", within(2*time.Minute, 3))
	pitrHandBack = controlStep("hand-back", within(time.Minute, 5))
	pitrResumeBk = controlStep("resume-ha-back", within(time.Minute, 5))
	pitrBack     = controlStep("members-back", within(10*time.Minute, 3))
	inspectStep  = step{name: "inspect"}
)

// pitrMemberStep is a step of the restore on one member.
func pitrMemberStep(member, name, what string, r retry) step {
	s := memberStep(member, name, r)
	s.what = what
	return s
}

// pitrRestore is one run.
type pitrRestore struct {
	ctx     workflow.Context
	in      PITRRestoreInput
	track   *tracker
	gate    *approvalGate
	res     PITRRestoreResult
	by      string // who paused the cluster: this run
	leader  activities.PITRMember
	others  []activities.PITRMember
	paused  bool // the pause step ran (HA may be paused by this run)
	stopped bool // a stop step ran: members may be down and their data aside
}

// PITRRestore: a precheck that refuses what cannot work (the target outside every recoverable
// window, no room, agents silent); the plan and an approval; then HA paused, every member
// stopped and its data directory kept aside, the chosen backup restored on the leader's node with
// recovery action pause, the target proven from PostgreSQL's own log, an optional second approval
// at the target (--inspect), the promotion, the new timeline's history archived and the recovery
// settings removed, the leader key handed to the restored member, HA resumed, the other members
// re-created from it by their agents, a new full backup and `pgbackrest check`. Before the
// promotion any failure, rejection or timeout puts the original data directories back and resumes
// HA; after it the run goes forward.
func PITRRestore(ctx workflow.Context, in PITRRestoreInput) (PITRRestoreResult, error) {
	w := &pitrRestore{ctx: ctx, in: in, res: PITRRestoreResult{Cluster: in.Cluster}}
	if err := setSearchAttributes(ctx, PITRRestoreRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, PITRRestoreRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if _, err := lockCluster(ctx, w.track, in.Cluster, false); err != nil {
		return w.res, err
	}
	if w.gate, err = newApprovalGate(ctx, in.RequestedBy); err != nil {
		return w.res, err
	}
	// The run's key names what it leaves on the nodes: deterministic, from its start time.
	w.res.Key = workflow.GetInfo(ctx).WorkflowStartTime.UTC().Format("20060102T150405Z")
	w.in.Spec.Key = w.res.Key
	w.by = PITRRestoreRunbook + " " + w.res.Key
	if in.Cleanup {
		return w.cleanup()
	}
	return w.run()
}

func (w *pitrRestore) run() (PITRRestoreResult, error) {
	w.track.plan(pitrPrecheck, approvalStep)
	if err := w.precheck(); err != nil {
		return w.res, err
	}
	w.planSteps()
	if w.in.DryRun {
		w.res.Outcome = "dry run"
		w.skipRest("dry run")
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	plan := w.res.Plan.Describe(w.in.Cluster)
	if w.in.Reason != "" {
		plan += "; reason: " + w.in.Reason
	}
	defer func() {
		notify(w.ctx, activities.Notification{Event: "run-ended", Runbook: PITRRestoreRunbook, Cluster: w.in.Cluster,
			Text: fmt.Sprintf("ended: %s (%s)", orDefault(w.res.Outcome, "failed"), w.res.Approval.Summary())})
	}()
	if err := w.approve(plan, "pitr-restore", "nothing was changed", w.approvalNote(plan)); err != nil {
		return w.res, err
	}

	if why, err := w.untilTarget(); err != nil {
		return w.res, w.rollBack(why, err)
	}
	if err := w.forward(); err != nil {
		w.res.Outcome = "failed"
		return w.res, w.track.fail(fmt.Sprintf("pitr-restore of %s failed after the promotion (the run goes forward, never back): %v", w.in.Cluster, err), PITRRestoreFailedType, w.res)
	}
	w.res.Outcome = "restored"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}

// approve waits for the approval of plan; without one the run ends (what names the run in the
// message, unchanged says what did not happen) with PITRRestoreRejectedType. note, when given,
// tells the chat.
func (w *pitrRestore) approve(plan, what, unchanged string, note *activities.Notification) error {
	var err error
	if w.res.Approval, err = w.gate.decide(w.ctx, w.track, approvalStep, plan, w.in.Approval, note); err != nil {
		return err
	}
	if !w.res.Approval.Approved() {
		w.res.Outcome = notApproved(w.res.Approval)
		w.skipRest("not approved: " + unchanged)
		return w.track.fail(fmt.Sprintf("%s of %s %s: %s", what, w.in.Cluster, w.res.Approval.Summary(), unchanged), PITRRestoreRejectedType, w.res)
	}
	return nil
}

// approvalNote is the chat notification of a gate of this run.
func (w *pitrRestore) approvalNote(plan string) *activities.Notification {
	return &activities.Notification{Event: "approval-requested", Runbook: PITRRestoreRunbook, Cluster: w.in.Cluster, Text: "waiting for approval: " + plan}
}

// precheck builds the plan; a refusal changes nothing.
func (w *pitrRestore) precheck() error {
	var a *activities.Activities
	plan, err := runStep(w.ctx, w.track, pitrPrecheck, func(p activities.PITRPlan) (string, string) { return StateUnchanged, p.Describe(w.in.Cluster) },
		a.PITRPrecheck, activities.PITRCheckInput{DCS: w.in.DCS, Members: w.in.Members, Spec: w.in.Spec, Target: w.in.Target, BackupSet: w.in.BackupSet})
	if err != nil {
		w.res.Outcome = "refused"
		return w.track.fail(err.Error(), PITRRestoreRejectedType, w.res)
	}
	w.res.Plan = plan
	for _, m := range w.in.Members {
		if m.Name == plan.RestoreNode {
			w.leader = m
		} else {
			w.others = append(w.others, m)
		}
	}
	return nil
}

// The steps on members, built once the plan names the restore node.
func (w *pitrRestore) stop(m activities.PITRMember) step {
	return pitrMemberStep(m.Name, activities.StepPITRStop, "stop PostgreSQL", within(11*time.Minute, 3))
}
func (w *pitrRestore) aside(m activities.PITRMember) step {
	return pitrMemberStep(m.Name, activities.StepPITRAside, "keep the data directory aside", within(2*time.Minute, 3))
}
func (w *pitrRestore) putBack(m activities.PITRMember) step {
	return pitrMemberStep(m.Name, activities.StepPITRPutBack, "put the original data directory back", within(time.Hour, 3))
}
func (w *pitrRestore) leaderStep(name, what string, r retry) step {
	return pitrMemberStep(w.leader.Name, name, what, r)
}

var (
	pitrRestoreRetry = within(4*time.Hour, 3)
	pitrReachRetry   = within(24*time.Hour, 3)
	pitrShortRetry   = within(5*time.Minute, 3)
)

func (w *pitrRestore) planSteps() {
	steps := []step{pitrPause}
	for _, m := range w.members() {
		steps = append(steps, w.stop(m))
	}
	for _, m := range w.members() {
		steps = append(steps, w.aside(m))
	}
	steps = append(steps,
		w.leaderStep(activities.StepPITRRestore, "pgbackrest restore "+w.res.Plan.Backup, pitrRestoreRetry),
		w.leaderStep(activities.StepPITRRecover, "start PostgreSQL in recovery", pitrShortRetry),
		w.leaderStep("reach-target", "replay to "+w.res.Plan.TargetText, pitrReachRetry))
	if w.in.Inspect {
		steps = append(steps, inspectStep)
	}
	steps = append(steps,
		w.leaderStep(activities.StepPITRPromote, "promote", pitrShortRetry),
		w.leaderStep(activities.StepPITRFinalize, "archive the timeline history, remove recovery settings", within(15*time.Minute, 3)),
		pitrHandOver, pitrResume, pitrMembers,
		w.leaderStep(activities.StepPITRBackup, "full backup on the new timeline", pitrRestoreRetry),
		w.leaderStep(activities.StepPITRCheck, "pgbackrest check", pitrShortRetry),
		pitrVerify)
	w.track.plan(steps...)
}

// members is the restore node first, then the others.
func (w *pitrRestore) members() []activities.PITRMember {
	return append([]activities.PITRMember{w.leader}, w.others...)
}

func (w *pitrRestore) node(m activities.PITRMember) activities.PITRNodeInput {
	return activities.PITRNodeInput{Member: m.Name, Node: m.Node, Spec: w.in.Spec}
}

func (w *pitrRestore) nodeInput(m activities.PITRMember) any { return w.node(m) }

func (w *pitrRestore) ha() activities.PITRHAInput {
	return activities.PITRHAInput{DCS: w.in.DCS, Members: w.in.Members, By: w.by, Reason: "point-in-time restore to " + w.res.Plan.TargetText}
}

// do runs one step whose activity reports a StepResult and records it.
func (w *pitrRestore) do(ctx workflow.Context, s step, activity any, input any) (activities.StepResult, error) {
	sr, err := runStep(ctx, w.track, s, stepOutcome, activity, input)
	if err != nil {
		return sr, fmt.Errorf("%s on %s: %w", s.name, orControl(s.node), err)
	}
	sr.Node, sr.Step = orControl(s.node), s.name
	w.res.Steps = append(w.res.Steps, sr)
	return sr, nil
}

// onAll runs a step on every member in parallel; the first error is returned after all ended.
func (w *pitrRestore) onAll(ms []activities.PITRMember, s func(activities.PITRMember) step, activity any, input func(activities.PITRMember) any) error {
	errs := make([]error, len(ms))
	if err := parallel(w.ctx, len(ms), func(ctx workflow.Context, i int) {
		_, errs[i] = w.do(ctx, s(ms[i]), activity, input(ms[i]))
	}); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// untilTarget is everything before the promotion: on failure the run rolls back. why says
// what stopped it, for the outcome.
func (w *pitrRestore) untilTarget() (string, error) {
	var a *activities.Activities
	w.paused = true
	pause := w.ha()
	pause.Leader = w.res.Plan.Leader
	if _, err := w.do(w.ctx, pitrPause, a.PITRPause, pause); err != nil {
		return "failed", err
	}
	// The leader first, so its replicas receive its shutdown checkpoint and no commit waits for
	// a synchronous standby that is already gone.
	w.stopped = true
	if _, err := w.do(w.ctx, w.stop(w.leader), a.PITRStop, activities.PITRStopInput{PITRNodeInput: w.node(w.leader), SwitchWAL: true}); err != nil {
		return "failed", err
	}
	if err := w.onAll(w.others, w.stop, a.PITRStop, func(m activities.PITRMember) any { return activities.PITRStopInput{PITRNodeInput: w.node(m)} }); err != nil {
		return "failed", err
	}
	if err := w.onAll(w.members(), w.aside, a.PITRKeepAside, w.nodeInput); err != nil {
		return "failed", err
	}
	opts, _ := w.res.Plan.Target.PgBackRest() // the precheck rendered it already
	if _, err := w.do(w.ctx, w.leaderStep(activities.StepPITRRestore, "", pitrRestoreRetry), a.PITRRestore, activities.PITRRestoreInput{
		PITRNodeInput: w.node(w.leader), Backup: w.res.Plan.Backup, Args: opts.Args(), Latest: w.res.Plan.Target.Kind == pitr.KindLatest}); err != nil {
		return "failed", err
	}
	if _, err := w.do(w.ctx, w.leaderStep(activities.StepPITRRecover, "", pitrShortRetry), a.PITRStartRecovery, w.node(w.leader)); err != nil {
		return "failed", err
	}
	reach := w.leaderStep("reach-target", "", pitrReachRetry)
	proof, err := runStep(w.ctx, w.track, reach, func(p activities.RecoveryProof) (string, string) { return StateUnchanged, p.Summary() },
		a.PITRReachTarget, activities.PITRReachInput{PITRNodeInput: w.node(w.leader), Target: w.res.Plan.Target})
	w.res.Proof = proof
	if err != nil {
		return "failed", fmt.Errorf("reach-target on %s: %w", w.leader.Name, err)
	}
	if w.in.Inspect {
		return w.inspect()
	}
	return "", nil
}

// inspect is the second approval, at the target: what replay stopped at, before promoting.
func (w *pitrRestore) inspect() (string, error) {
	w.gate.discardPending(w.ctx)
	plan := fmt.Sprintf("promote %s at the target: %s. Read-only queries to it show the data as it would be kept; rejecting puts the original data back",
		w.leader.Name, w.res.Proof.Summary())
	g, err := w.gate.decide(w.ctx, w.track, inspectStep, plan, w.in.Approval, w.approvalNote(plan))
	if err != nil {
		return "failed", err
	}
	w.res.Inspection = &g
	if !g.Approved() {
		return notApproved(g), fmt.Errorf("promotion at the target %s", g.Summary())
	}
	return "", nil
}

// forward is everything from the promotion on.
func (w *pitrRestore) forward() error {
	var a *activities.Activities
	sr, err := w.do(w.ctx, w.leaderStep(activities.StepPITRPromote, "", pitrShortRetry), a.PITRPromote, w.node(w.leader))
	if err != nil {
		return err
	}
	tl, err := strconv.ParseUint(sr.Facts["timeline"], 10, 32)
	if err != nil {
		return fmt.Errorf("promote on %s reported timeline %q", w.leader.Name, sr.Facts["timeline"])
	}
	w.res.NewTimeline = uint32(tl)
	fin, err := w.do(w.ctx, w.leaderStep(activities.StepPITRFinalize, "", within(15*time.Minute, 3)), a.PITRFinalize,
		activities.PITRFinalizeInput{PITRNodeInput: w.node(w.leader), Timeline: w.res.NewTimeline})
	if err != nil {
		return err
	}
	if _, err := w.do(w.ctx, pitrHandOver, a.PITRHandOver, activities.PITRHandOverInput{PITRHAInput: w.ha(),
		Holder: w.leader.Name, Timeline: w.res.NewTimeline, Optime: fin.Facts["checkpoint_lsn"]}); err != nil {
		return err
	}
	if _, err := w.do(w.ctx, pitrResume, a.PITRResume, w.ha()); err != nil {
		return err
	}
	if _, err := w.do(w.ctx, pitrMembers, a.PITRWaitCluster, activities.PITRWaitInput{PITRHAInput: w.ha(),
		Leader: w.leader.Name, Timeline: w.res.NewTimeline, Port: w.in.Spec.Port}); err != nil {
		return err
	}
	onLeader := activities.PITRBackupInput{PITRNodeInput: w.node(w.leader), Timeline: w.res.NewTimeline, DCS: w.in.DCS, Members: w.in.Members}
	bk, err := w.do(w.ctx, w.leaderStep(activities.StepPITRBackup, "", pitrRestoreRetry), a.PITRBackup, onLeader)
	if err != nil {
		return err
	}
	w.res.NewBackup = bk.Facts["backup"]
	if _, err := w.do(w.ctx, w.leaderStep(activities.StepPITRCheck, "", pitrShortRetry), a.PITRCheck, onLeader); err != nil {
		return err
	}
	_, err = w.do(w.ctx, pitrVerify, a.PITRWaitCluster, activities.PITRWaitInput{PITRHAInput: w.ha(),
		Timeline: w.res.NewTimeline, AnyLeader: true, Timeout: time.Minute, Port: w.in.Spec.Port})
	return err
}

// rollBack is the compensation of a run stopped before its promotion: the original data
// directories go back, the leader key names the member that led, HA resumes and the cluster runs
// as before. The run then ends with why (rejected, timed out or failed) and the cause.
func (w *pitrRestore) rollBack(why string, cause error) error {
	var a *activities.Activities
	w.skipRest("rolled back before the promotion")
	w.track.plan(w.rollBackSteps()...)
	back := w.onAll(w.members(), w.putBack, a.PITRPutBack, w.nodeInput)
	if !w.stopped {
		w.track.set(pitrHandBack, StateSkipped, "nothing was stopped")
		w.track.set(pitrBack, StateSkipped, "nothing was stopped")
	}
	if back == nil && w.stopped {
		_, back = w.do(w.ctx, pitrHandBack, a.PITRHandOver, activities.PITRHandOverInput{PITRHAInput: w.ha(), IfPaused: true,
			Holder: w.res.Plan.Leader, Timeline: w.res.Plan.LeaderTimeline, Optime: w.res.Plan.LeaderLSN})
	}
	if back == nil && w.paused {
		_, back = w.do(w.ctx, pitrResumeBk, a.PITRResume, w.ha())
	}
	if back == nil && w.stopped {
		_, back = w.do(w.ctx, pitrBack, a.PITRWaitCluster, activities.PITRWaitInput{PITRHAInput: w.ha(),
			Leader: w.res.Plan.Leader, Timeline: w.res.Plan.LeaderTimeline, Port: w.in.Spec.Port})
	}
	if back != nil {
		w.res.Outcome = "failed"
		return w.track.fail(fmt.Sprintf("pitr-restore of %s stopped before the promotion (%v), and putting the original data back failed: %v; the cluster is paused with the original data directories kept as %s",
			w.in.Cluster, cause, back, w.in.Spec.AsidePath()), PITRRestoreFailedType, w.res)
	}
	w.res.Outcome = "rolled back"
	if why == "rejected" || why == "timed out" {
		w.res.Outcome = why + ", rolled back"
	}
	return w.track.fail(fmt.Sprintf("pitr-restore of %s stopped before the promotion: %v; the original data directories are back and the cluster runs as before", w.in.Cluster, cause),
		PITRRestoreRolledBackType, w.res)
}

func (w *pitrRestore) rollBackSteps() []step {
	var steps []step
	for _, m := range w.members() {
		steps = append(steps, w.putBack(m))
	}
	return append(steps, pitrHandBack, pitrResumeBk, pitrBack)
}

// skipRest marks every step still pending as skipped.
func (w *pitrRestore) skipRest(why string) {
	for _, s := range w.track.p.Steps {
		if s.State == StatePending {
			w.track.set(step{node: s.Node, name: s.Step}, StateSkipped, why)
		}
	}
}

var pitrCleanupList = controlStep("cleanup-list", within(2*time.Minute, 3))

func pitrCleanupStep(member string) step {
	return pitrMemberStep(member, "cleanup", "delete the data directories earlier restores kept", within(30*time.Minute, 3))
}

// cleanup is `pitr-restore --cleanup`: list what earlier runs kept aside on every member, and
// after an approval of that exact list, delete it. Nothing else is ever deleted
// (activities.IsPITRLeftover).
func (w *pitrRestore) cleanup() (PITRRestoreResult, error) {
	var a *activities.Activities
	w.track.plan(pitrCleanupList, approvalStep)
	left, err := runStep(w.ctx, w.track, pitrCleanupList, func(l []activities.PITRLeftover) (string, string) {
		return StateUnchanged, fmt.Sprintf("%d director%s kept by earlier restores", len(l), map[bool]string{true: "y", false: "ies"}[len(l) == 1])
	}, a.PITRCleanupList, activities.PITRCleanupInput{Members: w.in.Members, Spec: w.in.Spec})
	if err != nil {
		w.res.Outcome = "failed"
		return w.res, w.track.fail(err.Error(), PITRRestoreFailedType, w.res)
	}
	w.res.Leftovers = left
	var members []activities.PITRMember
	var what []string
	for _, m := range w.in.Members {
		mine := false
		for _, l := range left {
			if l.Member == m.Name {
				mine = true
				what = append(what, fmt.Sprintf("%s: %s (%s)", m.Name, l.Path, l.Size))
			}
		}
		if mine {
			members = append(members, m)
			w.track.plan(pitrCleanupStep(m.Name))
		}
	}
	if len(left) == 0 || w.in.DryRun {
		w.res.Outcome = map[bool]string{true: "nothing to clean", false: "dry run"}[len(left) == 0]
		w.skipRest(w.res.Outcome)
		w.track.setPhase(PhaseDone)
		return w.res, nil
	}
	plan := fmt.Sprintf("delete, on %s's members, the data directories earlier point-in-time restores kept: %s", w.in.Cluster, strings.Join(what, ", "))
	// No chat notice here: runs from before verified approvals sent none at this gate.
	if err := w.approve(plan, "pitr-restore --cleanup", "nothing was deleted", nil); err != nil {
		return w.res, err
	}
	err = w.onAll(members, func(m activities.PITRMember) step { return pitrCleanupStep(m.Name) }, a.PITRCleanupMember, func(m activities.PITRMember) any {
		return activities.PITRCleanupInput{Members: []activities.PITRMember{m}, Spec: w.in.Spec, Remove: left}
	})
	if err != nil {
		w.res.Outcome = "failed"
		return w.res, w.track.fail(err.Error(), PITRRestoreFailedType, w.res)
	}
	w.res.Outcome = "cleaned"
	w.track.setPhase(PhaseDone)
	return w.res, nil
}
