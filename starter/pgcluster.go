package starter

import (
	"fmt"
	"maps"
	"path/filepath"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// AgentAPIPort is the HA agent's REST port on every node (Patroni's default, so HAProxy configs
// written for Patroni keep working).
const AgentAPIPort = 8008

// isPGCluster refuses an inventory group that is not a PostgreSQL cluster (no pg_cluster), which
// every PostgreSQL runbook needs.
func isPGCluster(cluster *inventory.Cluster) error {
	if cluster.Name == "" {
		return fmt.Errorf("group %s has no pg_cluster: it is not a PostgreSQL cluster", cluster.Group)
	}
	return nil
}

// pgSpec is the cluster's PostgreSQL layout as every runbook that renders its files takes it
// (pg-cluster-create, pg-backup, pg-hba: the same pgbackrest.conf and pg_hba.conf from each): the
// parameters with pigwf's defaults and the settings it derives, pg_hba.conf's lines from
// pg_hba_rules and the members' addresses (RenderHBA, the one renderer). inventoryFile is where the
// worker reads passwords ("" for a runbook that needs none).
func pgSpec(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string) activities.PGSpec {
	pg := cluster.PG
	var addrs, clients []string
	for _, h := range cluster.Hosts {
		addrs = append(addrs, h.Node.SSHHost)
		clients = append(clients, h.Node.Nodename)
	}
	spec := activities.PGSpec{
		Cluster: cluster.Name, Port: pg.Port, DataDir: pg.DataDir, BinDir: pg.BinDir, Checksums: pg.Checksums,
		Parameters:      activities.Parameters(cluster.Name, pg.Port, inv.Plaintext, pg.Parameters),
		HBA:             activities.RenderHBA(pg.ReplicationUser, pg.AdminUser, addrs, cluster.HBARules, inv.Plaintext),
		ReplicationUser: pg.ReplicationUser, AdminUser: pg.AdminUser,
		BackupRepoPath: pg.BackupRepoPath, BackupRetention: pg.BackupRetentionFull, InventoryFile: inventoryFile, Plaintext: inv.Plaintext,
	}
	if pg.BackupSource == inventory.BackupSourceReplica {
		// Any member may be the leader a standby's backup reaches, or the standby that reaches it.
		spec.BackupClients = clients
	}
	return spec
}

// PgClusterCreateInput resolves a PgClusterCreate input from the inventory. Passwords stay out:
// the worker reads them from inventoryFile (or generates them) when it needs them.
func PgClusterCreateInput(inv *inventory.Inventory, cluster *inventory.Cluster, inventoryFile string) (workflows.PgClusterCreateInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgClusterCreateInput{}, err
	}
	if len(inv.Etcd) == 0 {
		return workflows.PgClusterCreateInput{}, fmt.Errorf("%s has no etcd group: pigwf's HA agents need etcd as the DCS (add all.children.etcd.hosts, as Pigsty does)", inv.File)
	}
	abs, err := filepath.Abs(inventoryFile)
	if err != nil {
		return workflows.PgClusterCreateInput{}, err
	}
	pg := cluster.PG
	in := workflows.PgClusterCreateInput{
		Cluster: cluster.Name, SyncMode: pg.SyncMode, SyncStrict: pg.SyncStrict, RPO: pg.RPO, LeaseMs: int(pg.RTO.Milliseconds()), APIPort: AgentAPIPort,
		DCS: activities.DCSInput{Endpoints: inv.Etcd, Namespace: pg.Namespace, Cluster: cluster.Name, Plaintext: inv.Plaintext},
		// The user's own pg_parameters, not activities.Parameters' merge with pigwf's defaults:
		// they seed the cluster's config in the DCS.
		PgParameters: maps.Clone(pg.Parameters),
	}
	primary := cluster.Primary()
	in.Members = append(in.Members, workflows.PgMember{Name: primary.Node.Nodename, Role: primary.Role, Node: NodeOf(primary), Tags: primary.Tags})
	for _, h := range cluster.Hosts {
		if h.Addr != primary.Addr {
			in.Members = append(in.Members, workflows.PgMember{Name: h.Node.Nodename, Role: h.Role, Node: NodeOf(h), Tags: h.Tags})
		}
	}
	in.Spec = pgSpec(inv, cluster, abs)
	// Pigsty's default role model, then the replication and admin users.
	in.Roles = []activities.RoleSpec{
		{Name: "dbrole_readonly", Comment: "role for global read-only access"},
		{Name: "dbrole_offline", Comment: "role for restricted read-only access"},
		{Name: "dbrole_readwrite", InRoles: []string{"dbrole_readonly"}, Comment: "role for global read-write access"},
		{Name: "dbrole_admin", InRoles: []string{"pg_monitor", "dbrole_readwrite"}, Comment: "role for object creation"},
		{Name: pg.ReplicationUser, Login: true, Replication: true, InRoles: []string{"pg_monitor", "dbrole_readonly"}, Comment: "system replicator", Password: "replication"},
		{Name: pg.AdminUser, Login: true, Superuser: true, InRoles: []string{"dbrole_admin"}, Comment: "pgsql admin user", Password: "admin"},
	}
	// The users and databases to create: pg-cluster-create drops nothing (pg-users and
	// pg-databases drop the entries with state: absent).
	for _, u := range cluster.Users {
		if !u.Absent() {
			in.Users = append(in.Users, roleSpecOf(u))
		}
	}
	for _, d := range cluster.Databases {
		if !d.Absent() {
			in.Databases = append(in.Databases, databaseSpecOf(d))
		}
	}
	in.Approval = approvalPolicy(cluster, 0)
	return in, nil
}

// roleSpecOf is a pg_users entry as the role pigwf ensures (or drops); its password stays in the
// inventory, which the worker reads.
func roleSpecOf(u inventory.User) activities.RoleSpec {
	rs := activities.RoleSpec{Name: u.Name, Login: u.Login == nil || *u.Login, Superuser: u.Superuser, Replication: u.Replication,
		InRoles: u.Roles, Comment: u.Comment, CreateDB: u.CreateDB, CreateRole: u.CreateRole, Inherit: u.Inherit, BypassRLS: u.BypassRLS,
		ConnLimit: u.ConnLimit, Absent: u.Absent()}
	if u.Password != "" {
		rs.Password = "user"
	}
	return rs
}

// databaseSpecOf is a pg_databases entry as the database pigwf ensures (or drops).
func databaseSpecOf(d inventory.Database) activities.DatabaseSpec {
	return activities.DatabaseSpec{Name: d.Name, Owner: d.Owner, Comment: d.Comment, ConnLimit: d.ConnLimit, Absent: d.Absent()}
}
