package haagent

import (
	"maps"
	"slices"
	"time"
)

// Role is what a member's PostgreSQL is: primary (read-write) or replica.
type Role string

const (
	RoleUnknown Role = ""
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// PGState is the process state of a member's PostgreSQL.
type PGState string

const (
	PGUnknown  PGState = ""
	PGRunning  PGState = "running"
	PGStarting PGState = "starting" // started, not yet accepting connections (incl. crash recovery)
	PGStopped  PGState = "stopped"  // shut down cleanly
	// PGCrashed means the postmaster died or was killed AND no backend of
	// it is left (none can still commit): the executor must check that
	// before reporting it.
	PGCrashed PGState = "crashed"
)

// SyncState is pg_stat_replication.sync_state as the primary's
// PostgreSQL reports it ("" = not connected to the primary). It is never
// taken from the DCS or the config: a role shown must be the one
// PostgreSQL reports.
type SyncState string

const (
	SyncNone      SyncState = ""
	SyncAsync     SyncState = "async"
	SyncPotential SyncState = "potential"
	SyncSync      SyncState = "sync"
	SyncQuorum    SyncState = "quorum"
)

// Synchronous: the primary waits for this standby's confirmation before
// it acknowledges a commit (sync_state sync, or quorum for ANY n).
func (s SyncState) Synchronous() bool { return s == SyncSync || s == SyncQuorum }

// ReplicationStreaming is pg_stat_replication.state of a standby that
// has caught up and streams WAL as it is written.
const ReplicationStreaming = "streaming"

// Tags are per-member switches set in the member's local configuration.
type Tags struct {
	NoFailover bool `json:"nofailover,omitempty"` // never promote this member automatically
	NoSync     bool `json:"nosync,omitempty"`     // never make it a synchronous standby
}

// Member is one member as this agent sees it: the member's own report in
// the DCS plus what the local clock and the primary's PostgreSQL add.
type Member struct {
	Name     string
	Role     Role
	State    PGState
	Timeline uint32
	// ReceivedLSN/ReplayedLSN are a replica's pg_last_wal_receive_lsn and
	// pg_last_wal_replay_lsn; FlushLSN is a primary's pg_current_wal_flush_lsn.
	ReceivedLSN LSN
	ReplayedLSN LSN
	FlushLSN    LSN
	LagBytes    uint64 // behind the leader, as reported (display only)
	Tags        Tags
	APIURL      string
	Upstream    string // member whose WAL it streams ("" = none)
	// SyncState and ReplicationState (pg_stat_replication.state:
	// "streaming", "catchup") are filled by the primary's agent from its
	// own pg_stat_replication; empty elsewhere.
	SyncState        SyncState
	ReplicationState string
	// ObservedAt is when THIS agent last saw the member's record change,
	// on this agent's monotonic clock. Members rewrite their record every
	// loop (a sequence number changes), so an unchanged record = a stale,
	// possibly frozen report.
	ObservedAt time.Duration
}

// ReportStale: the member's record has not changed for longer than
// member_report_fresh_ms on my clock. Members rewrite it every loop, so
// it is a frozen report, which must not count.
func (m Member) ReportStale(cfg Config, now time.Duration) bool {
	return now-m.ObservedAt > cfg.MemberReportFresh()
}

// WALPosition is how far this member's WAL reaches.
func (m Member) WALPosition() LSN {
	if m.Role == RolePrimary {
		return m.FlushLSN
	}
	return max(m.ReceivedLSN, m.ReplayedLSN)
}

// LeaderRecord is the leader key as observed.
type LeaderRecord struct {
	Holder      string
	ModRevision int64 // etcd mod revision: the CAS token
	Term        int64 // incremented on every acquisition
	Timeline    uint32
	Optime      LSN // holder's flush LSN at its last renewal
	// ObservedAt is when this agent last saw the record change (watch
	// event or load), on this agent's monotonic clock. Staleness is
	// judged from it, never from timestamps written by another host.
	ObservedAt time.Duration
}

// StaleAt is when the record turns stale on this agent's clock: no
// change seen for L(1+ε)+m_p since it was observed (Config.StaleAfter).
func (lr *LeaderRecord) StaleAt(cfg Config) time.Duration { return lr.ObservedAt + cfg.StaleAfter() }

// InitializeRecord is the initialize key: who claimed the bootstrap race,
// and the cluster's system identifier once known (pg_controldata).
type InitializeRecord struct {
	ClaimedBy string
	Sysid     string
}

// SyncRecord is the sync key: the leader and the standbys that hold
// every commit it acknowledged.
type SyncRecord struct {
	Leader   string
	Standbys []string
}

// Has reports whether name is the leader or a standby in the record.
func (s *SyncRecord) Has(name string) bool {
	if s == nil {
		return false
	}
	if s.Leader == name {
		return true
	}
	for _, n := range s.Standbys {
		if n == name {
			return true
		}
	}
	return false
}

// FailoverRequest is the failover key: a manual failover/switchover.
type FailoverRequest struct {
	From        string    // leader to move away from ("" = whoever leads)
	To          string    // candidate ("" = the healthiest)
	ScheduledAt time.Time // wall clock; zero = now. Only for scheduling, never for leadership timing.
	ModRevision int64     // so the clear is a CAS on this exact request
}

// Probe is a live answer from a member's REST API gathered this cycle
// (when the leader is stale or absent), fresher than any DCS report.
type Probe struct {
	Reachable       bool
	InRecovery      bool
	AcceptingWrites bool // a primary that has not fenced itself
	WALPosition     LSN
	Timeline        uint32
	// FailsafeLeader is the leader this member currently confirms in
	// failsafe mode ("" = none).
	FailsafeLeader string
}

// ClusterView is everything the agent observed in the DCS, plus live
// probes, at one loop iteration.
type ClusterView struct {
	Cluster string
	Config  Config
	// Leader is the leader key; nil when absent (released or never taken).
	Leader *LeaderRecord
	// LastLeader is the most recent leader record observed, kept after
	// the key is deleted (nil if never seen): for the last-leader rule,
	// the lag reference and probing the old primary.
	LastLeader *LeaderRecord
	Initialize *InitializeRecord
	Members    map[string]Member
	Sync       *SyncRecord
	Failover   *FailoverRequest
	Paused     bool
	// FailsafeMembers is the failsafe key the leader maintains in
	// failsafe mode: the members allowed to race, and the ones that must
	// all confirm the leader during an etcd outage. nil = key absent.
	FailsafeMembers []string
	Probes          map[string]Probe
	// EverLed: the history key exists, so some member held the lock
	// before. Unlike LastLeader it survives an agent restart; a cluster
	// that was never led may only be started by the member its
	// initialize key names (the one whose data directory was initdb'd).
	EverLed bool
}

// everLed: some member held the lock before (durably, or seen by this agent).
func (v ClusterView) everLed() bool {
	return v.EverLed || v.Leader != nil || v.LastLeader != nil
}

// lastLeader returns the current leader record or, if absent, the last one seen.
func (v ClusterView) lastLeader() *LeaderRecord {
	if v.Leader != nil {
		return v.Leader
	}
	return v.LastLeader
}

// MemberNames lists the registered members and me, sorted.
func (v ClusterView) MemberNames(me string) []string {
	names := slices.Sorted(maps.Keys(v.Members))
	if !slices.Contains(names, me) {
		names = append(names, me)
		slices.Sort(names)
	}
	return names
}

// OtherMemberNames lists the registered members except me, sorted.
func (v ClusterView) OtherMemberNames(me string) []string {
	var names []string
	for _, n := range slices.Sorted(maps.Keys(v.Members)) {
		if n != me {
			names = append(names, n)
		}
	}
	return names
}

// Lease is this agent's proof of leadership in this incarnation.
type Lease struct {
	Revision int64 // mod revision written by the last successful acquire/renew
	// SentAt is when that successful request was SENT (not answered), on
	// this agent's monotonic clock: etcd applied it no earlier.
	SentAt time.Duration
}

// FailsafePromise is this member's promise, given over the REST API,
// not to take the lock while Leader keeps writes without etcd.
type FailsafePromise struct {
	Leader string
	Until  time.Duration // this agent's monotonic clock
}

// Active: the promise (nil = none) still binds at now.
func (p *FailsafePromise) Active(now time.Duration) bool { return p != nil && now < p.Until }

// ForbidsAcquire: member me promised another leader not to take the
// lock, and the promise still binds at now.
func (p *FailsafePromise) ForbidsAcquire(me string, now time.Duration) bool {
	return p.Active(now) && p.Leader != me
}

// Busy names the long-running action the executor runs asynchronously.
type Busy string

const (
	BusyNone      Busy = ""
	BusyAcquiring Busy = "acquire"
	BusyPromoting Busy = "promote"
	BusyRewinding Busy = "pg_rewind"
	BusyCloning   Busy = "clone"
	BusyBootstrap Busy = "bootstrap"
	BusyStarting  Busy = "start"
	BusyStopping  Busy = "stop"
	// BusyRestarting: a planned restart of a replica's PostgreSQL (POST /restart) is stopping it;
	// once stopped, the loop starts it again as a replica.
	BusyRestarting Busy = "restart"
)

// LocalState is this node as the agent sees it right now.
type LocalState struct {
	Name string
	Tags Tags
	// DCSReachable: the last load/renew reached etcd.
	DCSReachable bool

	Postgres PGState
	// InRecovery is pg_is_in_recovery(); while starting, whether it was
	// started as a standby (standby.signal), since a primary that is
	// starting may take writes any moment.
	InRecovery   bool
	DataDirEmpty bool
	Sysid        string // from pg_controldata; "" unknown
	Timeline     uint32
	ReceivedLSN  LSN
	ReplayedLSN  LSN
	FlushLSN     LSN    // when primary
	Upstream     string // member in primary_conninfo ("" = none)
	// WALReceiverStopped: phase one of a promotion is done (the old
	// primary can get no more acknowledgements from us).
	WALReceiverStopped bool
	// Diverged: my WAL goes past the point where the leader's timeline
	// forked off mine (computed from timeline history), so I need pg_rewind.
	Diverged     bool
	RewindFailed bool
	RewindError  string

	Lease *Lease // nil: no confirmed leadership in this incarnation
	Busy  Busy

	// CrashRestarts counts in-place restarts since the current outage
	// began at CrashedAt (monotonic); CrashRecoveryEstimate is the
	// executor's estimate of crash recovery time (0 = unknown).
	CrashRestarts         int
	CrashedAt             time.Duration
	CrashRecoveryEstimate time.Duration
	// PostgresDownAtAgentStart: PostgreSQL was already down (crashed)
	// when this agent process started. PostgreSQL dies with its agent
	// (the postmaster is the agent's child with a parent-death signal), so
	// this is normally an agent restart, not a PostgreSQL fault.
	PostgresDownAtAgentStart bool

	// FailsafeAcks: member → SEND time of the failsafe request it
	// confirmed most recently (holder side).
	FailsafeAcks    map[string]time.Duration
	FailsafePromise *FailsafePromise

	// WallClock is used only to compare with a scheduled switchover time.
	WallClock time.Time
}

// WALPosition is how far my WAL reaches.
func (l LocalState) WALPosition() LSN {
	if l.AcceptingWrites() {
		return l.FlushLSN
	}
	return max(l.ReceivedLSN, l.ReplayedLSN, l.FlushLSN)
}

// ReplayCaughtUp: everything received has been replayed.
func (l LocalState) ReplayCaughtUp() bool { return l.ReplayedLSN >= l.ReceivedLSN }

// AcceptingWrites: my PostgreSQL is a running primary.
func (l LocalState) AcceptingWrites() bool {
	return l.Postgres == PGRunning && !l.InRecovery
}

// MayAcceptWrites: running as a primary, or starting as one (a primary
// that is starting may take writes any moment).
func (l LocalState) MayAcceptWrites() bool {
	return l.AcceptingWrites() || (l.Postgres == PGStarting && !l.InRecovery)
}
