package agent

import (
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// memberStatus is GET /patroni and the body of every health check: Patroni's fields (its
// get_postgresql_status and _write_status_response) and pigwf's own beside them (name,
// cluster, leader, last_reason, wal_position, paused).
type memberStatus struct {
	State               string `json:"state"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
	Role                string `json:"role"`
	ServerVersion       int    `json:"server_version,omitempty"`
	// XLog is primaryXLog on a primary, replicaXLog on a standby; absent while PostgreSQL
	// does not answer.
	XLog             any                 `json:"xlog,omitempty"`
	SyncStandby      bool                `json:"sync_standby,omitempty"`
	QuorumStandby    bool                `json:"quorum_standby,omitempty"`
	Timeline         uint32              `json:"timeline"`
	ReplicationState string              `json:"replication_state,omitempty"`
	Replication      []replicationStatus `json:"replication,omitempty"`
	Pause            bool                `json:"pause,omitempty"`
	ClusterUnlocked  bool                `json:"cluster_unlocked,omitempty"`
	FailsafeActive   bool                `json:"failsafe_mode_is_active,omitempty"`
	// DCSLastSeen: seconds since 1970 of the last cycle that reached etcd (0: none yet).
	DCSLastSeen int64          `json:"dcs_last_seen"`
	Tags        map[string]any `json:"tags,omitempty"`
	Sysid       string         `json:"database_system_identifier,omitempty"`
	Patroni     patroniInfo    `json:"patroni"`

	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	Leader  string `json:"leader,omitempty"`
	Reason  string `json:"last_reason"`
	XLogPos string `json:"wal_position"`
	Paused  bool   `json:"paused,omitempty"`
	// PendingRestart and PendingRestartReason are Patroni's: settings waiting for a restart.
	PendingRestart       bool                              `json:"pending_restart,omitempty"`
	PendingRestartReason map[string]pgparams.PendingChange `json:"pending_restart_reason,omitempty"`
	// ConfigRevision is the DCS config revision whose parameters this member applied.
	ConfigRevision int64 `json:"config_revision,omitempty"`
}

type primaryXLog struct {
	Location uint64 `json:"location"` // pg_current_wal_flush_lsn() in bytes
}

type replicaXLog struct {
	ReceivedLocation  uint64  `json:"received_location"`
	ReplayedLocation  uint64  `json:"replayed_location"`
	ReplayedTimestamp *string `json:"replayed_timestamp"` // null: nothing replayed since the start
	Paused            bool    `json:"paused"`
}

// replicationStatus is one pg_stat_replication row as Patroni shows it.
type replicationStatus struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr,omitempty"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
}

type patroniInfo struct {
	Version string `json:"version"` // the agent's own version (agentVersion), not Patroni's
	Scope   string `json:"scope"`
	Name    string `json:"name"`
}

// pyTime writes a time as Python's str(datetime) does, which is what Patroni's JSON carries.
func pyTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000-07:00") }

// status is this member's status from snapshot s at now.
func (a *Agent) status(s snapshot, now time.Duration) memberStatus {
	f := a.factsOf(s, now)
	st := memberStatus{
		State: pgState(s), Role: pgRole(s, a.cfg.Name), Timeline: s.obs.Timeline,
		ReplicationState: f.replicationState, Pause: s.view.Paused, ClusterUnlocked: s.view.Leader == nil,
		FailsafeActive: f.failsafeActive, Sysid: s.obs.Sysid,
		Patroni: patroniInfo{Version: agentVersion(), Scope: a.cfg.Cluster, Name: a.cfg.Name},
		Name:    a.cfg.Name, Cluster: a.cfg.Cluster, Reason: s.reason, XLogPos: s.local.WALPosition().String(), Paused: s.view.Paused,
	}
	if !s.dcsLastSeen.IsZero() {
		st.DCSLastSeen = s.dcsLastSeen.Unix()
	}
	st.ConfigRevision = s.params.Applied
	if len(s.params.Pending) > 0 {
		st.PendingRestart, st.PendingRestartReason = true, s.params.Pending
	}
	if tags := f.tags.Patroni(); len(tags) > 0 {
		st.Tags = tags
	}
	if s.view.Leader != nil {
		st.Leader = s.view.Leader.Holder
	}
	if !f.running {
		return st
	}
	st.ServerVersion = s.obs.ServerVersion
	if !s.obs.PostmasterAt.IsZero() {
		st.PostmasterStartTime = pyTime(s.obs.PostmasterAt)
	}
	if !f.replica {
		st.XLog = primaryXLog{Location: uint64(s.obs.FlushLSN)}
		for _, r := range s.obs.Replication {
			st.Replication = append(st.Replication, replicationStatus{Usename: r.Usename, ApplicationName: r.ApplicationName,
				ClientAddr: r.ClientAddr, State: r.State, SyncState: r.SyncState, SyncPriority: r.SyncPriority})
		}
		return st
	}
	x := replicaXLog{ReceivedLocation: uint64(f.received), ReplayedLocation: uint64(f.replayed), Paused: s.obs.ReplayPaused}
	if !s.obs.ReplayedAt.IsZero() {
		ts := pyTime(s.obs.ReplayedAt)
		x.ReplayedTimestamp = &ts
	}
	st.XLog = x
	st.SyncStandby = f.syncKnown && f.syncState == haagent.SyncSync
	st.QuorumStandby = f.syncKnown && f.syncState == haagent.SyncQuorum
	return st
}

// pgState is the member's state in Patroni's words where pigwf has the same one: PostgreSQL's
// (running, starting, stopped, crashed), "stopping" once a planned stop began, or the long
// action that runs on the data directory.
func pgState(s snapshot) string {
	switch {
	case s.stopping && s.obs.State != haagent.PGStopped && s.obs.State != haagent.PGCrashed:
		return "stopping"
	case s.local.Busy == haagent.BusyCloning:
		return "creating replica"
	case s.local.Busy == haagent.BusyBootstrap:
		return "initializing new cluster"
	case s.local.Busy == haagent.BusyRewinding:
		return "rewinding"
	case s.obs.State == haagent.PGUnknown:
		return "unknown"
	}
	return string(s.obs.State)
}

// pgRole is Patroni's role of the member's PostgreSQL: "primary" or "replica" as
// pg_is_in_recovery() says while it runs (or starts); while it is down, what its data
// directory will be: "replica" with standby.signal, "primary" when this member holds the
// leader key (it restarts in place), "demoted" otherwise, "uninitialized" without data.
func pgRole(s snapshot, me string) string {
	switch {
	case s.obs.State == haagent.PGRunning || s.obs.State == haagent.PGStarting:
		if s.obs.InRecovery {
			return "replica"
		}
		return "primary"
	case s.obs.DataDirEmpty || s.obs.NotADataDir:
		return "uninitialized"
	case s.obs.InRecovery:
		return "replica"
	case s.view.Leader != nil && s.view.Leader.Holder == me:
		return "primary"
	}
	return "demoted"
}

func (a *Agent) handlePatroni(w http.ResponseWriter, r *http.Request) {
	if !healthMethod(w, r) {
		return
	}
	a.writeJSON(w, r, http.StatusOK, a.status(a.snapshot(), a.clock.Now()))
}

// handleHistory is Patroni's GET /history: the timeline switches of the DCS history key, each
// [timeline, lsn, reason, timestamp, new_leader]; the last two only where the key records them
// (the leader that wrote an entry, and when).
func (a *Agent) handleHistory(w http.ResponseWriter, r *http.Request) {
	if !healthMethod(w, r) {
		return
	}
	lines := [][]any{}
	for _, h := range a.snapshot().history {
		line := []any{h.Timeline, h.LSN, h.Reason}
		if !h.At.IsZero() || h.Leader != "" {
			at := ""
			if !h.At.IsZero() {
				at = h.At.UTC().Format("2006-01-02T15:04:05.000000-07:00") // Python's isoformat()
			}
			line = append(line, at, h.Leader)
		}
		lines = append(lines, line)
	}
	a.writeJSON(w, r, http.StatusOK, lines)
}

// Version is the agent's version, set when it is built:
//
//	go build -ldflags "-X github.com/pigwf/pigwf/ha-agent/agent.Version=1.2.3"
//
// Without it, the version of the module the binary was built from, or 0.0.0.
var Version string

func agentVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && strings.HasPrefix(bi.Main.Version, "v") {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "0.0.0"
}

// versionNumber is a version as Patroni's patroni_version metric writes its own: each of the
// first three numbers in two digits (1.2.3 → 10203); 0 when it is not x.y.z.
func versionNumber(v string) float64 {
	parts := strings.SplitN(strings.SplitN(v, "-", 2)[0], ".", 3)
	if len(parts) != 3 {
		return 0
	}
	n := 0
	for _, p := range parts {
		d, err := strconv.Atoi(p)
		if err != nil || d < 0 || d > 99 {
			return 0
		}
		n = n*100 + d
	}
	return float64(n)
}
