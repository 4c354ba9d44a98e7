package workflows

import (
	"slices"
	"time"

	"github.com/pigwf/pigwf/activities"
)

// PgClusterCreate's build after the prechecks, as data: the progress query lists its steps
// before anything runs, a dry run returns them as the plan, and run executes them stage by stage
// (runStage). The order of the build is stated in plan only.

// pgStep is one step of the build: the tracked step, its activity and how its input is made.
type pgStep struct {
	step
	activity any
	input    func() any                  // made when the step starts: it may need an earlier result (the sysid)
	then     func(activities.StepResult) // what the run keeps of the result, if anything
}

// pgStage is a part of the build: one lane of steps run in order, or (perMember) a lane per
// member, the lanes in parallel.
type pgStage struct {
	lanes     [][]pgStep
	perMember bool
	members   []PgMember // perMember: lane i runs for members[i]
	failure   string     // perMember: a failed lane's error, a format of the member's name and the error
}

// plan is the build, in order.
func (w *pgClusterCreate) plan() []pgStage {
	return slices.Concat(w.credentials(), w.bootstrapPrimary(), w.cloneReplicas(), w.usersAndDatabases(), w.backups(), w.verification())
}

// planSteps are the plan's steps in order: stage by stage, lane by lane.
func planSteps(plan []pgStage) []step {
	var steps []step
	for _, st := range plan {
		for _, lane := range st.lanes {
			for _, s := range lane {
				steps = append(steps, s.step)
			}
		}
	}
	return steps
}

// sequence is a stage of steps run one after the other.
func sequence(steps ...pgStep) pgStage { return pgStage{lanes: [][]pgStep{steps}} }

// onEach is a stage with a lane per member, run in parallel.
func onEach(members []PgMember, failure string, lane func(m PgMember) []pgStep) pgStage {
	st := pgStage{perMember: true, members: members, failure: failure}
	for _, m := range members {
		st.lanes = append(st.lanes, lane(m))
	}
	return st
}

// onMember is a step on member m.
func onMember(m PgMember, name string, r retry, activity any, input func() any) pgStep {
	return pgStep{step: memberStep(m.Name, name, r), activity: activity, input: input}
}

// onControl is a step on the control side.
func onControl(name string, r retry, activity any, input func() any) pgStep {
	return pgStep{step: controlStep(name, r), activity: activity, input: input}
}

// onNode is a step on member m whose activity needs only nodeInput.
func (w *pgClusterCreate) onNode(m PgMember, name string, r retry, activity any) pgStep {
	return onMember(m, name, r, activity, func() any { return w.nodeInput(m) })
}

// agent is member m's HA agent step: the agent starts PostgreSQL (and, on the primary, takes the
// leader key).
func (w *pgClusterCreate) agent(m PgMember) pgStep {
	var a *activities.Activities
	return onMember(m, activities.StepAgent, within(5*time.Minute, 5), a.HAAgent, func() any { return w.agentInput(m) })
}

// clone names the member a clone copies from, for people.
func clone(s pgStep, from string) pgStep {
	s.what = "clone from " + from
	return s
}

// credentials: the replication credentials on every node.
func (w *pgClusterCreate) credentials() []pgStage {
	return []pgStage{onEach(w.in.Members, "credentials on %s: %w", func(m PgMember) []pgStep {
		return []pgStep{w.credentialsOf(m)}
	})}
}

// credentialsOf is member m's credentials step (PgMemberAdd's too).
func (w *pgClusterCreate) credentialsOf(m PgMember) pgStep {
	var a *activities.Activities
	return w.onNode(m, activities.StepCredentials, within(2*time.Minute, 5), a.PgCredentials)
}

// bootstrapPrimary: the primary's data directory and configuration; the DCS learns the cluster;
// the primary's agent starts PostgreSQL and leads; the roles.
func (w *pgClusterCreate) bootstrapPrimary() []pgStage {
	var a *activities.Activities
	p, in := w.primary, w.in
	initdb := w.onNode(p, activities.StepInitdb, within(5*time.Minute, 3), a.PgInitdb)
	initdb.then = func(sr activities.StepResult) { w.res.Sysid = sr.Facts["sysid"] }
	return []pgStage{sequence(
		initdb,
		w.onNode(p, activities.StepConfigure, within(2*time.Minute, 5), a.PgConfigure),
		onControl(activities.StepRegisterDCS, within(time.Minute, 5), a.DCSRegister, func() any {
			reg := activities.DCSRegisterInput{DCS: in.DCS, Primary: p.Name, Sysid: w.res.Sysid, SyncMode: in.SyncMode, SyncStrict: in.SyncStrict, RPO: in.RPO, LeaseMs: in.LeaseMs}
			if w.seedParameters {
				reg.Parameters = in.PgParameters
			}
			return reg
		}),
		w.agent(p),
		onControl(activities.StepLeader, within(2*time.Minute, 2), a.WaitLeader, func() any {
			return activities.WaitLeaderInput{DCS: in.DCS, Member: p.Name, APIURL: w.apiURL(p)}
		}),
		onMember(p, activities.StepRoles, within(2*time.Minute, 5), a.PgRoles, func() any {
			return activities.SQLInput{Primary: p.Node, Spec: in.Spec, Roles: in.Roles, Step: activities.StepRoles}
		}),
	)}
}

// cloneReplicas: the replicas in parallel, each cloned from the primary and started as a standby
// by its agent; then the primary waits until every replica streams.
func (w *pgClusterCreate) cloneReplicas() []pgStage {
	var a *activities.Activities
	return []pgStage{
		onEach(w.replicas, "replica %s: %w", w.replica),
		sequence(onMember(w.primary, activities.StepStreaming, within(3*time.Minute, 2), a.PgWaitStreaming, func() any {
			ni := w.nodeInput(w.primary)
			ni.Members = w.replicaNames()
			return ni
		})),
	}
}

// replica is member m's lane as a replica (PgMemberAdd's too): cloned from the primary (w.primary,
// the cluster's w.res.Sysid), then started as a standby by its agent.
func (w *pgClusterCreate) replica(m PgMember) []pgStep {
	var a *activities.Activities
	return []pgStep{
		clone(onMember(m, activities.StepClone, within(30*time.Minute, 5), a.PgClone, func() any {
			ni := w.nodeInput(m)
			ni.ClusterSysid = w.res.Sysid
			return ni
		}), w.primary.Name),
		w.agent(m),
	}
}

// usersAndDatabases: the inventory's users and databases, on the primary.
func (w *pgClusterCreate) usersAndDatabases() []pgStage {
	var a *activities.Activities
	p, in := w.primary, w.in
	return []pgStage{sequence(onMember(p, activities.StepUsers, within(2*time.Minute, 5), a.PgRoles, func() any {
		return activities.SQLInput{Primary: p.Node, Spec: in.Spec, Roles: in.Users, Databases: in.Databases, Step: activities.StepUsers}
	}))}
}

// backups: pgBackRest's configuration everywhere, then the stanza and a first full backup from
// the primary.
func (w *pgClusterCreate) backups() []pgStage {
	var a *activities.Activities
	p := w.primary
	return []pgStage{
		onEach(w.in.Members, "backup config on %s: %w", func(m PgMember) []pgStep {
			return []pgStep{w.backupConfig(m)}
		}),
		sequence(
			w.onNode(p, activities.StepStanza, within(5*time.Minute, 3), a.BackupStanza),
			w.onNode(p, activities.StepFullBackup, within(60*time.Minute, 3), a.BackupFull),
		),
	}
}

// backupConfig is member m's pgBackRest configuration step (PgMemberAdd's too).
func (w *pgClusterCreate) backupConfig(m PgMember) pgStep {
	var a *activities.Activities
	return w.onNode(m, activities.StepBackupConf, within(2*time.Minute, 5), a.BackupConfig)
}

// verification: the cluster as a whole, through the DCS and the primary's agent.
func (w *pgClusterCreate) verification() []pgStage {
	var a *activities.Activities
	p, in := w.primary, w.in
	return []pgStage{sequence(onControl(activities.StepVerify, within(2*time.Minute, 2), a.Verify, func() any {
		return activities.VerifyInput{DCS: in.DCS, Primary: p.Name, APIURL: w.apiURL(p), Replicas: w.replicaNames()}
	}))}
}
