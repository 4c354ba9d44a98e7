package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// handleCluster: when this member is the leader, sync roles and streaming
// states come from its own pg_stat_replication read during the request;
// any other member answers from what the leader last published in the DCS
// and says so in sync_source.
func (a *Agent) handleCluster(w http.ResponseWriter, r *http.Request) {
	out, err := a.clusterStatus(r.Context(), a.snapshot(), a.clock.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

// clusterStatus is GET /cluster's answer from snapshot s at now.
func (a *Agent) clusterStatus(ctx context.Context, s snapshot, now time.Duration) (haagent.ClusterStatus, error) {
	out := haagent.ClusterStatus{Cluster: a.cfg.Cluster, Scope: a.cfg.Cluster, Paused: s.view.Paused, Pause: s.view.Paused}
	if f := s.view.Failover; f != nil && !f.ScheduledAt.IsZero() {
		out.ScheduledSwitchover = &haagent.ScheduledSwitchover{At: f.ScheduledAt.UTC(), From: f.From, To: f.To}
	}
	var rows map[string]dcs.ReplicationReport
	var leaderFlush haagent.LSN
	if s.view.Leader != nil {
		out.Leader, out.Timeline = s.view.Leader.Holder, s.view.Leader.Timeline
	}
	switch {
	case a.isPrimary(s, now):
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		live, ssn, flush, err := a.pg.LiveReplication(lctx)
		cancel()
		if err != nil {
			return haagent.ClusterStatus{}, fmt.Errorf("read pg_stat_replication: %w", err)
		}
		rows = map[string]dcs.ReplicationReport{}
		for _, row := range live {
			rows[row.ApplicationName] = dcs.ReplicationReport{State: row.State, SyncState: row.SyncState,
				FlushLSN: uint64(row.FlushLSN), ReplayLSN: uint64(row.ReplayLSN)}
		}
		out.SynchronousStandbyNames, leaderFlush = ssn, flush
		out.Timeline = s.obs.Timeline
		out.SyncSource = fmt.Sprintf("live: pg_stat_replication on %s, read during this request", a.cfg.Name)
	case out.Leader != "":
		lm, ok := s.members[out.Leader]
		if !ok {
			out.SyncSource = fmt.Sprintf("none: leader %s has no member record", out.Leader)
			break
		}
		rows, leaderFlush = lm.rec.Replication, haagent.LSN(lm.rec.FlushLSN)
		out.SynchronousStandbyNames = lm.rec.SynchronousStandbyNames
		out.SyncSource = fmt.Sprintf("dcs: pg_stat_replication as leader %s published it %s ago; ask the leader's /cluster for a live answer",
			out.Leader, (now - lm.observedAt).Round(time.Millisecond))
	default:
		out.SyncSource = "none: there is no leader"
	}
	for _, name := range s.view.MemberNames(a.cfg.Name) {
		e := s.members[name]
		// The member's own report of its lag behind the leader's last recorded position; known
		// only when it reported a WAL position.
		lag, known := e.rec.LagBytes, e.rec.ReceivedLSN != 0 || e.rec.ReplayedLSN != 0
		m := haagent.ClusterMember{Name: name, Host: e.rec.Host, Port: e.rec.Port, Role: haagent.ClusterRoleReplica, State: e.rec.State,
			Timeline: e.rec.Timeline, APIURL: e.rec.APIURL, Tags: haagent.ClusterTags(e.rec.Tags), Note: e.rec.Note,
			PendingRestartReason: e.rec.PendingRestart, ConfigRevision: e.rec.ConfigRevision}
		if name == a.cfg.Name {
			m.Host, m.Port, m.APIURL = a.cfg.Postgres.Host, a.cfg.Postgres.Port, a.cfg.API.URL
			m.Timeline, m.State = s.obs.Timeline, string(s.obs.State)
			m.Tags = haagent.ClusterTags(a.cfg.Tags)
			m.PendingRestartReason, m.ConfigRevision = s.params.Pending, s.params.Applied
		}
		m.PendingRestart = len(m.PendingRestartReason) > 0
		if !m.PendingRestart {
			m.PendingRestartReason = nil
		}
		if name == out.Leader {
			m.Role, lag = haagent.ClusterRoleLeader, 0
		} else if row, ok := rows[name]; ok {
			m.State = row.State
			if haagent.SyncState(row.SyncState).Synchronous() {
				m.Role = haagent.ClusterRoleSyncStandby
			}
			lag, known = haagent.LagBytes(leaderFlush, haagent.LSN(row.ReplayLSN)), true
		}
		m.LagBytes = &lag
		if name != out.Leader {
			m.Lag = &haagent.Lag{Bytes: lag, Known: known}
			if !known {
				m.Lag.Bytes = 0
			}
		}
		out.Members = append(out.Members, m)
	}
	return out, nil
}
