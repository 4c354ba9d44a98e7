package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// PITRHAInput is a step on the cluster's HA state: its keys and its agents.
type PITRHAInput struct {
	DCS     DCSInput     `json:"dcs"`
	Members []PITRMember `json:"members"`
	// By names the run in the pause key ("pitr-restore <key>"): only its own pause is lifted.
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Leader is the member the precheck found leading: the pause is refused (and lifted) when
	// another member leads by then, since the plan would stop and restore the wrong one.
	Leader string `json:"leader,omitempty"`
}

// loadKeys opens the cluster's store and reads every key once; closeFn closes the client.
func (a *Activities) loadKeys(ctx context.Context, in DCSInput) (st *dcs.Store, snap *dcs.Snapshot, closeFn func(), err error) {
	if st, closeFn, err = a.dcsStore(in); err != nil {
		return nil, nil, nil, err
	}
	if snap, err = st.Load(ctx); err != nil {
		closeFn()
		return nil, nil, nil, fmt.Errorf("while reading the cluster from etcd: %w", err)
	}
	return st, snap, closeFn, nil
}

// PITRPause enters maintenance mode for the restore and waits until every agent reports it: from
// then on no agent starts, stops, promotes, rewinds or re-creates anything. A pause someone else
// set is refused (another operation is under way).
func (a *Activities) PITRPause(ctx context.Context, in PITRHAInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: "pause-ha"}
	st, snap, closeFn, err := a.loadKeys(ctx, in.DCS)
	if err != nil {
		return res, err
	}
	defer closeFn()
	switch {
	case snap.Pause != nil && snap.Pause.Value.By == in.By:
		res.Notes = append(res.Notes, "paused already by this run")
	case snap.Pause != nil:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the cluster was paused by %q (%s): another operation is under way; nothing was changed",
			snap.Pause.Value.By, snap.Pause.Value.Reason), ErrConflict, nil)
	default:
		if _, err := st.SetPause(ctx, &dcs.PauseRecord{By: in.By, Reason: in.Reason, Since: time.Now().UTC()}); err != nil {
			return res, err
		}
		res.Changed = true
		res.Changes = append(res.Changes, "paused HA (maintenance mode): the agents change nothing")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting []string
		for _, m := range in.Members {
			v, err := clusterView(ctx, []MemberAPI{{Name: m.Name, APIURL: m.APIURL}}, m.Name)
			if err != nil || !v.Paused {
				waiting = append(waiting, m.Name)
			}
		}
		if len(waiting) == 0 {
			res.Notes = append(res.Notes, "every agent reports the pause")
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("agents of %s do not report the pause after 30 s", strings.Join(waiting, ", "))
		}
		heartbeatMsg(ctx, "waiting for the agents of "+strings.Join(waiting, ", ")+" to report the pause")
		time.Sleep(100 * time.Millisecond)
	}
	if in.Leader == "" {
		return res, nil
	}
	if snap, err = st.Load(ctx); err != nil {
		return res, fmt.Errorf("while reading the cluster from etcd: %w", err)
	}
	if snap.Leader == nil || snap.Leader.Value.Holder != in.Leader {
		now := "no leader"
		if snap.Leader != nil {
			now = snap.Leader.Value.Holder + " leads"
		}
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the leader changed since the precheck (%s, not %s): nothing was stopped; start the restore again", now, in.Leader), ErrConflict, nil, res)
	}
	return res, nil
}

// PITRHandOverInput names the member that leads after the restore (or, compensating, the one that
// led before it).
type PITRHandOverInput struct {
	PITRHAInput
	Holder   string `json:"holder"`
	Timeline uint32 `json:"timeline"`
	Optime   string `json:"optime"` // the holder's checkpoint position, X/X
	// IfPaused (rolling back): when this run's pause is gone, change nothing instead of failing.
	IfPaused bool `json:"if_paused,omitempty"`
}

// PITRHandOver writes the leader key naming the holder while the cluster is still paused
// (dcs.Store.HandOverLeader): when HA resumes, that member's agent takes the key by CAS and
// starts its PostgreSQL as the primary, and the members whose data directories are empty clone
// from it. The sync, failover and failsafe keys of the old cluster go with it.
func (a *Activities) PITRHandOver(ctx context.Context, in PITRHandOverInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: "hand-over"}
	st, snap, closeFn, err := a.loadKeys(ctx, in.DCS)
	if err != nil {
		return res, err
	}
	defer closeFn()
	if l := snap.Leader; l != nil && l.Value.Holder == in.Holder && l.Value.Timeline == in.Timeline {
		res.Notes = append(res.Notes, fmt.Sprintf("the leader key names %s on timeline %d already", in.Holder, in.Timeline))
		return res, nil
	}
	if l := snap.Leader; l != nil && l.Value.Holder != in.Holder && in.IfPaused {
		res.Notes = append(res.Notes, fmt.Sprintf("the leader key names %s: left alone", l.Value.Holder))
		return res, nil
	}
	if l := snap.Leader; l != nil && l.Value.Holder != in.Holder {
		// Another member's key (a failover that raced the pause): naming the holder over it could
		// start an older copy of the data as the primary. Leave it to its agents and a person.
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the leader key names %s (timeline %d), not %s: refusing to overwrite it",
			l.Value.Holder, l.Value.Timeline, in.Holder), ErrConflict, nil)
	}
	if snap.Pause == nil || snap.Pause.Value.By != in.By {
		if in.IfPaused {
			res.Notes = append(res.Notes, "the cluster is not paused by this run: its leader key is left alone")
			return res, nil
		}
		return res, temporal.NewNonRetryableApplicationError("the cluster is no longer paused by this run: refusing to rewrite its leader key", ErrConflict, nil)
	}
	optime, err := haagent.ParseLSN(in.Optime)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("optime %q: %v", in.Optime, err), ErrConfig, nil)
	}
	rec := dcs.LeaderRecord{Holder: in.Holder, Term: 1, Timeline: in.Timeline, Optime: uint64(optime), RenewedAt: time.Now().UTC()}
	var expected int64
	if snap.Leader != nil {
		rec.Term, expected = snap.Leader.Value.Term+1, snap.Leader.ModRevision
	}
	if _, err := st.HandOverLeader(ctx, rec, expected); err != nil {
		if errors.Is(err, dcs.ErrNotPaused) {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrConflict, nil)
		}
		return res, err // a concurrent change: the retry reads again
	}
	res.Changed = true
	res.Changes = append(res.Changes, fmt.Sprintf("leader key names %s on timeline %d (term %d); sync, failover and failsafe keys cleared", in.Holder, in.Timeline, rec.Term))
	return res, nil
}

// PITRResume lifts this run's pause; a pause someone else set is left alone.
func (a *Activities) PITRResume(ctx context.Context, in PITRHAInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: "resume-ha"}
	st, snap, closeFn, err := a.loadKeys(ctx, in.DCS)
	if err != nil {
		return res, err
	}
	defer closeFn()
	switch {
	case snap.Pause == nil:
		res.Notes = append(res.Notes, "not paused")
	case snap.Pause.Value.By != in.By:
		res.Notes = append(res.Notes, fmt.Sprintf("paused by %q, not by this run: left paused", snap.Pause.Value.By))
	default:
		if _, err := st.SetPause(ctx, nil); err != nil {
			return res, err
		}
		res.Changed = true
		res.Changes = append(res.Changes, "resumed HA")
	}
	return res, nil
}

// PITRWaitInput waits for the cluster to run again around a leader.
type PITRWaitInput struct {
	PITRHAInput
	Leader   string `json:"leader"`
	Timeline uint32 `json:"timeline"`
	// AnyLeader: any member may lead, on Timeline or a later one (the final check: a failover
	// after the restore is the agents' business, not a failed restore).
	AnyLeader bool          `json:"any_leader,omitempty"`
	Timeout   time.Duration `json:"timeout,omitempty"` // default 15 minutes
	Port      int           `json:"port"`              // PostgreSQL's, for the clone progress on the leader
}

// PITRWaitCluster waits until the leader takes writes on the timeline and every other member
// streams from it on the same timeline (their agents re-create them from the leader with
// pg_basebackup), heartbeating what each member is doing and the bytes cloned so far.
func (a *Activities) PITRWaitCluster(ctx context.Context, in PITRWaitInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: "members"}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	var leaderNode Node
	for _, m := range in.Members {
		if m.Name == in.Leader {
			leaderNode = m.Node
		}
	}
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	for {
		v, err := clusterView(ctx, memberAPIs(in.Members), in.Leader)
		if err == nil {
			leader, tl := in.Leader, in.Timeline
			if in.AnyLeader {
				leader = v.Leader
				if lm, ok := v.Member(leader); ok && lm.Timeline >= in.Timeline {
					tl = lm.Timeline
				}
			}
			var problems []string
			for _, m := range in.Members {
				cm, ok := v.Member(m.Name)
				switch {
				case !ok:
					problems = append(problems, m.Name+" is not in the cluster view")
				case m.Name == leader && (cm.Role != haagent.ClusterRoleLeader || cm.Timeline != tl):
					problems = append(problems, fmt.Sprintf("%s is %s/%s on timeline %d", m.Name, cm.Role, cm.State, cm.Timeline))
				case m.Name != leader && (cm.State != "streaming" || cm.Timeline != tl):
					problems = append(problems, fmt.Sprintf("%s is %s on timeline %d", m.Name, cm.State, cm.Timeline))
				}
			}
			if leader == "" {
				problems = append(problems, "no leader")
			}
			if len(problems) == 0 && isPrimaryNow(apiURLOf(in.Members, leader)) {
				res.Notes = append(res.Notes, fmt.Sprintf("healthy after %s: %s", time.Since(start).Round(100*time.Millisecond), describeCluster(v)))
				return res, nil
			}
			last = strings.Join(problems, "; ")
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the cluster did not come back around %s on timeline %d within %s: %s", in.Leader, in.Timeline, timeout, last)
		}
		msg := last
		if leaderNode.SSHHost != "" && strings.Contains(last, "cloning") {
			out, err := a.psql(ctx, leaderNode, in.Port, "postgres", "SELECT coalesce(sum(backup_streamed), 0) FROM pg_stat_progress_basebackup;")
			if n, perr := strconv.ParseInt(out, 10, 64); err == nil && perr == nil {
				msg += fmt.Sprintf("; %d bytes cloned so far", n)
			}
		}
		heartbeatMsg(ctx, msg)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func apiURLOf(ms []PITRMember, name string) string {
	for _, m := range ms {
		if m.Name == name {
			return strings.TrimRight(m.APIURL, "/")
		}
	}
	return ""
}

func heartbeatMsg(ctx context.Context, msg string) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, msg)
	}
}
