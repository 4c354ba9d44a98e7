package activities

import (
	"fmt"

	"github.com/pigwf/pigwf/inventory"
)

// Validate methods: every activity input that carries inventory data checks it against the
// inventory's own rules (inventory.CheckDecoded), so the worker refuses a run started with a
// crafted input (`temporal workflow start --input ...`, which skips the CLI's checks) before any
// activity acts on it: ValidateInputs calls them before each activity. Each returns nil or an
// *inventory.ValidationError naming every bad field by its place in the input (e.g.
// "node.ssh_host", "spec.hba[3].addr").
//
// Inputs that embed another (PITRStopInput embeds PITRNodeInput) inherit its Validate when they
// add no inventory data of their own.

// inputCheck collects the problems of one input.
type inputCheck struct{ problems []inventory.FieldError }

func (c *inputCheck) rule(field, rule string, v any) {
	c.problems = append(c.problems, inventory.CheckDecoded(field, rule, v)...)
}

// optional checks v unless it is empty, which the input allows (a default applies).
func (c *inputCheck) optional(field, rule, v string) {
	if v != "" {
		c.rule(field, rule, v)
	}
}

func (c *inputCheck) add(field, problem, fix string) {
	c.problems = append(c.problems, inventory.FieldError{Field: field, Problem: problem, Fix: fix})
}

func (c *inputCheck) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &inventory.ValidationError{Problems: c.problems}
}

// join names a field inside prefix ("" at the input's top level, as JSON flattens embedded inputs).
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (c *inputCheck) nodenames(field string, names []string) {
	for i, n := range names {
		c.rule(fmt.Sprintf("%s[%d]", field, i), "nodename", n)
	}
}

// node: the inventory host and its SSH settings (starter.NodeOf).
func (c *inputCheck) node(f string, n Node) {
	c.rule(join(f, "addr"), inventory.RuleHost, n.Addr)
	c.optional(join(f, "name"), "nodename", n.Name) // a group without pg_cluster may have none
	c.rule(join(f, "ssh_host"), "ansible_host", n.SSHHost)
	c.rule(join(f, "ssh_port"), "ansible_port", n.SSHPort)
	c.rule(join(f, "ssh_user"), "ansible_user", n.SSHUser)
	c.optional(join(f, "ssh_key_file"), "ansible_ssh_private_key_file", n.SSHKeyFile)
	c.optional(join(f, "known_hosts"), "pigwf_known_hosts", n.KnownHosts)
}

// optionalNode: a node the input may leave out (PgPrecheck has no primary yet).
func (c *inputCheck) optionalNode(f string, n Node) {
	if n != (Node{}) {
		c.node(f, n)
	}
}

func (c *inputCheck) pgSpec(f string, s PGSpec) {
	c.rule(join(f, "cluster"), "pg_cluster", s.Cluster)
	c.rule(join(f, "port"), "pg_port", s.Port)
	c.rule(join(f, "data_dir"), "pg_data", s.DataDir)
	c.rule(join(f, "bin_dir"), "pg_bin_dir", s.BinDir)
	c.rule(join(f, "replication_user"), "pg_replication_username", s.ReplicationUser)
	c.rule(join(f, "admin_user"), "pg_admin_username", s.AdminUser)
	c.rule(join(f, "backup_repo_path"), "pgbackrest_repo_path", s.BackupRepoPath)
	c.rule(join(f, "backup_retention"), "pgbackrest_retention_full", s.BackupRetention)
	c.optional(join(f, "inventory_file"), inventory.RuleLocalPath, s.InventoryFile)
	c.nodenames(join(f, "backup_clients"), s.BackupClients)
	// Settings with the values pigwf gives them itself (Parameters) are pigwf's; any other
	// came from pg_parameters and is held to its rule, which refuses the settings pigwf derives.
	own := Parameters(s.Cluster, s.Port, s.Plaintext, nil)
	overrides := map[string]string{}
	for k, v := range s.Parameters {
		if own[k] != v {
			overrides[k] = v
		}
	}
	c.rule(join(f, "parameters"), "pg_parameters", overrides)
	for i, line := range s.HBA {
		field := fmt.Sprintf("%s[%d]", join(f, "hba"), i)
		if e, ok := hbaEntry(line); ok {
			c.problems = append(c.problems, inventory.CheckEntry(field, "pg_hba_rules", e)...)
		} else {
			c.add(field, fmt.Sprintf("%q is not a pg_hba.conf line pigwf renders", line), "send the lines RenderHBA writes from pg_hba_rules")
		}
	}
}

func (c *inputCheck) dcs(f string, d DCSInput) {
	for i, e := range d.Endpoints {
		c.rule(fmt.Sprintf("%s[%d]", join(f, "endpoints"), i), inventory.RuleHostURL, e)
	}
	c.rule(join(f, "namespace"), "pg_namespace", d.Namespace)
	c.rule(join(f, "cluster"), "pg_cluster", d.Cluster)
}

func (c *inputCheck) pitrSpec(f string, s PITRSpec) {
	c.rule(join(f, "cluster"), "pg_cluster", s.Cluster)
	c.rule(join(f, "data_dir"), "pg_data", s.DataDir)
	c.rule(join(f, "bin_dir"), "pg_bin_dir", s.BinDir)
	c.rule(join(f, "port"), "pg_port", s.Port)
	c.rule(join(f, "repo_path"), "pgbackrest_repo_path", s.RepoPath)
}

func (c *inputCheck) pitrMembers(f string, ms []PITRMember) {
	for i, m := range ms {
		mf := fmt.Sprintf("%s[%d]", f, i)
		c.rule(join(mf, "name"), "nodename", m.Name)
		c.node(join(mf, "node"), m.Node)
		c.rule(join(mf, "api_url"), inventory.RuleHostURL, m.APIURL)
	}
}

func (c *inputCheck) memberAPIs(f string, ms []MemberAPI) {
	for i, m := range ms {
		c.memberAPI(fmt.Sprintf("%s[%d]", f, i), m)
	}
}

func (c *inputCheck) memberAPI(f string, m MemberAPI) {
	c.rule(join(f, "name"), "nodename", m.Name)
	c.rule(join(f, "api_url"), inventory.RuleHostURL, m.APIURL)
}

// optionalDCS checks the DCS of an input whose activity reaches only the agents, when it is given.
func (c *inputCheck) optionalDCS(f string, d DCSInput) {
	if len(d.Endpoints) > 0 || d.Namespace != "" || d.Cluster != "" {
		c.dcs(f, d)
	}
}

func (c *inputCheck) pitrHA(in PITRHAInput) {
	c.dcs("dcs", in.DCS)
	c.pitrMembers("members", in.Members)
	c.optional("leader", "nodename", in.Leader)
}

// Validate checks the node's address and SSH settings.
func (n Node) Validate() error {
	var c inputCheck
	c.node("node", n)
	return c.err()
}

// Validate checks the node and the cluster's names and addresses for /etc/hosts.
func (in NodeIdentityInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	for i, h := range in.Hosts {
		c.rule(fmt.Sprintf("hosts[%d].addr", i), inventory.RuleHost, h.Addr)
		c.rule(fmt.Sprintf("hosts[%d].name", i), "nodename", h.Name)
	}
	return c.err()
}

// Validate checks the node and the package names (node_packages).
func (in NodePackagesInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.rule("packages", "node_packages", in.Packages)
	return c.err()
}

// Validate checks the node, the sysctl settings and the limits.
func (in NodeKernelInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.rule("sysctl", "node_sysctl_params", in.Sysctl)
	c.rule("limits", "node_limits", in.Limits)
	return c.err()
}

// Validate checks the node.
func (in NodeCACertInput) Validate() error { return in.Node.Validate() }

// Validate checks the node the certificate is for.
func (in NodeCertInput) Validate() error { return in.Node.Validate() }

// Validate checks the node, the cluster's settings, the members and the etcd endpoints.
func (in PgNodeInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.pgSpec("spec", in.Spec)
	c.optionalNode("primary", in.Primary)
	c.nodenames("members", in.Members)
	for i, e := range in.Etcd {
		c.rule(fmt.Sprintf("etcd[%d]", i), inventory.RuleHostURL, e)
	}
	return c.err()
}

// Validate checks the primary, the cluster's settings, and the roles and databases to ensure
// (PgClusterCreate creates; it drops nothing).
func (in SQLInput) Validate() error {
	var c inputCheck
	c.node("primary", in.Primary)
	c.pgSpec("spec", in.Spec)
	c.roles("roles", in.Roles)
	c.databases("databases", in.Databases)
	for i, r := range in.Roles {
		if r.Absent {
			c.add(fmt.Sprintf("roles[%d].absent", i), "a role to drop", "pg-cluster-create drops nothing: pg-users drops users")
		}
	}
	for i, d := range in.Databases {
		if d.Absent {
			c.add(fmt.Sprintf("databases[%d].absent", i), "a database to drop", "pg-cluster-create drops nothing: pg-databases drops databases")
		}
	}
	return c.err()
}

// Validate checks the leader, the cluster's name and port, the inventory file, and the users or
// databases to plan or apply.
func (in PgObjectsInput) Validate() error {
	var c inputCheck
	c.node("leader", in.Leader)
	c.rule("cluster", "pg_cluster", in.Cluster)
	c.rule("port", "pg_port", in.Port)
	c.optional("inventory_file", inventory.RuleLocalPath, in.InventoryFile)
	c.roles("users", in.Users)
	c.databases("databases", in.Databases)
	return c.err()
}

// roles: names by the role rule, a password source pigwf knows, a connection limit PostgreSQL takes.
func (c *inputCheck) roles(f string, roles []RoleSpec) {
	for i, r := range roles {
		rf := fmt.Sprintf("%s[%d]", f, i)
		c.rule(rf+".name", inventory.RuleRoleName, r.Name)
		for j, g := range r.InRoles {
			c.rule(fmt.Sprintf("%s.in_roles[%d]", rf, j), inventory.RuleRoleName, g)
		}
		c.rule(rf+".comment", inventory.RuleText, r.Comment)
		switch r.Password {
		case "", "replication", "admin", "user":
		default:
			c.add(rf+".password", fmt.Sprintf("%q names no password source", r.Password), "use replication, admin, user or nothing")
		}
		c.connLimit(rf+".connlimit", r.ConnLimit)
	}
}

// databases: names by the database rule, owners by the role rule.
func (c *inputCheck) databases(f string, dbs []DatabaseSpec) {
	for i, d := range dbs {
		df := fmt.Sprintf("%s[%d]", f, i)
		c.rule(df+".name", inventory.RuleDatabaseName, d.Name)
		c.optional(df+".owner", inventory.RuleRoleName, d.Owner)
		c.rule(df+".comment", inventory.RuleText, d.Comment)
		c.connLimit(df+".connlimit", d.ConnLimit)
	}
}

// connLimit: -1 (none) or more, as pg_users' and pg_databases' connlimit.
func (c *inputCheck) connLimit(f string, n *int) {
	if n != nil && (*n < -1 || *n > 1<<31-1) {
		c.add(f, fmt.Sprintf("%d is not a connection limit", *n), "give an integer from -1 (no limit) to 2147483647")
	}
}

// Validate checks the node, the member's name, the cluster's settings, etcd and the API port.
func (in AgentInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.rule("member", "nodename", in.Member)
	c.pgSpec("spec", in.Spec)
	c.dcs("dcs", in.DCS)
	c.rule("api_port", inventory.RulePort, in.APIPort)
	if tags := in.Tags.Patroni(); len(tags) > 0 {
		c.rule("tags", "pg_tags", tags)
	}
	return c.err()
}

// Validate checks the etcd endpoints, the key prefix and the cluster's name.
func (in DCSInput) Validate() error {
	var c inputCheck
	c.dcs("", in)
	return c.err()
}

// Validate checks etcd, the bootstrapping member's name and the parameters that seed the config
// (pg_parameters' rule).
func (in DCSRegisterInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.rule("primary", "nodename", in.Primary)
	if len(in.Parameters) > 0 {
		c.rule("parameters", "pg_parameters", in.Parameters)
	}
	return c.err()
}

// Validate checks etcd, the member and its agent's URL.
func (in WaitLeaderInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.rule("member", "nodename", in.Member)
	c.rule("api_url", inventory.RuleHostURL, in.APIURL)
	return c.err()
}

// Validate checks etcd, the members' names and the primary's agent URL.
func (in VerifyInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.rule("primary", "nodename", in.Primary)
	c.rule("api_url", inventory.RuleHostURL, in.APIURL)
	c.nodenames("replicas", in.Replicas)
	return c.err()
}

// Validate checks etcd, the members and the candidate's name.
func (in SwitchoverCheckInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.memberAPIs("members", in.Members)
	c.optional("candidate", "nodename", in.Candidate)
	return c.err()
}

// Validate checks etcd, the members and the two members' names.
func (in SwitchoverExecInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.memberAPIs("members", in.Members)
	c.rule("From", "nodename", in.From) // From and To have no JSON names of their own
	c.rule("To", "nodename", in.To)
	return c.err()
}

// Validate checks the member's name and agent URL (and the DCS, when given).
func (in MemberRestartInput) Validate() error {
	var c inputCheck
	c.optionalDCS("dcs", in.DCS)
	c.memberAPI("member", in.Member)
	return c.err()
}

// Validate checks the member's name and agent URL.
func (in MemberReloadInput) Validate() error {
	var c inputCheck
	c.memberAPI("member", in.Member)
	return c.err()
}

// Validate checks the members, the targets' names (and the DCS, when given).
func (in WaitMembersInput) Validate() error {
	var c inputCheck
	c.optionalDCS("dcs", in.DCS)
	c.memberAPIs("members", in.Members)
	c.nodenames("targets", in.Targets)
	return c.err()
}

// Validate checks the members (and the DCS, when given).
func (in ClusterStateInput) Validate() error {
	var c inputCheck
	c.optionalDCS("dcs", in.DCS)
	c.memberAPIs("members", in.Members)
	return c.err()
}

// Validate checks etcd, the members and the cluster's settings.
func (in PITRCheckInput) Validate() error {
	var c inputCheck
	c.dcs("dcs", in.DCS)
	c.pitrMembers("members", in.Members)
	c.pitrSpec("spec", in.Spec)
	return c.err()
}

// Validate checks the member, its node and the cluster's settings (and so the inputs that embed
// PITRNodeInput: stop, restore, reach, finalize).
func (in PITRNodeInput) Validate() error {
	var c inputCheck
	c.rule("member", "nodename", in.Member)
	c.node("node", in.Node)
	c.pitrSpec("spec", in.Spec)
	return c.err()
}

// Validate checks etcd, the members and the leader's name.
func (in PITRHAInput) Validate() error {
	var c inputCheck
	c.pitrHA(in)
	return c.err()
}

// Validate checks PITRHAInput's fields and the new holder's name.
func (in PITRHandOverInput) Validate() error {
	var c inputCheck
	c.pitrHA(in.PITRHAInput)
	c.rule("holder", "nodename", in.Holder)
	return c.err()
}

// Validate checks PITRHAInput's fields, the leader to wait for and PostgreSQL's port.
func (in PITRWaitInput) Validate() error {
	var c inputCheck
	c.pitrHA(in.PITRHAInput)
	c.optional("leader", "nodename", in.Leader) // AnyLeader waits for any
	c.rule("port", "pg_port", in.Port)
	return c.err()
}

// Validate checks PITRNodeInput's fields, etcd and the members.
func (in PITRBackupInput) Validate() error {
	var c inputCheck
	c.rule("member", "nodename", in.Member)
	c.node("node", in.Node)
	c.pitrSpec("spec", in.Spec)
	c.dcs("dcs", in.DCS)
	c.pitrMembers("members", in.Members)
	return c.err()
}

// Validate checks the members and the cluster's settings.
func (in PITRCleanupInput) Validate() error {
	var c inputCheck
	c.pitrMembers("members", in.Members)
	c.pitrSpec("spec", in.Spec)
	return c.err()
}
