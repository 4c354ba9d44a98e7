package haagent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// ClusterStatus is the answer of an agent's GET /cluster: every member with
// the role and streaming state the leader's pg_stat_replication reports.
// The agent renders it and pigwf parses it (`pigwf ha list`), so this type
// and its JSON field names are the one contract between them.
//
// It is also Patroni's /cluster shape (scope, pause, scheduled_switchover, members with role,
// state, lag and tags), so Patroni's tools read it; pigwf's own fields stay beside them.
type ClusterStatus struct {
	Cluster  string `json:"cluster"`
	Scope    string `json:"scope"` // Patroni's name for the cluster: the same value
	Paused   bool   `json:"paused"`
	Pause    bool   `json:"pause,omitempty"` // Patroni's name: present only while paused
	Leader   string `json:"leader"`          // "" = no leader key
	Timeline uint32 `json:"timeline"`
	// SynchronousStandbyNames is the leader's synchronous_standby_names.
	SynchronousStandbyNames string `json:"synchronous_standby_names"`
	// SyncSource says where roles and states come from: "live: ..." (the
	// leader's pg_stat_replication read during the request), "dcs: ..."
	// (as the leader last published it) or "none: ...".
	SyncSource string          `json:"sync_source"`
	Members    []ClusterMember `json:"members"`
	// ScheduledSwitchover is a switchover request waiting for its time (Patroni's shape).
	ScheduledSwitchover *ScheduledSwitchover `json:"scheduled_switchover,omitempty"`
}

// ScheduledSwitchover is the failover key of a switchover scheduled for later.
type ScheduledSwitchover struct {
	At   time.Time `json:"at"`
	From string    `json:"from,omitempty"`
	To   string    `json:"to,omitempty"`
}

// ClusterRole is a member's role in ClusterStatus.
type ClusterRole string

const (
	ClusterRoleLeader      ClusterRole = "leader"
	ClusterRoleSyncStandby ClusterRole = "sync_standby" // the leader's pg_stat_replication says sync (or quorum)
	ClusterRoleReplica     ClusterRole = "replica"
)

// ClusterMember is one member in ClusterStatus.
type ClusterMember struct {
	Name string      `json:"name"`
	Host string      `json:"host"`
	Port int         `json:"port"`
	Role ClusterRole `json:"role"`
	// State is pg_stat_replication.state for a standby the leader
	// reports (streaming, catchup), else the member's own: running,
	// starting, stopped, crashed, or a long action (cloning, recloning,
	// rewinding, bootstrapping).
	State    string `json:"state"`
	Timeline uint32 `json:"timeline"`
	// LagBytes is how far the member's replay is behind the leader's flush
	// position (0 for the leader). The agent always sets it; nil means a
	// reader had no agent's answer to take it from.
	LagBytes *uint64 `json:"lag_bytes"`
	// Lag is Patroni's: bytes, or "unknown" when the member reports no WAL position; absent
	// on the leader.
	Lag    *Lag        `json:"lag,omitempty"`
	APIURL string      `json:"api_url"`
	Tags   ClusterTags `json:"tags"`
	Note   string      `json:"note,omitempty"` // why the member is not doing what it should, for humans
	// PendingRestart is Patroni's: the member's PostgreSQL runs with a setting its
	// configuration changed that takes effect only at a restart. PendingRestartReason names
	// those settings (Patroni's pending_restart_reason: name → old and new value).
	PendingRestart       bool                              `json:"pending_restart,omitempty"`
	PendingRestartReason map[string]pgparams.PendingChange `json:"pending_restart_reason,omitempty"`
	// ConfigRevision is the revision of the DCS config key whose parameters the member has
	// written and reloaded (0: none yet).
	ConfigRevision int64 `json:"config_revision,omitempty"`
}

// Member returns the named member of the status, ok=false when it is not listed.
func (s ClusterStatus) Member(name string) (ClusterMember, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return ClusterMember{}, false
}

// Lag is a member's replication lag as Patroni's /cluster writes it: a number of bytes, or
// "unknown".
type Lag struct {
	Bytes uint64
	Known bool
}

// KnownLag is a lag of n bytes.
func KnownLag(n uint64) *Lag { return &Lag{Bytes: n, Known: true} }

// MarshalJSON writes the bytes, or "unknown".
func (l Lag) MarshalJSON() ([]byte, error) {
	if !l.Known {
		return []byte(`"unknown"`), nil
	}
	return json.Marshal(l.Bytes)
}

// UnmarshalJSON reads a number of bytes or "unknown".
func (l *Lag) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "unknown" {
			return fmt.Errorf("lag: want bytes or \"unknown\", got %q", s)
		}
		*l = Lag{}
		return nil
	}
	*l = Lag{Known: true}
	if err := json.Unmarshal(b, &l.Bytes); err != nil {
		return fmt.Errorf("lag: want bytes or \"unknown\": %w", err)
	}
	return nil
}
