package agent

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// cache is this agent's copy of the cluster's keys, built from a Load and
// kept current by the watch. Every record carries when THIS agent saw it
// change, on its own monotonic clock: staleness is judged from that,
// never from timestamps another host wrote.
type cache struct {
	revision   int64
	leader     *leaderEntry
	lastLeader *haagent.LeaderRecord
	// leaderGoneAt is when this agent saw the leader key disappear (0: never).
	leaderGoneAt time.Duration
	members      map[string]memberEntry
	initialize   *dcs.InitializeRecord
	sync         *dcs.SyncRecord
	failover     *dcs.Versioned[dcs.FailoverRecord]
	pause        *dcs.PauseRecord
	history      []dcs.HistoryEntry
	hasHistory   bool
	failsafe     *dcs.FailsafeRecord
	configRaw    json.RawMessage
	hasConfig    bool
	configRev    int64 // the config key's mod revision (0: no key)
}

type leaderEntry struct {
	rec        dcs.LeaderRecord
	raw        []byte
	modRev     int64
	observedAt time.Duration
}

type memberEntry struct {
	rec        dcs.MemberRecord
	modRev     int64
	observedAt time.Duration
}

func newCache() *cache { return &cache{members: map[string]memberEntry{}} }

func (c *cache) leaderRecord() *haagent.LeaderRecord {
	if c.leader == nil {
		return nil
	}
	return &haagent.LeaderRecord{
		Holder: c.leader.rec.Holder, ModRevision: c.leader.modRev, Term: c.leader.rec.Term,
		Timeline: c.leader.rec.Timeline, Optime: haagent.LSN(c.leader.rec.Optime), ObservedAt: c.leader.observedAt,
	}
}

// setLeader records the leader key as of modRev; an unchanged revision
// keeps its first observation time.
func (c *cache) setLeader(rec dcs.LeaderRecord, raw []byte, modRev int64, now time.Duration) {
	if c.leader != nil && c.leader.modRev == modRev {
		return
	}
	c.leader = &leaderEntry{rec: rec, raw: bytes.Clone(raw), modRev: modRev, observedAt: now}
	c.lastLeader = c.leaderRecord()
}

// deleteLeader records the leader key's absence as seen at now (its deletion, when a record
// was there).
func (c *cache) deleteLeader(now time.Duration) {
	if c.leader != nil {
		c.lastLeader = c.leaderRecord()
		c.leaderGoneAt = now
	}
	c.leader = nil
}

// applySnapshot replaces everything with a fresh Load.
func (c *cache) applySnapshot(s *dcs.Snapshot, now time.Duration) {
	c.revision = s.Revision
	if s.Leader != nil {
		raw, _ := json.Marshal(s.Leader.Value)
		c.setLeader(s.Leader.Value, raw, s.Leader.ModRevision, now)
	} else {
		c.deleteLeader(now)
	}
	members := map[string]memberEntry{}
	for name, v := range s.Members {
		e := memberEntry{rec: v.Value, modRev: v.ModRevision, observedAt: now}
		if old, ok := c.members[name]; ok && old.modRev == v.ModRevision {
			e.observedAt = old.observedAt
		}
		members[name] = e
	}
	c.members = members
	c.initialize = nil
	if s.Initialize != nil {
		v := s.Initialize.Value
		c.initialize = &v
	}
	c.sync = nil
	if s.Sync != nil {
		v := s.Sync.Value
		c.sync = &v
	}
	c.failover = s.Failover
	c.pause = nil
	if s.Pause != nil {
		v := s.Pause.Value
		c.pause = &v
	}
	c.history, c.hasHistory = nil, s.History != nil
	if s.History != nil {
		c.history = s.History.Value
	}
	c.failsafe = nil
	if s.Failsafe != nil {
		v := s.Failsafe.Value
		c.failsafe = &v
	}
	c.configRaw, c.hasConfig, c.configRev = nil, s.Config != nil, 0
	if s.Config != nil {
		c.configRaw, c.configRev = s.Config.Value, s.Config.ModRevision
	}
}

// applyEvent applies one watch event. It returns an error for a value
// that does not decode (the key is then treated as its last good value,
// except the leader key, which is kept with its new revision so that it
// is judged by staleness).
func (c *cache) applyEvent(e dcs.Event, now time.Duration) error {
	if e.ModRevision > c.revision {
		c.revision = e.ModRevision
	}
	switch e.Kind {
	case dcs.KindLeader:
		if c.leader != nil && e.ModRevision < c.leader.modRev {
			return nil // older than what this agent already wrote or saw
		}
		if e.Deleted {
			c.deleteLeader(now)
			return nil
		}
		rec, err := dcs.DecodeEvent[dcs.LeaderRecord](e)
		c.setLeader(rec, e.Value, e.ModRevision, now)
		return err
	case dcs.KindMember:
		if e.Deleted {
			delete(c.members, e.Member)
			return nil
		}
		rec, err := dcs.DecodeEvent[dcs.MemberRecord](e)
		if err != nil {
			return err
		}
		c.members[e.Member] = memberEntry{rec: rec, modRev: e.ModRevision, observedAt: now}
	case dcs.KindInitialize:
		return decodeInto(e, &c.initialize)
	case dcs.KindSync:
		return decodeInto(e, &c.sync)
	case dcs.KindFailover:
		if e.Deleted {
			c.failover = nil
			return nil
		}
		rec, err := dcs.DecodeEvent[dcs.FailoverRecord](e)
		if err != nil {
			return err
		}
		c.failover = &dcs.Versioned[dcs.FailoverRecord]{Value: rec, ModRevision: e.ModRevision, CreateRevision: e.CreateRevision}
	case dcs.KindPause:
		if e.Deleted {
			c.pause = nil
			return nil
		}
		rec, err := dcs.DecodeEvent[dcs.PauseRecord](e)
		c.pause = &rec // present = paused, even if the value is malformed
		return err
	case dcs.KindHistory:
		if e.Deleted {
			c.history, c.hasHistory = nil, false
			return nil
		}
		rec, err := dcs.DecodeEvent[[]dcs.HistoryEntry](e)
		if err != nil {
			return err
		}
		c.history, c.hasHistory = rec, true
	case dcs.KindFailsafe:
		return decodeInto(e, &c.failsafe)
	case dcs.KindConfig:
		if e.Deleted {
			c.configRaw, c.hasConfig, c.configRev = nil, false, 0
			return nil
		}
		c.configRaw, c.hasConfig, c.configRev = bytes.Clone(e.Value), true, e.ModRevision
	}
	return nil
}

func decodeInto[T any](e dcs.Event, dst **T) error {
	if e.Deleted {
		*dst = nil
		return nil
	}
	v, err := dcs.DecodeEvent[T](e)
	if err != nil {
		return err
	}
	*dst = &v
	return nil
}

// view builds the ClusterView Decide reads (without probes).
func (c *cache) view(cluster string, cfg haagent.Config) haagent.ClusterView {
	v := haagent.ClusterView{
		Cluster:    cluster,
		Config:     cfg,
		Leader:     c.leaderRecord(),
		LastLeader: c.lastLeader,
		Members:    map[string]haagent.Member{},
		Paused:     c.pause != nil,
		EverLed:    c.hasHistory,
	}
	if c.initialize != nil {
		v.Initialize = &haagent.InitializeRecord{ClaimedBy: c.initialize.ClaimedBy, Sysid: c.initialize.Sysid}
	}
	if c.sync != nil {
		v.Sync = &haagent.SyncRecord{Leader: c.sync.Leader, Standbys: slices.Clone(c.sync.Standbys)}
	}
	if c.failover != nil {
		f := c.failover.Value
		v.Failover = &haagent.FailoverRequest{From: f.From, To: f.To, ScheduledAt: f.ScheduledAt, ModRevision: c.failover.ModRevision}
	}
	if c.failsafe != nil {
		v.FailsafeMembers = slices.Sorted(slices.Values(c.failsafe.Members))
	}
	for name, e := range c.members {
		r := e.rec
		v.Members[name] = haagent.Member{
			Name: name, Role: haagent.Role(r.Role), State: haagent.PGState(r.State), Timeline: r.Timeline,
			ReceivedLSN: haagent.LSN(r.ReceivedLSN), ReplayedLSN: haagent.LSN(r.ReplayedLSN), FlushLSN: haagent.LSN(r.FlushLSN),
			LagBytes: r.LagBytes, Tags: haagent.Tags{NoFailover: r.Tags.NoFailover, NoSync: r.Tags.NoSync},
			APIURL: r.APIURL, Upstream: r.Upstream, ObservedAt: e.observedAt,
		}
	}
	return v
}

// forkPoint is the LSN where timeline tl ended according to the leader's
// timeline history (ok=false when the history does not say).
func (c *cache) forkPoint(tl uint32) (haagent.LSN, bool) {
	for _, h := range c.history {
		if h.Timeline == tl {
			return haagent.LSN(h.LSN), true
		}
	}
	return 0, false
}
