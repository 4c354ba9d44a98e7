package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgReload has every member's agent write the cluster's dynamic parameters (the DCS config's
// postgresql.parameters) and reload PostgreSQL (Patroni's `patronictl reload`); it restarts
// nothing, and says which members now wait for a restart and the command that restarts them.
const (
	PgReloadName    = "PgReload"
	PgReloadRunbook = "pg-reload"
)

// PgReloadInput is resolved from the inventory.
type PgReloadInput struct {
	Cluster string                 `json:"cluster"`
	Members []activities.MemberAPI `json:"members"`
}

// PgReloadResult is the run's record: each member's reload, and what waits for a restart.
type PgReloadResult struct {
	Cluster string                  `json:"cluster"`
	Members []activities.StepResult `json:"members"` // in the input's order; a failed member's is empty
	// PendingRestart: member → the settings that wait for its restart.
	PendingRestart map[string][]string `json:"pending_restart,omitempty"`
	// Next is the command that restarts them ("" when nothing waits).
	Next string `json:"next,omitempty"`
}

// PgReloadFailedType: a member's agent did not reload; the others did.
const PgReloadFailedType = "PgReloadFailed"

// pgReloadPending is the run's last line in the Web UI: what waits for a restart. It runs no
// activity.
var pgReloadPending = step{name: "pending-restart"}

func pgReloadStep(member string) step {
	s := memberStep(member, "reload", within(time.Minute, 3))
	s.what = "write the dynamic parameters and reload"
	return s
}

// PgReload reloads every member in parallel (a reload never interrupts a session), then
// reports what waits for a restart.
func PgReload(ctx workflow.Context, in PgReloadInput) (PgReloadResult, error) {
	res := PgReloadResult{Cluster: in.Cluster, Members: make([]activities.StepResult, len(in.Members))}
	if err := setSearchAttributes(ctx, PgReloadRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, PgReloadRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	if _, err := lockCluster(ctx, track, in.Cluster, false); err != nil {
		return res, err
	}
	var steps []step
	for _, m := range in.Members {
		steps = append(steps, pgReloadStep(m.Name))
	}
	track.plan(append(steps, pgReloadPending)...)
	if len(in.Members) == 0 {
		return res, track.fail("the cluster has no member to reload", PgReloadFailedType, res)
	}
	var a *activities.Activities
	failed := make([]string, len(in.Members))
	if err := parallel(ctx, len(in.Members), func(ctx workflow.Context, i int) {
		m := in.Members[i]
		sr, err := runStep(ctx, track, pgReloadStep(m.Name), stepOutcome, a.MemberReload, activities.MemberReloadInput{Member: m})
		if err != nil {
			failed[i] = fmt.Sprintf("%s: %v", m.Name, err)
			return
		}
		res.Members[i] = sr
	}); err != nil {
		return res, err
	}
	var waiting, problems []string
	for i, sr := range res.Members {
		if failed[i] != "" {
			problems = append(problems, failed[i])
			continue
		}
		if names := sr.Facts["pending_restart"]; names != "" {
			if res.PendingRestart == nil {
				res.PendingRestart = map[string][]string{}
			}
			res.PendingRestart[in.Members[i].Name] = strings.Split(names, ",")
			waiting = append(waiting, fmt.Sprintf("%s (%s)", in.Members[i].Name, strings.ReplaceAll(names, ",", ", ")))
		}
	}
	if len(waiting) > 0 {
		res.Next = PgRestartPendingCommand(in.Cluster)
		track.set(pgReloadPending, StateUnchanged, fmt.Sprintf("waiting for a restart: %s; restart them with `%s`", strings.Join(waiting, "; "), res.Next))
	} else {
		track.set(pgReloadPending, StateUnchanged, "no member waits for a restart")
	}
	if len(problems) > 0 {
		return res, track.fail("reload failed on "+strings.Join(problems, "; "), PgReloadFailedType, res)
	}
	track.setPhase(PhaseDone)
	return res, nil
}
