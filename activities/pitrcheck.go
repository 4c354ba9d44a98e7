package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/pitr"
)

// PITRSpec is the part of the cluster's layout a point-in-time restore touches. No secrets.
type PITRSpec struct {
	Cluster  string `json:"cluster"`
	DataDir  string `json:"data_dir"`
	BinDir   string `json:"bin_dir"`
	Port     int    `json:"port"`
	RepoPath string `json:"repo_path"`
	// Key names this run's files on the nodes: the data directory kept aside is
	// <data_dir>.before-pitr-<key>, the recovery log /pg/log/pitr-<key>.log.
	Key string `json:"key"`
}

// AsidePath is where a member's data directory is kept during and after the restore.
func (s PITRSpec) AsidePath() string { return AsidePath(s.DataDir, AsidePITR, s.Key) }

func (s PITRSpec) pgEnv() string {
	return PgNodeInput{Spec: PGSpec{Cluster: s.Cluster, DataDir: s.DataDir, BinDir: s.BinDir, Port: s.Port}}.pgEnv()
}

// PITRMember is one member: its name, node and agent.
type PITRMember struct {
	Name   string `json:"name"`
	Node   Node   `json:"node"`
	APIURL string `json:"api_url"`
}

// PITRCheckInput asks whether a point-in-time restore may go ahead, and how.
type PITRCheckInput struct {
	DCS       DCSInput     `json:"dcs"`
	Members   []PITRMember `json:"members"`
	Spec      PITRSpec     `json:"spec"`
	Target    pitr.Target  `json:"target"`
	BackupSet string       `json:"backup_set,omitempty"`
}

// PITRPlan is what the restore will do, shown to approvers, and what later steps need.
type PITRPlan struct {
	Leader         string    `json:"leader"`
	LeaderTimeline uint32    `json:"leader_timeline"`
	LeaderLSN      string    `json:"leader_lsn"`
	LeaderTime     time.Time `json:"leader_time"`
	Sysid          string    `json:"sysid"`
	SyncMode       bool      `json:"sync_mode"`
	// RestoreNode restores and becomes the leader; the others are re-created from it.
	RestoreNode string `json:"restore_node"`
	// Target has its timeline resolved (never pgBackRest's silent "latest" unless asked for).
	Target       pitr.Target `json:"target"`
	TargetText   string      `json:"target_text"`
	Backup       string      `json:"backup"`
	BackupStop   time.Time   `json:"backup_stop"`
	BackupWhy    string      `json:"backup_why"`
	Window       string      `json:"window"`
	RestoreArgs  []string    `json:"restore_args"` // pgbackrest restore options of the target
	NewTimeline  uint32      `json:"new_timeline"`
	Discarded    string      `json:"discarded"`
	Kept         []string    `json:"kept"` // member: path of the data directory kept aside
	RestoreBytes int64       `json:"restore_bytes"`
}

// Describe is the plan in the words an approver reads.
func (p PITRPlan) Describe(cluster string) string {
	return fmt.Sprintf("restore %s to %s from backup %s (stopped %s; %s) on %s, promote it as timeline %d and re-create the other members from it; "+
		"discards %s; keeps the current data directories aside (%s)",
		cluster, p.TargetText, p.Backup, pitr.FormatTime(p.BackupStop), p.BackupWhy, p.RestoreNode, p.NewTimeline,
		p.Discarded, strings.Join(p.Kept, ", "))
}

// ErrPITRRefused is the error type of a restore refused by its precheck: nothing was changed.
const ErrPITRRefused = "PITRRefused"

// PITRPrecheck refuses, with every problem at once, a restore that cannot work, before anything
// changes (it only switches the leader to a new WAL segment, so the archive is current): etcd and every agent answer, the cluster is not paused, the target lies inside a
// recoverable window (after the stop of the backup used), no target lies after the leader's
// present, and every node has room for what it will hold beside its kept data directory. It
// chooses the backup set, the node that restores (the leader: its disk already held the
// cluster) and says which timeline id the promotion will create.
func (a *Activities) PITRPrecheck(ctx context.Context, in PITRCheckInput) (PITRPlan, error) {
	var plan PITRPlan
	var problems []string
	refuse := func() error {
		return temporal.NewNonRetryableApplicationError("pitr-restore refused, nothing was changed: "+strings.Join(problems, "; "), ErrPITRRefused, nil, plan)
	}
	state, err := a.DCSStatus(ctx, in.DCS)
	if err != nil {
		return plan, err
	}
	if !state.Reachable {
		problems = append(problems, "etcd unreachable: "+state.Unreachable)
		return plan, refuse()
	}
	plan.Leader, plan.Sysid = state.Leader, state.Sysid
	if state.Paused {
		problems = append(problems, "the cluster is paused (maintenance mode): another operation is under way; `pigwf ha resume` when it is done")
	}
	if plan.Leader == "" {
		problems = append(problems, "the cluster has no leader: a restore starts from a running cluster")
		return plan, refuse()
	}
	var leader *PITRMember
	for i, m := range in.Members {
		if m.Name == plan.Leader {
			leader = &in.Members[i]
		}
	}
	if leader == nil {
		problems = append(problems, fmt.Sprintf("the leader %s is not in the inventory's members", plan.Leader))
		return plan, refuse()
	}
	plan.RestoreNode = leader.Name
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return plan, err
	}
	if v, err := clusterView(ctx, client, memberAPIs(in.Members), plan.Leader); err != nil {
		problems = append(problems, "agents: "+err.Error())
	} else {
		plan.SyncMode = strings.TrimSpace(v.SynchronousStandbyNames) != ""
		seen := map[string]bool{}
		for _, m := range v.Members {
			seen[m.Name] = true
		}
		for _, m := range in.Members {
			if !seen[m.Name] {
				problems = append(problems, m.Name+"'s agent is not in the cluster view")
			}
		}
	}
	for _, m := range in.Members {
		if !agentAnswers(ctx, client, m.APIURL) {
			problems = append(problems, fmt.Sprintf("%s's agent does not answer at %s", m.Name, m.APIURL))
		}
	}

	// The leader's present: its timeline, WAL position and clock. A leader PostgreSQL that is
	// starting (a crash restart in place, just now) is waited for, not refused.
	if err := waitAcceptingConnections(ctx, a.Remote, leader.Node, in.Spec.Port, leaderReadyWait); err != nil {
		a.logger().Info("the leader does not accept connections yet", "leader", plan.Leader, "err", err)
	}
	out, err := a.psql(ctx, leader.Node, in.Spec.Port, "postgres",
		`SELECT pg_walfile_name(pg_current_wal_lsn()) || ' ' || pg_current_wal_lsn() || ' ' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');`)
	if err != nil {
		problems = append(problems, fmt.Sprintf("the leader %s does not answer SQL: %v", plan.Leader, err))
		return plan, refuse()
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return plan, fmt.Errorf("unexpected answer from %s: %s", plan.Leader, outputDigest(out))
	}
	seg, err := pitr.ParseSegment(f[0])
	if err != nil {
		return plan, fmt.Errorf("the leader's WAL file name %q: %w", f[0], err)
	}
	leaderLSN, err := pitr.ParseLSN(f[1])
	if err != nil {
		return plan, fmt.Errorf("the leader's WAL position %q: %w", f[1], err)
	}
	now, err := time.Parse(time.RFC3339Nano, f[2])
	if err != nil {
		return plan, fmt.Errorf("the leader's clock %q: %w", f[2], err)
	}
	plan.LeaderTimeline, plan.LeaderLSN, plan.LeaderTime = seg.Timeline, leaderLSN.String(), now

	// Where the target lies: along the cluster's own history unless a timeline was given.
	t := in.Target
	if t.Timeline.Kind == pitr.TimelineDefault {
		t = t.WithTimeline(seg.Timeline)
	}
	switch {
	case t.Kind == pitr.KindTime && t.Time.After(now):
		problems = append(problems, fmt.Sprintf("%s is after the leader's present (%s): no WAL can reach it", t, pitr.FormatTime(now)))
	case t.Kind == pitr.KindLSN && t.LSN >= leaderLSN && t.Timeline.ID == seg.Timeline:
		problems = append(problems, fmt.Sprintf("%s is at or after the leader's current WAL position %s: no WAL can reach it", t, leaderLSN))
	}
	// The archive must show the leader's timeline up to now: a WAL switch (changing no data) and
	// a wait for the archiver, as `pigwf restore-point` does.
	if _, err := a.switchAndArchive(ctx, leader.Node, in.Spec.Port); err != nil {
		problems = append(problems, "archiving does not work: "+err.Error())
	}
	bi, err := ReadBackupInfo(ctx, a.Remote, leader.Node, in.Spec.Cluster, in.Spec.RepoPath, t.Timeline.ID)
	if err != nil {
		if errors.Is(err, ErrNoStanza) {
			problems = append(problems, err.Error())
			return plan, refuse()
		}
		return plan, err
	}
	if bi.Note != "" {
		// Without the timeline's history, backups of its ancestors do not count: say so.
		problems = append(problems, bi.Note)
	}
	windows, err := pitr.Windows(bi.Stanza, pitr.WindowOptions{History: bi.History})
	if err != nil {
		return plan, fmt.Errorf("while computing the recoverable windows: %w", err)
	}
	set := in.BackupSet
	why := "given by --backup-set"
	if set == "" && (t.Kind == pitr.KindXID || t.Kind == pitr.KindName) {
		// pgbackrest info cannot place a transaction or a restore point, so the earliest backup of
		// the target's timeline is the one sure to precede it; --backup-set starts from a later one.
		for _, w := range windows {
			if w.Timeline == t.Timeline.ID && len(w.Backups) > 0 {
				set = w.Backups[0].Label
			}
		}
		why = fmt.Sprintf("the earliest on timeline %d: a %s target cannot be placed from pgbackrest info, give --backup-set to start later", t.Timeline.ID, t.Kind)
	} else if set == "" {
		why = "the newest that stopped before the target"
	}
	choice, err := pitr.SelectBackup(t, set, windows)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		plan.Backup, plan.BackupStop, plan.BackupWhy, plan.Window = choice.Backup.Label, choice.Backup.StopTime(), why, choice.Window.String()
		plan.RestoreBytes = choice.Backup.Info.Size
	}
	if db, ok := bi.Stanza.CurrentDB(); ok && plan.Sysid != "" && strconv.FormatUint(db.SystemID, 10) != plan.Sysid {
		problems = append(problems, fmt.Sprintf("the repository's stanza %s holds system %d, not this cluster's %s", in.Spec.Cluster, db.SystemID, plan.Sysid))
	}
	plan.Target, plan.TargetText = t, t.String()
	if opts, err := t.PgBackRest(); err != nil {
		problems = append(problems, err.Error())
	} else {
		plan.RestoreArgs = opts.Args()
	}

	// Every node: room for what it will hold, nothing left from an earlier run with this key.
	var leaderBytes int64
	facts := map[string]map[string]string{}
	for _, m := range in.Members {
		res, err := a.runStep(ctx, m.Node, "pitr-precheck", in.Spec.pgEnv()+sysidScript+withInputs(pitrPrecheckScript,
			shellVar{"repo", in.Spec.RepoPath}, shellVar{"key", in.Spec.Key}), nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", m.Name, err))
			continue
		}
		facts[m.Name] = res.Facts
		if m.Name == plan.Leader {
			leaderBytes, _ = strconv.ParseInt(res.Facts["data_bytes"], 10, 64)
		}
		if tl, err := strconv.ParseUint(res.Facts["archive_max_history"], 16, 32); err == nil && uint32(tl) >= plan.NewTimeline {
			plan.NewTimeline = uint32(tl) + 1
		}
		if p := res.Facts["aside_exists"]; p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s already exists (an earlier run with the same key): move it away first", m.Name, p))
		}
		plan.Kept = append(plan.Kept, m.Name+": "+in.Spec.AsidePath())
	}
	plan.NewTimeline = max(plan.NewTimeline, seg.Timeline+1)
	for _, m := range in.Members {
		fs, ok := facts[m.Name]
		if !ok {
			continue
		}
		avail, _ := strconv.ParseInt(fs["avail"], 10, 64)
		need := leaderBytes // a re-created member holds a copy of the restored leader
		if m.Name == plan.RestoreNode {
			need = plan.RestoreBytes
		}
		need += need / 10
		if avail < need {
			problems = append(problems, fmt.Sprintf("%s: %d MiB free beside %s, needs %d MiB (the current data directory is kept, not deleted)",
				m.Name, avail>>20, in.Spec.DataDir, need>>20))
		}
	}
	plan.Discarded = fmt.Sprintf("every commit after the target up to the leader's WAL position %s on timeline %d at %s",
		leaderLSN, seg.Timeline, pitr.FormatTime(now))
	if t.Kind == pitr.KindLatest {
		plan.Discarded = fmt.Sprintf("only WAL the archive does not hold (the leader is at %s)", leaderLSN)
	}
	if len(problems) > 0 {
		return plan, refuse()
	}
	return plan, nil
}

// memberAPIs are the members' agent URLs.
func memberAPIs(ms []PITRMember) []MemberAPI {
	out := make([]MemberAPI, len(ms))
	for i, m := range ms {
		out[i] = MemberAPI{Name: m.Name, APIURL: m.APIURL}
	}
	return out
}
