package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgHBA writes the cluster's pg_hba.conf, rendered from the inventory's pg_hba_rules
// (activities.RenderHBA, as PgClusterCreate does), on every member and reloads each (Pigsty's
// pgsql-hba): every member holds the same rules, so a failover keeps them.
const (
	PgHBAName    = "PgHBA"
	PgHBARunbook = "pg-hba"
)

// PgHBAInput is resolved from the inventory.
type PgHBAInput struct {
	Cluster string            `json:"cluster"`
	Members []PgMember        `json:"members"` // in pg_seq order
	Spec    activities.PGSpec `json:"spec"`    // Spec.HBA: the rendered lines
	DryRun  bool              `json:"dry_run,omitempty"`
}

// PgHBAResult is the run's record: each member's step (a dry run's: the lines that would be
// added and removed).
type PgHBAResult struct {
	Cluster string                  `json:"cluster"`
	Lines   []string                `json:"lines"`
	Members []activities.StepResult `json:"members"`
}

// PgHBAFailedType: a member's pg_hba.conf could not be written or PostgreSQL refused it; the
// members before it have the new rules, the others the old.
const PgHBAFailedType = "PgHBAFailed"

func pgHBAStep(member string) step {
	s := memberStep(member, "pg_hba", within(2*time.Minute, 3))
	s.what = "write pg_hba.conf and reload"
	return s
}

// PgHBA: one member at a time, in order: its pg_hba.conf written when it differs, checked by its
// PostgreSQL (a file it refuses is put back, and the run stops before the next member) and
// reloaded. A member whose PostgreSQL is stopped gets the file, which its start reads. A dry
// run reads every member and reports the lines that would change.
func PgHBA(ctx workflow.Context, in PgHBAInput) (PgHBAResult, error) {
	res := PgHBAResult{Cluster: in.Cluster, Lines: in.Spec.HBA}
	if err := setSearchAttributes(ctx, PgHBARunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, PgHBARunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	if _, err := lockCluster(ctx, track, in.Cluster, false); err != nil {
		return res, err
	}
	for _, m := range in.Members {
		track.plan(pgHBAStep(m.Name))
	}
	if len(in.Members) == 0 {
		return res, track.fail("the cluster has no member to write pg_hba.conf on", PgHBAFailedType, res)
	}
	var a *activities.Activities
	for i, m := range in.Members {
		out := stepOutcome
		if in.DryRun {
			out = dryRunOutcome
		}
		sr, err := runStep(ctx, track, pgHBAStep(m.Name), out, a.PgHBA,
			activities.PgHBAInput{PgNodeInput: activities.PgNodeInput{Node: m.Node, Spec: in.Spec}, DryRun: in.DryRun})
		if err != nil {
			for _, rest := range in.Members[i+1:] {
				track.set(pgHBAStep(rest.Name), StateSkipped, "not reached: its pg_hba.conf is as it was")
			}
			var before []string
			for _, done := range in.Members[:i] {
				before = append(before, done.Name)
			}
			return res, track.fail(fmt.Sprintf("pg_hba.conf on %s: %v; members with the new rules: %s", m.Name, err, orDefault(strings.Join(before, ", "), "none")),
				PgHBAFailedType, res)
		}
		res.Members = append(res.Members, sr)
	}
	track.setPhase(PhaseDone)
	return res, nil
}

// dryRunOutcome is a dry run's step: skipped, saying what would change, or unchanged.
func dryRunOutcome(sr activities.StepResult) (string, string) {
	if sr.Facts[activities.FactDiffers] == "1" {
		return StateSkipped, "dry run: " + strings.Join(sr.Notes, "; ")
	}
	return StateUnchanged, "as rendered"
}
