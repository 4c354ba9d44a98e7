package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// MemberAPI is a member's name and agent URL.
type MemberAPI struct {
	Name   string `json:"name"`
	APIURL string `json:"api_url"`
}

// SwitchoverCheckInput asks whether a switchover may go ahead.
type SwitchoverCheckInput struct {
	DCS         DCSInput    `json:"dcs"`
	Members     []MemberAPI `json:"members"`
	Candidate   string      `json:"candidate,omitempty"` // "" lets pigwf choose
	MaxLagBytes int64       `json:"max_lag_bytes"`
}

// SwitchoverPlan is what the switchover will do.
type SwitchoverPlan struct {
	Leader    string `json:"leader"`
	Candidate string `json:"candidate"`
	Why       string `json:"why"` // why this candidate
	SyncMode  bool   `json:"sync_mode"`
	View      string `json:"view"` // the members as the leader's PostgreSQL reports them
}

// SwitchoverPrecheck refuses, with every reason, a switchover that could lose data or fail:
// no healthy leader, maintenance mode, a candidate that is not streaming, lags too much, is
// tagged nofailover, or (synchronous mode) is not a synchronous standby.
func (a *Activities) SwitchoverPrecheck(ctx context.Context, in SwitchoverCheckInput) (SwitchoverPlan, error) {
	state, err := a.DCSStatus(ctx, in.DCS)
	if err != nil {
		return SwitchoverPlan{}, err
	}
	if !state.Reachable {
		return SwitchoverPlan{}, fmt.Errorf("etcd unreachable: %s", state.Unreachable)
	}
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return SwitchoverPlan{}, err
	}
	v, err := clusterView(ctx, client, in.Members, state.Leader)
	if err != nil {
		return SwitchoverPlan{}, err
	}
	plan := SwitchoverPlan{Leader: v.Leader, SyncMode: strings.TrimSpace(v.SynchronousStandbyNames) != "", View: describeCluster(v)}
	var problems []string
	if v.Leader == "" {
		problems = append(problems, "the cluster has no leader")
	}
	if v.Paused {
		problems = append(problems, "the cluster is in maintenance mode: `pigwf ha resume` first")
	}
	type cand struct {
		m   haagent.ClusterMember
		lag uint64
	}
	var ok []cand
	var why []string
	for _, m := range v.Members {
		if m.Name == v.Leader {
			continue
		}
		if in.Candidate != "" && m.Name != in.Candidate {
			continue
		}
		lag := uint64(1 << 62)
		if m.LagBytes != nil {
			lag = *m.LagBytes
		}
		switch {
		case m.State != "streaming":
			why = append(why, fmt.Sprintf("%s is %s, not streaming", m.Name, m.State))
		case m.Tags.NoFailover:
			why = append(why, m.Name+" is tagged nofailover")
		case in.MaxLagBytes > 0 && lag > uint64(in.MaxLagBytes):
			why = append(why, fmt.Sprintf("%s lags %d bytes (limit %d)", m.Name, lag, in.MaxLagBytes))
		case plan.SyncMode && m.Role != haagent.ClusterRoleSyncStandby:
			why = append(why, m.Name+" is not a synchronous standby (pg_stat_replication on the leader)")
		default:
			ok = append(ok, cand{m, lag})
		}
	}
	if in.Candidate != "" && len(ok) == 0 && len(why) == 0 {
		why = append(why, in.Candidate+" is not a member of the cluster (or is the leader)")
	}
	if len(ok) == 0 {
		problems = append(problems, "no member can take over: "+strings.Join(why, "; "))
	} else {
		sort.SliceStable(ok, func(i, j int) bool { return ok[i].lag < ok[j].lag })
		plan.Candidate = ok[0].m.Name
		plan.Why = fmt.Sprintf("%s/%s, lag %d bytes", string(ok[0].m.Role), ok[0].m.State, ok[0].lag)
	}
	if len(problems) > 0 {
		return plan, temporal.NewNonRetryableApplicationError("switchover refused: "+strings.Join(problems, "; "), ErrConflict, nil, plan)
	}
	return plan, nil
}

// SwitchoverExecInput performs the switch.
type SwitchoverExecInput struct {
	DCS       DCSInput    `json:"dcs"`
	Members   []MemberAPI `json:"members"`
	From, To  string
	Reason    string `json:"reason"`
	Requester string `json:"requester"`
}

// SwitchoverReport says how it went.
type SwitchoverReport struct {
	NewLeader string `json:"new_leader"`
	// WriteDowntimeMs is the gap between the last moment the old leader's agent answered
	// /primary 200 and the first moment the new leader's did (what a load balancer sees),
	// sampled every 10 ms by this activity.
	WriteDowntimeMs int64  `json:"write_downtime_ms"`
	OldStreamingMs  int64  `json:"old_primary_streaming_ms"` // from the request to the old primary streaming again
	Detail          string `json:"detail"`
}

// SwitchoverExecute writes the failover request the agents act on (the old leader demotes
// cleanly, the candidate promotes), then waits for the new leader to take writes and the old one
// to stream from it. Idempotent: after a crash it finds the request or the finished switch.
func (a *Activities) SwitchoverExecute(ctx context.Context, in SwitchoverExecInput) (SwitchoverReport, error) {
	rep := SwitchoverReport{}
	st, closeFn, err := a.dcsStore(in.DCS)
	if err != nil {
		return rep, err
	}
	defer closeFn()
	// client waits for answers about the cluster; sample is the 10 ms sampler's, which must not
	// stall on a member that does not answer.
	client, err := a.agentClient(time.Second)
	if err != nil {
		return rep, err
	}
	sample, err := a.agentClient(200 * time.Millisecond)
	if err != nil {
		return rep, err
	}
	urls := map[string]string{}
	for _, m := range in.Members {
		urls[m.Name] = strings.TrimRight(m.APIURL, "/")
	}
	snap, err := st.Load(ctx)
	if err != nil {
		return rep, fmt.Errorf("while reading the cluster from etcd: %w", err)
	}
	already := snap.Leader != nil && snap.Leader.Value.Holder == in.To

	// Sample both agents' /primary every 10 ms while the switch happens.
	var mu sync.Mutex
	var lastOld, firstNew time.Time
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probeWG sync.WaitGroup
	probe := func(url string, old bool) {
		defer probeWG.Done()
		for probeCtx.Err() == nil {
			t := time.Now()
			if isPrimaryNow(probeCtx, sample, url) {
				mu.Lock()
				if old {
					lastOld = t
				} else if firstNew.IsZero() {
					firstNew = t
				}
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !already {
		probeWG.Add(2)
		go probe(urls[in.From], true)
		go probe(urls[in.To], false)
		time.Sleep(50 * time.Millisecond) // a baseline sample of the old leader
		rec := dcs.FailoverRecord{From: in.From, To: in.To, RequestedBy: in.Requester}
		if _, err := st.RequestFailover(ctx, rec); err != nil && !errors.Is(err, dcs.ErrExists) {
			stopProbe()
			probeWG.Wait()
			return rep, fmt.Errorf("while requesting the switchover in etcd: %w", err)
		}
	}
	requested := time.Now()
	last := ""
	for {
		snap, err := st.Load(ctx)
		leader := ""
		if err == nil && snap.Leader != nil {
			leader = snap.Leader.Value.Holder
		}
		if leader == in.To && isPrimaryNow(ctx, client, urls[in.To]) {
			break
		}
		last = fmt.Sprintf("leader %q", leader)
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "waiting for "+in.To+" to lead: "+last)
		}
		if time.Since(requested) > 60*time.Second {
			stopProbe()
			probeWG.Wait()
			return rep, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s did not take over within 60 s (%s); the agents' logs say why", in.To, last), ErrConflict, nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopProbe()
	probeWG.Wait()
	rep.NewLeader = in.To
	if !already && !lastOld.IsZero() && !firstNew.IsZero() {
		rep.WriteDowntimeMs = firstNew.Sub(lastOld).Milliseconds()
	}
	// The old primary must come back as a streaming replica of the new one.
	for {
		v, err := clusterView(ctx, client, in.Members, in.To)
		if err == nil {
			for _, m := range v.Members {
				if m.Name == in.From && m.State == "streaming" {
					rep.OldStreamingMs = time.Since(requested).Milliseconds()
					rep.Detail = describeCluster(v)
					return rep, nil
				}
			}
			last = describeCluster(v)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "waiting for "+in.From+" to stream: "+last)
		}
		if time.Since(requested) > 120*time.Second {
			return rep, fmt.Errorf("%s leads, but %s is not streaming from it after 120 s (%s)", in.To, in.From, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
