package haagent

// ClusterStatus is the answer of an agent's GET /cluster: every member with
// the role and streaming state the leader's pg_stat_replication reports.
// The agent renders it and pigwf parses it (`pigwf ha list`), so this type
// and its JSON field names are the one contract between them.
type ClusterStatus struct {
	Cluster  string `json:"cluster"`
	Paused   bool   `json:"paused"`
	Leader   string `json:"leader"` // "" = no leader key
	Timeline uint32 `json:"timeline"`
	// SynchronousStandbyNames is the leader's synchronous_standby_names.
	SynchronousStandbyNames string `json:"synchronous_standby_names"`
	// SyncSource says where roles and states come from: "live: ..." (the
	// leader's pg_stat_replication read during the request), "dcs: ..."
	// (as the leader last published it) or "none: ...".
	SyncSource string          `json:"sync_source"`
	Members    []ClusterMember `json:"members"`
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
	LagBytes *uint64     `json:"lag_bytes"`
	APIURL   string      `json:"api_url"`
	Tags     ClusterTags `json:"tags"`
	Note     string      `json:"note,omitempty"` // why the member is not doing what it should, for humans
}

// ClusterTags are a member's tags in ClusterStatus.
type ClusterTags struct {
	NoFailover bool `json:"nofailover"`
	NoSync     bool `json:"nosync"`
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
