// Package inventory loads and validates pigwf's inventory (Pigsty's format): hosts, groups and
// variables resolved host > group > all.vars into one validated Cluster or node list. It has no
// Temporal imports: the CLI validates here before anything is started, and the workflows receive
// the resolved, validated values.
//
// Where things live: types.go the resolved types and defaults; load.go reading a file and the
// etcd endpoints; vars.go variables resolved host > group > all and the cluster built from them;
// yamlnode.go YAML anchors, aliases and merge keys; rules.go the rule of every variable pigwf
// reads (names, hosts, ports, paths, packages, free text); parameters.go pg_parameters and the
// settings pigwf derives itself; entries.go pg_users, pg_databases and pg_hba_rules entries;
// keys.go the variables pigwf and Pigsty know ("did you mean"); validate.go checks across
// entries and hosts; errors.go FieldError and ValidationError.
package inventory

import (
	"regexp"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/haproxy"
)

// Roles a PostgreSQL instance may have in the inventory (Pigsty's pg_role).
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
	RoleOffline = "offline"
)

// Defaults for node-level variables. They are documented in README.md ("Inventory").
var (
	DefaultSSHUser = "root"
	DefaultSSHPort = 22
	// haproxy: pg-service runs it on every member (Pigsty installs it on every node too).
	DefaultPackages = []string{"postgresql-15", "pgbackrest", "etcd-client", "haproxy"}
	// DefaultSysctl is a conservative PostgreSQL host tuning (a subset of Pigsty's node_tune).
	// Hosts that share a kernel (the lab) override it with per-namespace settings only.
	DefaultSysctl = map[string]string{
		"vm.swappiness":                "1",
		"vm.overcommit_memory":         "2",
		"vm.overcommit_ratio":          "90",
		"net.core.somaxconn":           "4096",
		"net.ipv4.tcp_keepalive_time":  "60",
		"net.ipv4.tcp_keepalive_intvl": "10",
	}
	// DefaultLimits are the postgres user's resource limits (limits.d), as Pigsty sets them.
	DefaultLimits = map[string]string{"nofile": "655360", "nproc": "655360", "memlock": "unlimited"}
)

// clusterNameRE: a DNS label, as Pigsty requires for pg_cluster (it becomes service names).
var clusterNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$`)

// Inventory is a loaded inventory file: groups (clusters) and their hosts.
type Inventory struct {
	File     string
	Clusters map[string]*Cluster // by group name
	// Etcd lists the DCS client endpoints: the hosts of the group named by etcd_cluster
	// (default "etcd"), as https://<addr>:<etcd_port>, in etcd_seq order (http:// when Plaintext).
	Etcd []string
	// Plaintext is all.vars.pigwf_insecure_plaintext: etcd, the agents' API and replication
	// without TLS. Lab-only (a benchmark's baseline); by default every connection pigwf makes or
	// configures is TLS from the deployment CA.
	Plaintext bool
}

// Cluster is one group under all.children. PostgreSQL clusters have vars.pg_cluster.
type Cluster struct {
	Group     string // the group's key under all.children
	Name      string // vars.pg_cluster ("" for groups that are not PostgreSQL clusters)
	Line      int
	Hosts     []Host // sorted by pg_seq, then address
	Users     []User
	Databases []Database
	HBARules  []HBARule
	PG        PGVars
	// Services are pg_default_services (Pigsty's four by default) and pg_services: the HAProxy
	// services of every member; ServiceCheck is pigwf_service_check over haproxy.FastTiming.
	Services     []haproxy.Service
	ServiceCheck haproxy.CheckTiming
	// ServicesEnabled is haproxy_enabled (default true): false leaves the services out, their
	// ports free, and pg-service refuses the cluster.
	ServicesEnabled bool
}

// PGVars are the cluster-level PostgreSQL, HA and backup settings (documented in README.md).
type PGVars struct {
	Port                int               `json:"port"`                  // pg_port
	DataDir             string            `json:"data_dir"`              // pg_data
	BinDir              string            `json:"bin_dir"`               // pg_bin_dir
	Checksums           bool              `json:"checksums"`             // pg_checksum
	Parameters          map[string]string `json:"parameters"`            // pg_parameters
	Namespace           string            `json:"namespace"`             // pg_namespace: DCS key prefix
	SyncMode            bool              `json:"sync_mode"`             // pg_synchronous_mode
	SyncStrict          bool              `json:"sync_strict"`           // pg_synchronous_mode_strict
	RPO                 int64             `json:"rpo"`                   // pg_rpo: maximum_lag_on_failover in bytes
	RTO                 time.Duration     `json:"rto"`                   // pg_rto: the HA agents' leader lease (0: the agents' default)
	ReplicationUser     string            `json:"replication_user"`      // pg_replication_username
	AdminUser           string            `json:"admin_user"`            // pg_admin_username
	BackupRepoPath      string            `json:"backup_repo_path"`      // pgbackrest_repo_path
	BackupRetentionFull int               `json:"backup_retention_full"` // pgbackrest_retention_full
	BackupSource        string            `json:"backup_source"`         // pg_backup_source: BackupSourceLeader or BackupSourceReplica
	Approvers           []string          `json:"approvers"`             // pigwf_approvers: who may approve risky runbooks
	ApprovalTimeout     string            `json:"approval_timeout"`      // pigwf_approval_timeout, e.g. 1h
	ReplicationPassword string            `json:"-"`                     // pg_replication_password: a secret
	AdminPassword       string            `json:"-"`                     // pg_admin_password: a secret
}

// Defaults of PGVars.
func defaultPGVars() PGVars {
	return PGVars{Port: 5432, DataDir: "/pg/data", BinDir: "/usr/lib/postgresql/15/bin", Checksums: true, Parameters: map[string]string{},
		Namespace: "/pigwf", RPO: 1 << 20, ReplicationUser: "replicator", AdminUser: "dbuser_dba",
		BackupRepoPath: "/pg/backup", BackupRetentionFull: 2, BackupSource: BackupSourceLeader}
}

// Where pg-backup takes a backup (pg_backup_source): on the leader, or on a streaming replica
// with pgBackRest's backup-standby (the leader still starts and stops the backup, and the few
// files that are not replicated come from it).
const (
	BackupSourceLeader  = "leader"
	BackupSourceReplica = "replica"
)

// Host is one node of a cluster with its effective variables (host > group > all).
type Host struct {
	Addr string // the key under hosts: an IP address or a resolvable name
	Line int
	Seq  int    // pg_seq
	Role string // pg_role
	Node NodeVars
	// Tags are pg_tags: the member's HA tags, written to its agent's config. An offline
	// member is always nofailover (PgClusterCreate adds it).
	Tags haagent.ClusterTags
}

// NodeVars are the node-level settings pigwf reads. Everything else in the inventory is kept
// by Pigsty and ignored here.
type NodeVars struct {
	SSHHost    string            `json:"ssh_host"`     // ansible_host, default Addr
	SSHPort    int               `json:"ssh_port"`     // ansible_port, default 22
	SSHUser    string            `json:"ssh_user"`     // ansible_user, default root
	SSHKeyFile string            `json:"ssh_key_file"` // ansible_ssh_private_key_file, default: agent, then ~/.ssh/id_ed25519, id_rsa
	KnownHosts string            `json:"known_hosts"`  // pigwf_known_hosts, default ~/.ssh/known_hosts
	Nodename   string            `json:"nodename"`     // nodename, default <pg_cluster>-<pg_seq>
	Packages   []string          `json:"packages"`     // node_packages
	Sysctl     map[string]string `json:"sysctl"`       // node_sysctl_params
	Limits     map[string]string `json:"limits"`       // node_limits (postgres user)
}

// The states of a pg_users or pg_databases entry (Pigsty's state): present, the default, or
// absent, which pg-users and pg-databases drop.
const (
	StateCreate = "create"
	StateAbsent = "absent"
)

// User is an entry of pg_users. Password is a secret: it never goes into workflow inputs. The
// attributes left nil are not managed: a new role gets PostgreSQL's default, an existing one
// keeps what it has.
type User struct {
	Name        string   `yaml:"name"`
	Password    string   `yaml:"password"`
	Roles       []string `yaml:"roles"`
	Comment     string   `yaml:"comment"`
	Login       *bool    `yaml:"login"` // nil: true
	Superuser   bool     `yaml:"superuser"`
	Replication bool     `yaml:"replication"`
	CreateDB    *bool    `yaml:"createdb"`
	CreateRole  *bool    `yaml:"createrole"`
	Inherit     *bool    `yaml:"inherit"`
	BypassRLS   *bool    `yaml:"bypassrls"`
	ConnLimit   *int     `yaml:"connlimit"` // -1: no limit
	State       string   `yaml:"state"`     // "" or create: the role exists; absent: it is dropped
	Line        int      `yaml:"-"`
}

// Absent: the entry asks for the role to be dropped.
func (u User) Absent() bool { return u.State == StateAbsent }

// Database is an entry of pg_databases.
type Database struct {
	Name      string `yaml:"name"`
	Owner     string `yaml:"owner"`
	Comment   string `yaml:"comment"`
	ConnLimit *int   `yaml:"connlimit"` // -1: no limit; nil: not managed
	State     string `yaml:"state"`     // "" or create: the database exists; absent: it is dropped
	Line      int    `yaml:"-"`
}

// Absent: the entry asks for the database to be dropped.
func (d Database) Absent() bool { return d.State == StateAbsent }

// HBARule is an entry of pg_hba_rules in Pigsty's alias form.
type HBARule struct {
	User  string `yaml:"user"`
	DB    string `yaml:"db"`
	Addr  string `yaml:"addr"`
	Auth  string `yaml:"auth"`
	Title string `yaml:"title"`
	Line  int    `yaml:"-"`
}
