package haagent

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// syncStandbys keeps the sync key and synchronous_standby_names in line
// with the streaming replicas PostgreSQL reports. The executor must keep
// the invariant "every standby in the sync key holds every acknowledged
// commit": when adding, change synchronous_standby_names first and write
// the key only after PostgreSQL reports the standby sync and caught up;
// when removing, write the key first.
func (d *decider) syncStandbys() (Action, string, bool) {
	s := d.v.Sync
	mine := s != nil && s.Leader == d.l.Name
	var current []string
	if mine {
		current = slices.Sorted(slices.Values(s.Standbys))
	}
	if !d.cfg.SynchronousMode {
		if s != nil && len(s.Standbys) > 0 {
			return Action{Kind: ActionSetSyncStandbys, KeepLock: true}, fmt.Sprintf(
				"synchronous_mode is off: clearing the synchronous standbys (%s)", strings.Join(s.Standbys, ", ")), true
		}
		return Action{}, "", false
	}
	want := d.desiredSyncStandbys(current)
	if mine && slices.Equal(want, current) {
		return Action{}, "", false
	}
	was := "none"
	if len(current) > 0 {
		was = strings.Join(current, ", ")
	}
	a := Action{Kind: ActionSetSyncStandbys, Members: want, KeepLock: true}
	switch {
	case len(want) > 0:
		return a, fmt.Sprintf("setting synchronous standbys to %s (was: %s)", strings.Join(want, ", "), was), true
	case d.cfg.SynchronousModeStrict:
		return a, fmt.Sprintf("synchronous_mode_strict: no streaming standby can be synchronous; commits wait until one connects (was: %s)", was), true
	default:
		return a, fmt.Sprintf("no streaming standby can be synchronous; running asynchronously, with no automatic failover until one is (was: %s)", was), true
	}
}

// desiredSyncStandbys prefers the current synchronous standbys (no
// flapping), then those PostgreSQL already reports sync, then the most
// advanced, then by name.
func (d *decider) desiredSyncStandbys(current []string) []string {
	var cands []Member
	for _, name := range d.v.OtherMemberNames(d.l.Name) {
		m := d.v.Members[name]
		if m.State == PGRunning && m.Role == RoleReplica && !m.Tags.NoSync && m.ReplicationState == ReplicationStreaming {
			cands = append(cands, m)
		}
	}
	rank := func(m Member) int {
		switch {
		case slices.Contains(current, m.Name):
			return 0
		case m.SyncState.Synchronous():
			return 1
		}
		return 2
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if ri, rj := rank(cands[i]), rank(cands[j]); ri != rj {
			return ri < rj
		}
		if pi, pj := cands[i].WALPosition(), cands[j].WALPosition(); pi != pj {
			return pi > pj
		}
		return cands[i].Name < cands[j].Name
	})
	var want []string
	for i := 0; i < len(cands) && i < d.cfg.SynchronousNodeCount; i++ {
		want = append(want, cands[i].Name)
	}
	slices.Sort(want)
	return want
}

func (d *decider) describeSync() string {
	s := d.v.Sync
	if s == nil {
		return "no synchronous standby is recorded"
	}
	if len(s.Standbys) == 0 {
		return fmt.Sprintf("%s had no synchronous standby", s.Leader)
	}
	return fmt.Sprintf("synchronous standbys of %s: %s", s.Leader, strings.Join(s.Standbys, ", "))
}
