package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// PgClusterCreate builds an HA PostgreSQL cluster, the counterpart of Pigsty's pgsql.yml.
const (
	PgClusterCreateName    = "PgClusterCreate"
	PgClusterCreateRunbook = "pg-cluster-create"
)

// PgMember is one member of the cluster.
type PgMember struct {
	Name string          `json:"name"` // nodename: also the member and application name
	Role string          `json:"role"` // primary | replica | offline
	Node activities.Node `json:"node"`
}

// PgClusterCreateInput is resolved from the inventory by the starter. No secrets: passwords are
// read by activities on the worker (from the inventory file or pigwf's secret store).
type PgClusterCreateInput struct {
	Cluster    string                    `json:"cluster"`
	Members    []PgMember                `json:"members"` // primary first
	Spec       activities.PGSpec         `json:"spec"`
	DCS        activities.DCSInput       `json:"dcs"`
	SyncMode   bool                      `json:"sync_mode"`
	SyncStrict bool                      `json:"sync_strict"`
	RPO        int64                     `json:"rpo"`
	Roles      []activities.RoleSpec     `json:"roles"` // replication, admin and default roles
	Users      []activities.RoleSpec     `json:"users"` // pg_users
	Databases  []activities.DatabaseSpec `json:"databases"`
	APIPort    int                       `json:"api_port"`
	DryRun     bool                      `json:"dry_run,omitempty"`
	// Force: data directories of another system are moved aside (never deleted) once an
	// approver agrees; without it they are refused.
	Force    bool           `json:"force,omitempty"`
	Approval ApprovalPolicy `json:"approval"`
}

// PgClusterCreateResult reports what the run did.
type PgClusterCreateResult struct {
	Cluster string                  `json:"cluster"`
	Sysid   string                  `json:"sysid"`
	Primary string                  `json:"primary"`
	Steps   []activities.StepResult `json:"steps"`
	Changed int                     `json:"changed"`
	Plan    []string                `json:"plan,omitempty"`   // dry run: what would run
	Checks  []string                `json:"checks,omitempty"` // precheck findings
}

// PgClusterCreateFailedType is the error type of a refused or failed run.
const PgClusterCreateFailedType = "PgClusterCreateFailed"

func pgOptions(ctx workflow.Context, id string, timeout time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          id,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 20 * time.Second, MaximumAttempts: attempts,
		},
	})
}

type pgRun struct {
	ctx   workflow.Context
	in    PgClusterCreateInput
	track *tracker
	res   *PgClusterCreateResult
}

// step runs one activity, tracking its progress under (member, name).
func (r *pgRun) step(member, name string, timeout time.Duration, attempts int32, fn any, arg any) (activities.StepResult, error) {
	var sr activities.StepResult
	id := member + "/" + name
	if member == "" {
		id = "control/" + name
	}
	r.track.set(member, name, StateRunning, "")
	err := workflow.ExecuteActivity(pgOptions(r.ctx, id, timeout, attempts), fn, arg).Get(r.ctx, &sr)
	if err != nil {
		r.track.set(member, name, StateFailed, failureMessage(err))
		return sr, fmt.Errorf("%s on %s: %s", name, orControl(member), failureMessage(err))
	}
	sr.Node, sr.Step = orControl(member), name
	state := StateUnchanged
	if sr.Changed {
		state = StateChanged
		r.res.Changed++
	}
	r.track.set(member, name, state, sr.Summary())
	r.res.Steps = append(r.res.Steps, sr)
	return sr, nil
}

func orControl(member string) string {
	if member == "" {
		return "control"
	}
	return member
}

// parallel runs fn for every member and returns the errors in member order.
func (r *pgRun) parallel(members []PgMember, fn func(ctx workflow.Context, m PgMember) error) []error {
	errs := make([]error, len(members))
	done := 0
	for i, m := range members {
		workflow.Go(r.ctx, func(gctx workflow.Context) {
			defer func() { done++ }()
			errs[i] = fn(gctx, m)
		})
	}
	_ = workflow.Await(r.ctx, func() bool { return done == len(members) })
	return errs
}

func (r *pgRun) fail(msg string) error {
	r.track.p.Phase = "failed"
	return temporal.NewNonRetryableApplicationError(msg, PgClusterCreateFailedType, nil, *r.res)
}

// PgClusterCreate: prechecks on every node before any change; then the primary (initdb,
// configuration), the DCS registration, the HA agent on the primary (it starts PostgreSQL and
// takes the leader key), roles, replicas in parallel (clone, agent, streaming), users and
// databases, pgBackRest (stanza, first full backup) and a verification. Every step is idempotent,
// so a second run reports unchanged and a run resumed after any crash finishes the job.
func PgClusterCreate(ctx workflow.Context, in PgClusterCreateInput) (PgClusterCreateResult, error) {
	res := &PgClusterCreateResult{Cluster: in.Cluster}
	if err := setSearchAttributes(ctx, PgClusterCreateRunbook, in.Cluster); err != nil {
		return *res, err
	}
	track, err := newTracker(ctx, PgClusterCreateRunbook, in.Cluster)
	if err != nil {
		return *res, err
	}
	if len(in.Members) == 0 || in.Members[0].Role != "primary" {
		return *res, temporal.NewNonRetryableApplicationError("the input must list the primary first", PgClusterCreateFailedType, nil)
	}
	primary, replicas := in.Members[0], in.Members[1:]
	res.Primary = primary.Name
	r := &pgRun{ctx: ctx, in: in, track: track, res: res}
	gate, err := newApprovalGate(ctx)
	if err != nil {
		return *res, err
	}
	var a *activities.Activities

	// 1. Prechecks: every node and the DCS, in parallel, all problems reported together.
	track.add("", "dcs-status")
	track.set("", "dcs-status", StateRunning, "")
	var dcsState activities.DCSState
	if err := workflow.ExecuteActivity(pgOptions(ctx, "control/dcs-status", time.Minute, 3), a.DCSStatus, in.DCS).Get(ctx, &dcsState); err != nil {
		track.set("", "dcs-status", StateFailed, failureMessage(err))
		return *res, r.fail("precheck failed: " + failureMessage(err))
	}
	var problems []string
	if !dcsState.Reachable {
		problems = append(problems, "etcd: "+dcsState.Unreachable)
		track.set("", "dcs-status", StateFailed, dcsState.Unreachable)
	} else {
		detail := "no keys yet"
		if dcsState.Sysid != "" {
			detail = fmt.Sprintf("cluster registered with system %s, leader %q", dcsState.Sysid, dcsState.Leader)
		}
		track.set("", "dcs-status", StateUnchanged, detail)
	}
	// After a failover the cluster's leader is no longer the inventory's primary (which only
	// names who bootstraps): steps that belong on the primary run on the current leader.
	if workflow.GetVersion(ctx, "pgcc-current-leader", workflow.DefaultVersion, 1) == 1 && dcsState.Leader != "" && dcsState.Leader != primary.Name {
		for i, m := range in.Members {
			if m.Name == dcsState.Leader {
				rest := append(append([]PgMember{}, in.Members[:i]...), in.Members[i+1:]...)
				primary, replicas = m, rest
				res.Primary = m.Name
				break
			}
		}
	}
	// The plan, visible in the progress query and the Web UI before anything runs.
	for _, m := range in.Members {
		track.add(m.Name, activities.StepPrecheck)
	}
	for _, m := range in.Members {
		track.add(m.Name, activities.StepCredentials)
	}
	track.add(primary.Name, activities.StepInitdb)
	track.add(primary.Name, activities.StepConfigure)
	track.add("", activities.StepRegisterDCS)
	track.add(primary.Name, activities.StepAgent)
	track.add("", activities.StepLeader)
	track.add(primary.Name, activities.StepRoles)
	for _, m := range replicas {
		track.add(m.Name, activities.StepClone)
		track.add(m.Name, activities.StepAgent)
	}
	track.add(primary.Name, activities.StepStreaming)
	track.add(primary.Name, activities.StepUsers)
	for _, m := range in.Members {
		track.add(m.Name, activities.StepBackupConf)
	}
	track.add(primary.Name, activities.StepStanza)
	track.add(primary.Name, activities.StepFullBackup)
	track.add("", activities.StepVerify)

	sysids := map[string]string{}
	foreign := map[string]string{} // member -> system identifier that is not this cluster's
	errs := r.parallel(in.Members, func(gctx workflow.Context, m PgMember) error {
		var sr activities.StepResult
		track.set(m.Name, activities.StepPrecheck, StateRunning, "")
		err := workflow.ExecuteActivity(pgOptions(gctx, m.Name+"/precheck", time.Minute, 3), a.PgPrecheck,
			activities.PgNodeInput{Node: m.Node, Spec: in.Spec, Etcd: in.DCS.Endpoints}).Get(gctx, &sr)
		if err != nil {
			track.set(m.Name, activities.StepPrecheck, StateFailed, failureMessage(err))
			return fmt.Errorf("%s: %s", m.Node, failureMessage(err))
		}
		var mine []string
		for _, k := range sortedFactKeys(sr.Facts) {
			if strings.HasPrefix(k, "problem.") {
				mine = append(mine, sr.Facts[k])
			}
		}
		if s := sr.Facts["sysid"]; s != "" {
			sysids[m.Name] = s
			// Before the DCS knows the cluster, only data pigwf created for it (the marker) is ours.
			if dcsState.Sysid == "" && sr.Facts["marker"] != activities.ClusterMarker(in.Cluster, s) {
				foreign[m.Name] = s
				if !in.Force {
					mine = append(mine, fmt.Sprintf("%s holds system %s, which pigwf did not create for %s: move the data directory away if it is not needed, or run with --force to have it moved aside after an approval", in.Spec.DataDir, s, in.Cluster))
				}
			}
			if dcsState.Sysid != "" && s != dcsState.Sysid {
				foreign[m.Name] = s
				if !in.Force {
					mine = append(mine, fmt.Sprintf("%s holds system %s but cluster %s is system %s: move the data directory away if it is not needed, or run with --force to have it moved aside after an approval", in.Spec.DataDir, s, in.Cluster, dcsState.Sysid))
				}
			}
		}
		if len(mine) > 0 {
			track.set(m.Name, activities.StepPrecheck, StateFailed, strings.Join(mine, "; "))
			return fmt.Errorf("%s", strings.Join(mine, "; "))
		}
		track.set(m.Name, activities.StepPrecheck, StateUnchanged, sr.Summary())
		return nil
	})
	for i, err := range errs {
		if err != nil {
			problems = append(problems, in.Members[i].Node.String()+": "+err.Error())
		}
	}
	// A replica with data but no registered cluster, or data different from the primary's, is
	// not this cluster's: refuse rather than guess.
	if dcsState.Sysid == "" {
		for _, m := range replicas {
			if s := sysids[m.Name]; s != "" && s != sysids[primary.Name] && foreign[m.Name] == "" {
				foreign[m.Name] = s
				if !in.Force {
					problems = append(problems, fmt.Sprintf("%s: %s holds system %s, which is not the primary's (%q): move it away if it is not needed, or run with --force to have it moved aside after an approval", m.Node, in.Spec.DataDir, s, sysids[primary.Name]))
				}
			}
		}
	}
	res.Checks = problems
	if len(problems) > 0 {
		return *res, r.fail(fmt.Sprintf("pg-cluster-create %s refused before changing anything:\n  %s", in.Cluster, strings.Join(problems, "\n  ")))
	}
	if in.DryRun {
		for _, s := range track.p.Steps {
			if s.State == StatePending {
				res.Plan = append(res.Plan, orControl(s.Node)+": "+s.Step)
				track.set(s.Node, s.Step, StateSkipped, "dry run")
			}
		}
		track.p.Phase = "done"
		return *res, nil
	}

	node := func(m PgMember) activities.PgNodeInput {
		return activities.PgNodeInput{Node: m.Node, Spec: in.Spec, Primary: primary.Node, Etcd: in.DCS.Endpoints}
	}
	// --force: another system's data directories are moved aside, but only after a person agrees.
	if len(foreign) > 0 {
		var moves []string
		var targets []PgMember
		for _, m := range in.Members {
			if s, ok := foreign[m.Name]; ok {
				moves = append(moves, fmt.Sprintf("%s: %s (system %s)", m.Name, in.Spec.DataDir, s))
				targets = append(targets, m)
			}
		}
		track.add("", "approval")
		plan := fmt.Sprintf("move aside (rename, not delete) the data directories of another system, then build %s: %s", in.Cluster, strings.Join(moves, "; "))
		track.set("", "approval", StateRunning, plan)
		st, err := gate.await(ctx, track, plan, in.Approval)
		if err != nil {
			return *res, err
		}
		if !st.Approved() {
			track.set("", "approval", StateFailed, st.Summary())
			return *res, r.fail(fmt.Sprintf("pg-cluster-create %s: forcing was %s: nothing was changed", in.Cluster, st.Summary()))
		}
		track.set("", "approval", StateUnchanged, st.Summary())
		for _, m := range targets {
			track.add(m.Name, "move-aside")
			ni := node(m)
			ni.ClusterSysid = foreign[m.Name]
			if _, err := r.step(m.Name, "move-aside", 2*time.Minute, 3, a.PgMoveAside, ni); err != nil {
				return *res, r.fail(err.Error())
			}
		}
	}
	// 2. Credentials on every node.
	for i, err := range r.parallel(in.Members, func(gctx workflow.Context, m PgMember) error {
		rr := *r
		rr.ctx = gctx
		_, err := rr.step(m.Name, activities.StepCredentials, 2*time.Minute, 5, a.PgCredentials, node(m))
		return err
	}) {
		if err != nil {
			return *res, r.fail(fmt.Sprintf("credentials on %s: %v", in.Members[i].Name, err))
		}
	}
	// 3. The primary's data directory and configuration.
	sr, err := r.step(primary.Name, activities.StepInitdb, 5*time.Minute, 3, a.PgInitdb, node(primary))
	if err != nil {
		return *res, r.fail(err.Error())
	}
	res.Sysid = sr.Facts["sysid"]
	if _, err := r.step(primary.Name, activities.StepConfigure, 2*time.Minute, 5, a.PgConfigure, node(primary)); err != nil {
		return *res, r.fail(err.Error())
	}
	// 4. The DCS learns the cluster; the primary's agent starts PostgreSQL and leads.
	if _, err := r.step("", activities.StepRegisterDCS, time.Minute, 5, a.DCSRegister, activities.DCSRegisterInput{
		DCS: in.DCS, Primary: primary.Name, Sysid: res.Sysid, SyncMode: in.SyncMode, SyncStrict: in.SyncStrict, RPO: in.RPO,
	}); err != nil {
		return *res, r.fail(err.Error())
	}
	agent := func(m PgMember) activities.AgentInput {
		return activities.AgentInput{Node: m.Node, Member: m.Name, Spec: in.Spec, DCS: in.DCS, APIPort: in.APIPort, NoFailover: m.Role == "offline"}
	}
	apiURL := func(m PgMember) string { return fmt.Sprintf("http://%s:%d", m.Node.SSHHost, in.APIPort) }
	if _, err := r.step(primary.Name, activities.StepAgent, 5*time.Minute, 5, a.HAAgent, agent(primary)); err != nil {
		return *res, r.fail(err.Error())
	}
	if _, err := r.step("", activities.StepLeader, 2*time.Minute, 2, a.WaitLeader, activities.WaitLeaderInput{DCS: in.DCS, Member: primary.Name, APIURL: apiURL(primary)}); err != nil {
		return *res, r.fail(err.Error())
	}
	if _, err := r.step(primary.Name, activities.StepRoles, 2*time.Minute, 5, a.PgRoles, activities.SQLInput{Primary: primary.Node, Spec: in.Spec, Roles: in.Roles, Step: activities.StepRoles}); err != nil {
		return *res, r.fail(err.Error())
	}
	// 5. Replicas in parallel: clone, then the agent starts each one as a standby.
	for i, err := range r.parallel(replicas, func(gctx workflow.Context, m PgMember) error {
		rr := *r
		rr.ctx = gctx
		ni := node(m)
		ni.ClusterSysid = res.Sysid
		if _, err := rr.step(m.Name, activities.StepClone, 30*time.Minute, 5, a.PgClone, ni); err != nil {
			return err
		}
		_, err := rr.step(m.Name, activities.StepAgent, 5*time.Minute, 5, a.HAAgent, agent(m))
		return err
	}) {
		if err != nil {
			return *res, r.fail(fmt.Sprintf("replica %s: %v", replicas[i].Name, err))
		}
	}
	var names []string
	for _, m := range replicas {
		names = append(names, m.Name)
	}
	streamIn := node(primary)
	streamIn.Members = names
	if _, err := r.step(primary.Name, activities.StepStreaming, 3*time.Minute, 2, a.PgWaitStreaming, streamIn); err != nil {
		return *res, r.fail(err.Error())
	}
	// 6. Users and databases.
	if _, err := r.step(primary.Name, activities.StepUsers, 2*time.Minute, 5, a.PgRoles, activities.SQLInput{
		Primary: primary.Node, Spec: in.Spec, Roles: in.Users, Databases: in.Databases, Step: activities.StepUsers}); err != nil {
		return *res, r.fail(err.Error())
	}
	// 7. Backups: configuration everywhere, the stanza and a first full backup from the primary.
	for i, err := range r.parallel(in.Members, func(gctx workflow.Context, m PgMember) error {
		rr := *r
		rr.ctx = gctx
		_, err := rr.step(m.Name, activities.StepBackupConf, 2*time.Minute, 5, a.BackupConfig, node(m))
		return err
	}) {
		if err != nil {
			return *res, r.fail(fmt.Sprintf("backup config on %s: %v", in.Members[i].Name, err))
		}
	}
	if _, err := r.step(primary.Name, activities.StepStanza, 5*time.Minute, 3, a.BackupStanza, node(primary)); err != nil {
		return *res, r.fail(err.Error())
	}
	if _, err := r.step(primary.Name, activities.StepFullBackup, 60*time.Minute, 3, a.BackupFull, node(primary)); err != nil {
		return *res, r.fail(err.Error())
	}
	// 8. Verification.
	if _, err := r.step("", activities.StepVerify, 2*time.Minute, 2, a.Verify, activities.VerifyInput{
		DCS: in.DCS, Primary: primary.Name, APIURL: apiURL(primary), Replicas: names}); err != nil {
		return *res, r.fail(err.Error())
	}
	track.p.Phase = "done"
	return *res, nil
}

func sortedFactKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
