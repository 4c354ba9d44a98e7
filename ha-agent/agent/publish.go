package agent

import (
	"context"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// publish writes my member record (in the background).
func (a *Agent) publish(obs pgctl.Observation, view haagent.ClusterView) {
	now := a.clock.Now()
	if now-a.lastPublished < a.hacfg.LoopInterval()/2 {
		return
	}
	a.lastPublished = now
	a.memberSeq++
	rec := dcs.MemberRecord{
		Role:               string(haagent.RoleReplica),
		State:              string(obs.State),
		Timeline:           obs.Timeline,
		ReceivedLSN:        uint64(obs.ReceivedLSN),
		ReplayedLSN:        uint64(obs.ReplayedLSN),
		Tags:               dcs.MemberTags(a.cfg.Tags),
		APIURL:             a.cfg.API.URL,
		Upstream:           a.upstreamName(obs),
		Seq:                a.memberSeq,
		ReportedAt:         time.Now().UTC(),
		Host:               a.cfg.Postgres.Host,
		Port:               a.cfg.Postgres.Port,
		CheckpointTimeline: obs.CheckpointTimeline,
		Note:               a.note,
	}
	if ps := a.params.current().forPostmaster(obs.PostmasterAt); ps.Applied != 0 || len(ps.Pending) > 0 {
		rec.ConfigRevision, rec.PendingRestart = ps.Applied, ps.Pending
		if ps.Refused != "" && rec.Note == "" {
			rec.Note = ps.Refused
		}
	}
	if obs.State == "" {
		rec.State = "unknown"
	}
	if pgLocal(obs).AcceptingWrites() {
		rec.Role, rec.FlushLSN = string(haagent.RolePrimary), uint64(obs.FlushLSN)
		rec.SynchronousStandbyNames = obs.SyncStandbyNames
		rec.Replication = map[string]dcs.ReplicationReport{}
		for _, r := range obs.Replication {
			rec.Replication[r.ApplicationName] = dcs.ReplicationReport{State: r.State, SyncState: r.SyncState,
				FlushLSN: uint64(r.FlushLSN), ReplayLSN: uint64(r.ReplayLSN)}
		}
	} else if lr := view.Leader; lr != nil && lr.Holder != a.cfg.Name {
		rec.LagBytes = haagent.LagBytes(lr.Optime, max(obs.ReceivedLSN, obs.ReplayedLSN))
	}
	if a.busyState != showPostgresState {
		rec.State = string(a.busyState)
	}
	if a.busyNote != "" {
		rec.Note = a.busyNote
	}
	select {
	case a.publishCh <- rec:
	default:
		select {
		case <-a.publishCh:
		default:
		}
		select {
		case a.publishCh <- rec:
		default:
		}
	}
}

// publisher writes member records in the background, newest wins, so a
// slow etcd never delays the loop.
func (a *Agent) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-a.publishCh:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := a.store.PutMember(pctx, a.cfg.Name, rec)
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Debug("publish member record", "err", err)
			}
		}
	}
}
