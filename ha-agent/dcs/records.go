// Package dcs is the HA agent's typed store over etcd v3. Every key of a
// cluster lives under <prefix>/<cluster>/:
//
//	leader        LeaderRecord   CAS on its mod revision; no etcd lease
//	members/<n>   MemberRecord   short etcd lease, for cleanup only
//	initialize    InitializeRecord
//	config        raw JSON (haagent.Config owns the schema)
//	sync          SyncRecord     leader-guarded
//	failover      FailoverRecord
//	pause         PauseRecord    present = paused
//	history       []HistoryEntry leader-guarded
//	failsafe      FailsafeRecord leader-guarded
//
// Values are JSON. This package knows nothing about HA decisions; it only
// makes sure that leadership-dependent writes are transactions guarded by
// the leader key (see Guard).
//
// # Where things live
//
//   - records.go: the key names and the records stored under them (the
//     wire contract other agents and `pigwf ha list` read).
//   - store.go: Store, New, Load (one read of every key) and classify
//     (which key a key is, for Load and Watch).
//   - errors.go: the errors callers test with errors.Is and errors.As.
//   - leader.go: the leader key: acquire, renew and release by CAS, and
//     the Guard that proves leadership.
//   - guarded.go: writes only the leader may make, guarded by the leader key.
//   - unguarded.go: writes anyone may make (the bootstrap race, cluster
//     registration, failover requests, config, pause), each a CAS or a
//     create-only write.
//   - members.go: member keys and the lease that removes vanished members.
//   - handover.go: naming a leader while the cluster is paused (a restore
//     rebuilt its data outside HA), guarded by the pause key and the leader
//     key's revision.
//   - watch.go: Watch and the events it streams.
package dcs

import (
	"encoding/json"
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// Key names under <prefix>/<cluster>/.
const (
	KeyLeader     = "leader"
	KeyMembers    = "members/"
	KeyInitialize = "initialize"
	KeyConfig     = "config"
	KeySync       = "sync"
	KeyFailover   = "failover"
	KeyPause      = "pause"
	KeyHistory    = "history"
	KeyFailsafe   = "failsafe"
)

// LeaderRecord is the value of the leader key.
type LeaderRecord struct {
	Holder   string `json:"holder"`
	Term     int64  `json:"term"`
	Timeline uint32 `json:"timeline"`
	Optime   uint64 `json:"optime"` // holder's flush LSN at this renewal
	// Seq increases with every renewal: each renewal is a change the
	// others can time, and the holder can recognise its own renewal
	// after a request whose response was lost.
	Seq uint64 `json:"seq"`
	// RenewedAt is wall-clock time for humans; no decision uses it.
	RenewedAt time.Time `json:"renewed_at,omitzero"`
}

// MemberTags mirror the member's local tags (the fields of haagent.ClusterTags, in its order,
// so one converts to the other). Older agents ignore the fields they do not know.
type MemberTags struct {
	NoFailover    bool              `json:"nofailover,omitempty"`
	NoSync        bool              `json:"nosync,omitempty"`
	NoLoadBalance bool              `json:"noloadbalance,omitempty"`
	Custom        map[string]string `json:"custom,omitempty"`
}

// MemberRecord is what a member reports about itself every loop.
type MemberRecord struct {
	Role string `json:"role"` // primary | replica
	// State is the PostgreSQL state (running | starting | stopped |
	// crashed) or, while the agent runs a long action on the data
	// directory, that action (cloning | recloning | rewinding |
	// bootstrapping), which no HA decision counts as running.
	State       string     `json:"state"`
	Timeline    uint32     `json:"timeline"`
	ReceivedLSN uint64     `json:"received_lsn,omitempty"`
	ReplayedLSN uint64     `json:"replayed_lsn,omitempty"`
	FlushLSN    uint64     `json:"flush_lsn,omitempty"`
	LagBytes    uint64     `json:"lag_bytes,omitempty"`
	Tags        MemberTags `json:"tags,omitzero"`
	APIURL      string     `json:"api_url"`
	Upstream    string     `json:"upstream,omitempty"`
	Seq         uint64     `json:"seq"` // changes every report, so an unchanged record is a stale one
	ReportedAt  time.Time  `json:"reported_at,omitzero"`
	// Host and Port are where other members connect for replication.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// CheckpointTimeline is pg_control_checkpoint().timeline_id: a new
	// primary's control file shows its timeline only after a checkpoint,
	// and pg_rewind against it is wrong before that.
	CheckpointTimeline uint32 `json:"checkpoint_timeline,omitempty"`
	// Note says what the agent is doing or why it cannot (e.g. "pg_rewind
	// failed: ...; re-cloning"), for humans.
	Note string `json:"note,omitempty"`
	// Replication is the primary's own pg_stat_replication, keyed by
	// application_name (= member name), as of this report. Only the
	// primary's agent fills it; other members answer /sync and /cluster
	// from it (and say so).
	Replication map[string]ReplicationReport `json:"replication,omitempty"`
	// SynchronousStandbyNames is the primary's current setting.
	SynchronousStandbyNames string `json:"synchronous_standby_names,omitempty"`
	// PendingRestart names the settings whose new value waits for a restart, with the value
	// in force and the one the configuration asks for.
	PendingRestart map[string]pgparams.PendingChange `json:"pending_restart,omitempty"`
	// ConfigRevision is the mod revision of the config key whose postgresql.parameters this
	// member has written to its data directory and reloaded (0: none yet).
	ConfigRevision int64 `json:"config_revision,omitempty"`
}

// ReplicationReport is one pg_stat_replication row as the primary saw it.
type ReplicationReport struct {
	State     string `json:"state"`      // streaming | catchup | ...
	SyncState string `json:"sync_state"` // sync | async | potential | quorum
	FlushLSN  uint64 `json:"flush_lsn,omitempty"`
	ReplayLSN uint64 `json:"replay_lsn,omitempty"`
}

// InitializeRecord is the bootstrap race winner and the system identifier.
type InitializeRecord struct {
	ClaimedBy string `json:"claimed_by"`
	Sysid     string `json:"sysid,omitempty"`
}

// SyncRecord names the leader and the standbys holding every commit it acknowledged.
type SyncRecord struct {
	Leader   string   `json:"leader"`
	Standbys []string `json:"standbys"`
}

// FailoverRecord is a manual failover or switchover request.
type FailoverRecord struct {
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	RequestedBy string    `json:"requested_by,omitempty"`
}

// PauseRecord: the key's presence means maintenance mode.
type PauseRecord struct {
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// HistoryEntry is one timeline switch.
type HistoryEntry struct {
	Timeline uint32    `json:"timeline"`
	LSN      uint64    `json:"lsn"`
	Leader   string    `json:"leader"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// FailsafeRecord lists the members allowed to race in failsafe mode.
type FailsafeRecord struct {
	Members []string `json:"members"`
}

// Versioned is a decoded value with its etcd revisions.
type Versioned[T any] struct {
	Value          T
	CreateRevision int64
	ModRevision    int64
	Version        int64
}

// Snapshot is one linearizable read of every key of the cluster.
type Snapshot struct {
	Revision   int64 // etcd revision of the read; watch from Revision+1
	Leader     *Versioned[LeaderRecord]
	Members    map[string]Versioned[MemberRecord]
	Initialize *Versioned[InitializeRecord]
	Config     *Versioned[json.RawMessage]
	Sync       *Versioned[SyncRecord]
	Failover   *Versioned[FailoverRecord]
	Pause      *Versioned[PauseRecord]
	History    *Versioned[[]HistoryEntry]
	Failsafe   *Versioned[FailsafeRecord]
	// Problems lists values that did not decode, each a *KeyError. A malformed leader key
	// is still returned (zero Value, real revisions) so it is judged by
	// staleness and can be replaced by CAS, never silently treated as absent.
	Problems []error
}
