package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgClusterCreate following a failover during its build. Once the primary's agent leads, the
// cluster can fail over under the build (a host that starves its agents, a crash): the steps
// bound to the old primary then fail ("not the primary", a clone source in recovery, a refused
// connection). Rather than stop with "run again", the run reads the DCS and, when another member
// leads, runs the build again on that leader, as a rerun would: every step is idempotent, so
// what was done reports unchanged, and the former primary, its initdb marked, is kept as it is.

// followLeaderChange is the GetVersion change ID of following a leader change during the build
// (taken only when a stage fails, so runs that never failed replay without it).
const followLeaderChange = "pgcc-follow-leader"

// maxLeaderFollows bounds how often one run starts its build again on a new leader: a cluster
// whose leader keeps moving is not one to build on, and the run then stops, saying so.
const maxLeaderFollows = 3

// electionReads bounds how often leaderMoved reads a DCS that names no leader (an election in
// progress), a second apart: longer than any lease (60 s at most) is a cluster without a leader.
const electionReads = 15

// build runs plan; after a failed stage it follows a new leader (leaderMoved) up to
// maxLeaderFollows times, each time running the build again planned around that leader.
func (w *pgClusterCreate) build(plan []pgStage) error {
	for follows := 0; ; follows++ {
		err := w.runPlan(plan)
		if err == nil {
			return nil
		}
		from := w.primary.Name
		if follows == maxLeaderFollows || !w.leaderMoved(err) {
			if follows > 0 {
				return fmt.Errorf("%w (the leader moved during the build; the run followed it %d times: %v)", err, follows, w.res.Followed)
			}
			return err
		}
		w.res.Followed = append(w.res.Followed, fmt.Sprintf("%s -> %s after: %s", from, w.primary.Name, failureMessage(err)))
		workflow.GetLogger(w.ctx).Warn("the leader moved during the build: building again on the new leader",
			"cluster", w.in.Cluster, "from", from, "to", w.primary.Name, "after", failureMessage(err))
		w.track.supersedeFailed("the leader moved to " + w.primary.Name + ": built again there")
		plan = w.plan()
		w.track.ensure(planSteps(plan)...)
	}
}

// runPlan runs plan's stages in order, stopping at the first that fails.
func (w *pgClusterCreate) runPlan(plan []pgStage) error {
	for _, stage := range plan {
		if err := w.runStage(stage); err != nil {
			return err
		}
	}
	return nil
}

// leaderMoved reads the DCS after err and, when a member other than the build's primary leads,
// makes it the primary (followCurrentLeader) and says so. A canceled run, a run from before
// this change, or a DCS that cannot be read does not follow.
func (w *pgClusterCreate) leaderMoved(err error) bool {
	if temporal.IsCanceledError(err) || w.ctx.Err() != nil {
		return false
	}
	if workflow.GetVersion(w.ctx, followLeaderChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false
	}
	var a *activities.Activities
	// Mid-election the DCS names no leader: read again, a second apart, until one leads.
	var d activities.DCSState
	for read := 0; read < electionReads; read++ {
		if read > 0 {
			if workflow.Sleep(w.ctx, time.Second) != nil {
				return false
			}
		}
		var derr error
		if d, derr = runStep(w.ctx, w.track, dcsStatusStep, dcsOutcome, a.DCSStatus, w.in.DCS); derr != nil || !d.Reachable {
			return false
		}
		if d.Leader != "" {
			break
		}
	}
	w.dcs = d
	before := w.primary.Name
	w.followCurrentLeader()
	return w.primary.Name != before
}
