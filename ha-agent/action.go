package haagent

import (
	"fmt"
	"strings"
)

// ActionKind enumerates everything the HA loop can decide to do.
type ActionKind int

const (
	ActionNone ActionKind = iota
	// ActionClaimInitialize: create the initialize key (if absent) naming me, to win the bootstrap race.
	ActionClaimInitialize
	// ActionBootstrap: initdb and start as a primary (I won the initialize race).
	ActionBootstrap
	// ActionCloneFromLeader: pg_basebackup from Leader into the empty data dir.
	ActionCloneFromLeader
	// ActionWriteInitialize: holder writes Sysid into the initialize key (leader-guarded).
	ActionWriteInitialize
	// ActionRefuseToJoin: data dir belongs to another cluster; touch nothing.
	ActionRefuseToJoin
	// ActionAcquireLeader: CAS the leader key at ExpectedRevision (0 = must be absent).
	ActionAcquireLeader
	// ActionStopWALReceiver: promotion phase one (clear primary_conninfo and reload).
	ActionStopWALReceiver
	// ActionPromote: promotion phase two (pg_ctl promote), after replay caught up.
	ActionPromote
	// ActionRenewLeader: CAS-renew the leader key; nothing else to do.
	ActionRenewLeader
	// ActionFenceWrites: make PostgreSQL unable to acknowledge writes now.
	ActionFenceWrites
	// ActionDemote: stop as primary and restart as a replica of Leader (Clean = fast shutdown for a switchover).
	ActionDemote
	// ActionReleaseLeader: delete the leader key (CAS); PostgreSQL is not accepting writes.
	ActionReleaseLeader
	// ActionRestartPostgres: start PostgreSQL (as primary if AsPrimary, else a replica of Leader or a standby without upstream).
	ActionRestartPostgres
	// ActionFollow: run as a replica streaming from Leader (reconfigure or start).
	ActionFollow
	// ActionRewind: pg_rewind from Leader.
	ActionRewind
	// ActionReclone: wipe the data dir and clone from Leader.
	ActionReclone
	// ActionSetSyncStandbys: holder sets synchronous_standby_names and the sync key to SyncStandbys.
	ActionSetSyncStandbys
	// ActionSetFailsafeMembers: holder writes the failsafe key (leader-guarded).
	ActionSetFailsafeMembers
	// ActionClearFailoverRequest: delete the failover key (CAS on its revision, leader-guarded).
	ActionClearFailoverRequest
)

var actionNames = [...]string{
	ActionNone:                 "none",
	ActionClaimInitialize:      "claim-initialize",
	ActionBootstrap:            "bootstrap",
	ActionCloneFromLeader:      "clone-from-leader",
	ActionWriteInitialize:      "write-initialize",
	ActionRefuseToJoin:         "refuse-to-join",
	ActionAcquireLeader:        "acquire-leader",
	ActionStopWALReceiver:      "stop-wal-receiver",
	ActionPromote:              "promote",
	ActionRenewLeader:          "renew-leader",
	ActionFenceWrites:          "fence-writes",
	ActionDemote:               "demote",
	ActionReleaseLeader:        "release-leader",
	ActionRestartPostgres:      "restart-postgres",
	ActionFollow:               "follow",
	ActionRewind:               "rewind",
	ActionReclone:              "reclone",
	ActionSetSyncStandbys:      "set-sync-standbys",
	ActionSetFailsafeMembers:   "set-failsafe-members",
	ActionClearFailoverRequest: "clear-failover-request",
}

func (k ActionKind) String() string {
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Action is what Decide wants done this iteration. Only the fields that
// matter for Kind are set, so tests can compare whole values.
type Action struct {
	Kind ActionKind
	// KeepLock: the holder renews the leader key before doing Kind.
	KeepLock bool
	// Leader: member to follow, clone or rewind from; for Demote, who takes over.
	Leader string
	// ExpectedRevision: leader key mod revision for Acquire/Release CAS (0 = absent).
	ExpectedRevision int64
	// Term: the term to write when acquiring.
	Term        int64
	AsPrimary   bool     // RestartPostgres
	Clean       bool     // Demote: clean (fast) shutdown for a switchover
	Sysid       string   // WriteInitialize
	Members     []string // SetSyncStandbys / SetFailsafeMembers
	FailoverRev int64    // ClearFailoverRequest
}

func (a Action) String() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	if a.Leader != "" {
		fmt.Fprintf(&b, " leader=%s", a.Leader)
	}
	if a.Kind == ActionAcquireLeader || a.Kind == ActionReleaseLeader {
		fmt.Fprintf(&b, " rev=%d", a.ExpectedRevision)
	}
	if a.Term != 0 {
		fmt.Fprintf(&b, " term=%d", a.Term)
	}
	if a.AsPrimary {
		b.WriteString(" as-primary")
	}
	if a.Clean {
		b.WriteString(" clean")
	}
	if a.Sysid != "" {
		fmt.Fprintf(&b, " sysid=%s", a.Sysid)
	}
	if a.Kind == ActionSetSyncStandbys || a.Kind == ActionSetFailsafeMembers {
		fmt.Fprintf(&b, " members=[%s]", strings.Join(a.Members, ","))
	}
	if a.KeepLock {
		b.WriteString(" (keep lock)")
	}
	return b.String()
}
