package inventory_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// inv builds an inventory around a two-node cluster pg-test whose first node also runs etcd:
// host1 replaces the first host's variables, group and global are appended to pg-test.vars and
// all.vars (already indented), extra to all.children. The hostile line carries the comment
// "# <-": the refusal must point at it.
func inv(host1, group, global, extra string) string {
	if host1 == "" {
		host1 = "{ pg_seq: 1, pg_role: primary }"
	}
	return `all:
  children:
    pg-test:
      hosts:
        10.0.0.1: ` + host1 + `
        10.0.0.2: { pg_seq: 2, pg_role: replica }
      vars:
        pg_cluster: pg-test
` + group + `    etcd:
      hosts:
        10.0.0.1: { etcd_seq: 1 }
      vars: { etcd_cluster: etcd }
` + extra + `  vars:
    ansible_user: root
    etcd_cluster: etcd
` + global
}

// Hostile inventories: each is refused at load, before anything connects anywhere, with a
// problem on the marked line naming the variable (FieldError.Field) that carries it.
func TestHostileInventories(t *testing.T) {
	cases := []struct {
		n     int
		name  string
		yaml  string
		field string // FieldError.Field of the expected refusal
		fix   string // a part of its Fix, when the fix matters (suggestions)
	}{
		// injection through ports, paths and names that reach root shells on the nodes
		{1, "etcd_port with a command", inv("", "", "    etcd_port: \"2379$(touch /tmp/pwned)\" # <-\n", ""), "etcd_port", ""},
		{2, "etcd_port out of range", inv("", "", "    etcd_port: 70000 # <-\n", ""), "etcd_port", ""},
		{3, "pg_port with a command", inv("", "        pg_port: '5432; reboot' # <-\n", "", ""), "pg_port", ""},
		{4, "pg_port in hex", inv("", "        pg_port: 0x1538 # <-\n", "", ""), "pg_port", ""},
		{5, "ansible_port negative", inv("{ pg_seq: 1, pg_role: primary, ansible_port: -22 } # <-", "", "", ""), "ansible_port", ""},
		{6, "pg_data with a command", inv("", "        pg_data: '/pg/data; rm -rf /' # <-\n", "", ""), "pg_data", ""},
		{7, "pg_data relative", inv("", "        pg_data: pg/data # <-\n", "", ""), "pg_data", ""},
		{8, "pg_bin_dir climbing out", inv("", "        pg_bin_dir: /usr/lib/../../tmp/bin # <-\n", "", ""), "pg_bin_dir", ""},
		{9, "pgbackrest_repo_path substitution", inv("", "", "    pgbackrest_repo_path: /pg/$(id) # <-\n", ""), "pgbackrest_repo_path", ""},
		{10, "known_hosts with ~", inv("", "", "    pigwf_known_hosts: ~/.ssh/known_hosts # <-\n", ""), "pigwf_known_hosts", ""},
		{11, "key file with a newline", inv("", "", "    ansible_ssh_private_key_file: \"/root/.ssh/id\\nProxyCommand id\" # <-\n", ""), "ansible_ssh_private_key_file", ""},
		{12, "ansible_user with a command", inv("", "", "    ansible_user: 'root;id' # <-\n", ""), "ansible_user", ""},
		{13, "ansible_host with an ssh option", inv("{ pg_seq: 1, pg_role: primary, ansible_host: '10.0.0.1 -oProxyCommand=id' } # <-", "", "", ""), "ansible_host", ""},
		{14, "nodename with a command", inv("{ pg_seq: 1, pg_role: primary, nodename: 'pg-1$(id)' } # <-", "", "", ""), "nodename", ""},
		{15, "pg_namespace with a command", inv("", "        pg_namespace: '/pigwf; id' # <-\n", "", ""), "pg_namespace", ""},
		{16, "replication user with a quote", inv("", "        pg_replication_username: \"repl'; DROP ROLE x; --\" # <-\n", "", ""), "pg_replication_username", ""},
		{17, "admin password with a newline", inv("", "        pg_admin_password: \"x\\nALTER ROLE\" # <-\n", "", ""), "pg_admin_password", ""},
		{18, "approval timeout with a command", inv("", "        pigwf_approval_timeout: '1h; id' # <-\n", "", ""), "pigwf_approval_timeout", ""},
		{19, "pg_cluster with a newline", inv("", "", "", "    pg-evil:\n      hosts: { 10.0.0.9: { pg_seq: 1, pg_role: primary } }\n      vars: { pg_cluster: \"pg-evil\\nx\" } # <-\n"), "pg_cluster", ""},

		// packages that became apt-get options
		{20, "node_packages option", inv("", "", "    node_packages: [ '-oAPT::Update::Pre-Invoke::=id' ] # <-\n", ""), "node_packages[0]", ""},
		{21, "node_packages with a command", inv("", "", "    node_packages: [ 'postgresql-15; id' ] # <-\n", ""), "node_packages[0]", ""},
		{22, "node_packages several in one", inv("", "", "    node_packages: [ 'etcd,redis' ] # <-\n", ""), "node_packages[0]", ""},
		{23, "node_packages not a list", inv("", "", "    node_packages: postgresql-15 # <-\n", ""), "node_packages", ""},

		// generated files: pg_hba.conf, postgresql.conf, limits.d, sysctl.d
		{24, "hba address adds a trust line", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: \"10.0.0.0/8 scram-sha-256\\nhost all all 0.0.0.0/0 trust\", auth: pwd } # <-\n", "", ""), "pg_hba_rules[0].addr", ""},
		{25, "hba auth adds a line", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: intra, auth: \"pwd\\nhost all all 0.0.0.0/0 trust\" } # <-\n", "", ""), "pg_hba_rules[0].auth", ""},
		{26, "hba user is a Pigsty placeholder", inv("", "        pg_hba_rules:\n          - { user: '${dbsu}', db: all, addr: intra, auth: pwd } # <-\n", "", ""), "pg_hba_rules[0].user", ""},
		{27, "hba db with spaces", inv("", "        pg_hba_rules:\n          - { user: all, db: 'all all', addr: intra, auth: pwd } # <-\n", "", ""), "pg_hba_rules[0].db", ""},
		{28, "hba addr infra (unresolved alias)", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: infra, auth: pwd } # <-\n", "", ""), "pg_hba_rules[0].addr", ""},
		{29, "hba auth deny", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: intra, auth: deny } # <-\n", "", ""), "pg_hba_rules[0].auth", "reject"},
		{30, "hba peer over the network", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: world, auth: peer } # <-\n", "", ""), "pg_hba_rules[0].auth", ""},
		{31, "hba rule for replicas only", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: world, auth: trust, role: replica } # <-\n", "", ""), "pg_hba_rules[0].role", ""},
		{32, "hba raw lines", inv("", "        pg_hba_rules:\n          - { rules: [ 'host all all 0.0.0.0/0 trust' ] } # <-\n", "", ""), "pg_hba_rules[0].rules", ""},
		{33, "parameter value adds a line", inv("", "        pg_parameters: { log_line_prefix: \"x'\\nlisten_addresses = '*\" } # <-\n", "", ""), "pg_parameters.log_line_prefix", ""},
		{34, "parameter name with spaces", inv("", "        pg_parameters: { 'shared_buffers = 1GB #': x } # <-\n", "", ""), `pg_parameters."shared_buffers = 1GB #"`, ""},
		{35, "parameter value with a backslash", inv("", "        pg_parameters: { application_name: 'x\\' } # <-\n", "", ""), "pg_parameters.application_name", ""},
		{36, "sysctl value with a command", inv("", "", "    node_sysctl_params: { vm.swappiness: '1; reboot' } # <-\n", ""), "node_sysctl_params.vm.swappiness", ""},
		{37, "limit value adds a line", inv("", "", "    node_limits: { nofile: \"1024\\npostgres hard core unlimited\" } # <-\n", ""), "node_limits.nofile", ""},
		{38, "limit item unknown", inv("", "", "    node_limits: { 'nofile 1 *': 1 } # <-\n", ""), `node_limits."nofile 1 *"`, ""},

		// settings pigwf derives
		{39, "pg_parameters port", inv("", "        pg_parameters: { port: 5433 } # <-\n", "", ""), "pg_parameters.port", ""},
		{40, "pg_parameters archive_command", inv("", "        pg_parameters: { archive_command: /bin/true } # <-\n", "", ""), "pg_parameters.archive_command", ""},
		{41, "pg_parameters cluster_name", inv("", "        pg_parameters: { cluster_name: other } # <-\n", "", ""), "pg_parameters.cluster_name", ""},
		{42, "pg_parameters primary_conninfo", inv("", "        pg_parameters: { primary_conninfo: 'host=10.6.6.6' } # <-\n", "", ""), "pg_parameters.primary_conninfo", ""},
		{43, "pg_parameters recovery target", inv("", "        pg_parameters: { recovery_target_time: '2026-01-01' } # <-\n", "", ""), "pg_parameters.recovery_target_time", ""},
		{44, "pg_parameters hba_file", inv("", "        pg_parameters: { hba_file: /tmp/hba } # <-\n", "", ""), "pg_parameters.hba_file", ""},
		{45, "pg_parameters include_dir", inv("", "        pg_parameters: { include_dir: /tmp } # <-\n", "", ""), "pg_parameters.include_dir", ""},
		{46, "wal_level minimal", inv("", "        pg_parameters: { wal_level: minimal } # <-\n", "", ""), "pg_parameters.wal_level", ""},

		// users, databases, approvers
		{47, "user name with SQL", inv("", "        pg_users: [ { name: 'x\"; DROP ROLE postgres; --' } ] # <-\n", "", ""), "pg_users[0].name", ""},
		{48, "user field typo", inv("", "        pg_users: [ { name: app, pasword: secret } ] # <-\n", "", ""), "pg_users[0].pasword", "password"},
		{49, "user is pigwf's replication role", inv("", "        pg_users: [ { name: replicator } ] # <-\n", "", ""), "pg_users[0].name", ""},
		{50, "user twice", inv("", "        pg_users:\n          - { name: app }\n          - { name: app } # <-\n", "", ""), "pg_users[1].name", ""},
		{51, "user comment with a terminal escape", inv("", "        pg_users: [ { name: app, comment: \"\\e[2Jhi\" } ] # <-\n", "", ""), "pg_users[0].comment", ""},
		{52, "user comment with a bidi override", inv("", "        pg_users: [ { name: app, comment: \"x\\u202Ey\" } ] # <-\n", "", ""), "pg_users[0].comment", ""},
		{53, "user role with a space", inv("", "        pg_users: [ { name: app, roles: [ 'dbrole_admin, pg_write_server_files' ] } ] # <-\n", "", ""), "pg_users[0].roles[0]", ""},
		{54, "database name with a quote", inv("", "        pg_databases: [ { name: \"meta'\" } ] # <-\n", "", ""), "pg_databases[0].name", ""},
		{55, "approver with a newline", inv("", "        pigwf_approvers: [ \"alice\\nbob\" ] # <-\n", "", ""), "pigwf_approvers[0]", ""},
		{56, "approver twice", inv("", "        pigwf_approvers: [ alice, alice ] # <-\n", "", ""), "pigwf_approvers[1]", ""},

		// typos and keys pigwf would silently ignore
		{57, "pg_paramters", inv("", "        pg_paramters: { work_mem: 64MB } # <-\n", "", ""), "pg_paramters", "pg_parameters"},
		{58, "pg_synchronus_mode", inv("", "        pg_synchronus_mode: true # <-\n", "", ""), "pg_synchronus_mode", "pg_synchronous_mode"},
		{59, "nodname", inv("{ pg_seq: 1, pg_role: primary, nodname: db1 } # <-", "", "", ""), "nodname", "nodename"},
		{60, "unknown pigwf_ variable", inv("", "", "    pigwf_aprovers: [ alice ] # <-\n", ""), "pigwf_aprovers", "pigwf_approvers"},
		{61, "old Ansible name", inv("{ pg_seq: 1, pg_role: primary, ansible_ssh_host: 10.9.9.9 } # <-", "", "", ""), "ansible_ssh_host", "ansible_host"},
		{62, "group key typo", inv("", "", "", "    pg-other:\n      host: { 10.0.0.7: {} } # <-\n"), "host", "hosts"},
		{63, "cluster setting on one host", inv("{ pg_seq: 1, pg_role: primary, pg_port: 5433 } # <-", "", "", ""), "pg_port", ""},
		{64, "etcd_port below all.vars", inv("", "", "    etcd_port: 2379\n", "    dcs:\n      hosts: { 10.0.0.8: { etcd_port: 2479 } } # <-\n"), "etcd_port", ""},
		{65, "variable name with a control character", inv("", "        \"pg_port\\a\": 5432 # <-\n", "", ""), `"pg_port\a"`, ""},
		{66, "variable written twice", inv("", "        pg_port: 5432\n        pg_port: 6543 # <-\n", "", ""), "pg_port", ""},

		// duplicates
		{67, "host in two clusters", inv("", "", "", "    pg-other:\n      hosts:\n        10.0.0.2: { pg_seq: 1, pg_role: primary } # <-\n      vars: { pg_cluster: pg-other }\n"), "hosts.10.0.0.2", ""},
		{68, "host twice in one cluster", inv("", "", "", "    pg-other:\n      hosts:\n        10.0.0.5: { pg_seq: 1, pg_role: primary }\n        10.0.0.5: { pg_seq: 2, pg_role: replica } # <-\n      vars: { pg_cluster: pg-other }\n"), "hosts.10.0.0.5", ""},
		{69, "same SSH address twice", inv("{ pg_seq: 1, pg_role: primary }", "", "", "    pg-other:\n      hosts:\n        db7.example.com: { pg_seq: 1, pg_role: primary, ansible_host: 10.0.0.1 } # <-\n      vars: { pg_cluster: pg-other }\n"), "hosts.db7.example.com", ""},
		{70, "nodename twice", inv("{ pg_seq: 1, pg_role: primary, nodename: pg-test-2 } # <-", "", "", ""), "nodename", ""},
		{71, "nodenames sharing a slot name", inv("{ pg_seq: 1, pg_role: primary, nodename: pg-test.2 } # <-", "", "", ""), "nodename", ""},
		{72, "cluster name twice", inv("", "", "", "    pg-copy:\n      hosts: { 10.0.0.7: { pg_seq: 1, pg_role: primary } }\n      vars: { pg_cluster: pg-test } # <-\n"), "pg_cluster", ""},
		{73, "host address not an address", inv("", "", "", "    pg-other:\n      hosts:\n        10.0.0.256: { pg_seq: 1, pg_role: primary } # <-\n      vars: { pg_cluster: pg-other }\n"), "hosts.10.0.0.256", ""},

		// port clashes on one host
		{74, "pg_port on the agent's port", inv("", "        pg_port: 8008 # <-\n", "", ""), "pg_port", ""},
		{75, "pg_port on etcd's port", inv("", "        pg_port: 2379 # <-\n", "", ""), "pg_port", ""},
		{76, "pg_port on SSH", inv("", "        pg_port: 22 # <-\n", "", ""), "pg_port", ""},
		{77, "etcd client and peer on one port", inv("", "", "    etcd_port: 2380 # <-\n", ""), "etcd_port", ""},
		{78, "pgbouncer on pg_port", inv("", "        pgbouncer_port: 5432 # <-\n", "", ""), "pgbouncer_port", ""},

		// YAML tricks
		{79, "hostile value through a merge key", "x-defaults: &evil { etcd_port: '2379`id`' } # <-\n" + inv("", "        <<: *evil\n", "", ""), "etcd_port", ""},
		{80, "merge of a scalar", inv("", "        <<: 5 # <-\n", "", ""), "pg-test.vars", ""},
		{81, "mapping merging itself", inv("", "        pg_parameters: &loop { work_mem: 4MB, <<: *loop } # <-\n", "", ""), "pg_parameters", ""},
		{83, "merge bomb", bomb() + inv("", "        <<: *m9 # <-\n", "", ""), "pg-test.vars", ""},
		{84, "non-ASCII admin password", inv("", "        pg_admin_password: \"Pässwort\" # <-\n", "", ""), "pg_admin_password", "ASCII"},
		{85, "non-ASCII user password", inv("", "        pg_users: [ { name: u1, password: \"ﬁsh\" } ] # <-\n", "", ""), "pg_users[0].password", "ASCII"},
		{86, "plain text set per cluster", inv("", "        pigwf_insecure_plaintext: true # <-\n", "", ""), "pigwf_insecure_plaintext", ""},
		{87, "plain text not a boolean", inv("", "", "    pigwf_insecure_plaintext: 'yes; id' # <-\n", ""), "pigwf_insecure_plaintext", ""},
		{82, "anchored hostile scalar", "x-names: [ &bad 'n1;id' ] # <-\n" + inv("{ pg_seq: 1, pg_role: primary, nodename: *bad }", "", "", ""), "nodename", ""},

		// TLS
		{88, "pg_parameters ssl off", inv("", "        pg_parameters: { ssl: 'off' } # <-\n", "", ""), "pg_parameters.ssl", ""},
		{89, "pg_parameters another certificate", inv("", "        pg_parameters: { ssl_cert_file: /tmp/x.crt } # <-\n", "", ""), "pg_parameters.ssl_cert_file", ""},
		{90, "hba cert over the socket", inv("", "        pg_hba_rules:\n          - { user: all, db: all, addr: local, auth: cert } # <-\n", "", ""), "pg_hba_rules[0].auth", "localhost"},

		// member tags (pg_tags), written into the agents' config and matched by health checks
		{91, "tag typo", inv("{ pg_seq: 1, pg_role: primary, pg_tags: { nofailovr: true } } # <-", "", "", ""), "pg_tags.nofailovr", "did you mean nofailover"},
		{92, "tag switch not a boolean", inv("", "        pg_tags: { noloadbalance: 'yes; id' } # <-\n", "", ""), "pg_tags.noloadbalance", "true or false"},
		{93, "tag value with a newline", inv("", "        pg_tags: { dc: \"east\\nwest\" } # <-\n", "", ""), "pg_tags.dc", ""},
		{94, "Patroni tag pigwf ignores", inv("", "        pg_tags: { clonefrom: true } # <-\n", "", ""), "pg_tags.clonefrom", "remove it"},
		{95, "offline member tagged nofailover: false", inv("", "", "", "    pg-other:\n      hosts:\n        10.0.0.7: { pg_seq: 1, pg_role: primary }\n"+
			"        10.0.0.8: { pg_seq: 2, pg_role: offline, pg_tags: { nofailover: false } } # <-\n      vars: { pg_cluster: pg-other }\n"), "pg_tags.nofailover", "pg_role: replica"},
		{96, "tags not a mapping", inv("", "        pg_tags: [ dc ] # <-\n", "", ""), "pg_tags", ""},
		{97, "tag name with a space", inv("", "        pg_tags: { 'd c': east } # <-\n", "", ""), `pg_tags."d c"`, ""},
		{98, "tag holding a secret", inv("", "        pg_tags: { api_token: abc } # <-\n", "", ""), "pg_tags.api_token", "public"},
	}
	seen := map[int]bool{}
	for _, tc := range cases {
		if seen[tc.n] {
			t.Fatalf("case number %d used twice", tc.n)
		}
		seen[tc.n] = true
		t.Run(fmt.Sprintf("%02d-%s", tc.n, tc.name), func(t *testing.T) {
			line := markedLine(t, tc.yaml)
			inv, err := inventory.ParseInventory("hostile.yml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("loaded: %+v\n%s", inv.Clusters, tc.yaml)
			}
			var verr *inventory.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %T is not a ValidationError: %v", err, err)
			}
			for _, p := range verr.Problems {
				if p.Field == tc.field && p.Line == line && strings.Contains(p.Fix, tc.fix) {
					if p.File != "hostile.yml" || p.Problem == "" {
						t.Errorf("problem without file or text: %+v", p)
					}
					return
				}
			}
			t.Errorf("no problem with field %q on line %d (fix containing %q); got:\n%v\n%s", tc.field, line, tc.fix, err, tc.yaml)
		})
	}
	if len(cases) < 40 {
		t.Errorf("%d hostile inventories, want at least 40", len(cases))
	}
}

// bomb defines m0..m9, each merging the previous one ten times: 10^10 visits if expanded.
func bomb() string {
	var b strings.Builder
	b.WriteString("x-m0: &m0 { pg_rpo: 1 }\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-m%d: &m%d { <<: [%s] }\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	return b.String()
}

// markedLine is the 1-based line with the "# <-" marker.
func markedLine(t *testing.T, text string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "# <-") {
			return i + 1
		}
	}
	t.Fatalf("no line marked '# <-' in:\n%s", text)
	return 0
}

// Every problem is reported, not only the first, each with its own line.
func TestHostileAllProblemsAtOnce(t *testing.T) {
	text := inv("{ pg_seq: 1, pg_role: primary, ansible_port: '22;id' }",
		"        pg_paramters: {}\n        pg_parameters: { port: 1 }\n", "    etcd_port: '2379$(id)'\n", "")
	_, err := inventory.ParseInventory("inv.yml", []byte(text))
	var verr *inventory.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	got := map[string]int{}
	for _, p := range verr.Problems {
		got[p.Field] = p.Line
	}
	want := map[string]int{"ansible_port": 5, "pg_paramters": 9, "pg_parameters.port": 10, "etcd_port": 18}
	for f, l := range want {
		if got[f] != l {
			t.Errorf("%s: line %d, want %d; all problems:\n%v", f, got[f], l, err)
		}
	}
	for i := 1; i < len(verr.Problems); i++ {
		if verr.Problems[i].Line < verr.Problems[i-1].Line {
			t.Errorf("problems not in file order:\n%v", err)
		}
	}
}

// The base of the hostile cases and Pigsty's own variables load: the rules refuse hostile
// values, not the inventories people have. (The lab's inventory is checked where it is rendered,
// deploy/lab's TestInventoryText.)
func TestGoodInventoriesStillLoad(t *testing.T) {
	cases := []struct {
		n    int
		name string
		yaml string
	}{
		{1, "the hostile cases' base", inv("", "", "", "")},
		{3, "Pigsty's variables and other tools' keys", inv("{ pg_seq: 1, pg_role: primary, pg_upstream: 10.0.0.2, pg_weight: 100, ansible_connection: ssh }",
			`        pg_libs: 'pg_stat_statements, auto_explain'
        pg_vip_enabled: true
        pg_vip_address: 10.0.0.100/24
        pgb_hba_rules: [ { user: all, db: all, addr: intra, auth: pwd } ]
        patroni_watchdog_mode: off
        pgbouncer_enabled: true
        pg_users:
          - { name: app, password: 'S3cr3t:with\back$lash', pgbouncer: true, connlimit: -1, expire_in: 3650, roles: [dbrole_readwrite], parameters: { search_path: public } }
        pg_databases:
          - { name: app, owner: app, baseline: cmdb.sql, schemas: [ app ], extensions: [ { name: vector } ], template: template1 }
        pg_hba_rules:
          - { user: +dbrole_readonly, db: all, addr: 10.0.0.0/8, auth: ssl, title: 'read-only from the VPC', role: common, order: 500 }
          - { user: dbuser_meta, db: meta, addr: db.example.com, auth: md5 }
          - { user: all, db: replication, addr: local, auth: peer }
          - { user: dbuser_dba, db: all, addr: world, auth: cert, title: 'client certificate from the deployment CA' }
          - { user: dbuser_app, db: all, addr: intra, auth: scram }
          - { user: dbuser_sha, db: all, addr: intra, auth: sha }
        pg_parameters: { shared_buffers: 1GB, pg_stat_statements.max: 10000, shared_preload_libraries: 'pg_stat_statements', wal_level: logical, log_line_prefix: '%m [%p] ' }
`, `    node_tune: oltp
    node_packages: [ postgresql-15, pgbackrest, etcd-client, libpq5, g++ ]
    node_limits: { nofile: 1048576, memlock: unlimited, core: -1 }
    etcd_port: 2379
    etcd_peer_port: 2380
    node_crontab: [ '00 01 * * * postgres /pg/bin/pg-backup full' ]
    admin_ip: 10.0.0.10
    region: default
    pg_conf: oltp.yml
`, "")},
		{5, "member tags", inv("{ pg_seq: 1, pg_role: primary, pg_tags: { noloadbalance: true, dc: east, weight: 5 } }",
			"        pg_tags: { nosync: true, rack: r1.b-2 }\n", "", "")},
		{4, "an FQDN nodename, hosts by name, an IPv6 host", inv("{ pg_seq: 1, pg_role: primary, nodename: db1.example.com }", "", "",
			"    pg-v6:\n      hosts:\n        'fd00::11': { pg_seq: 1, pg_role: primary }\n        db12.example.com: { pg_seq: 2, pg_role: replica }\n      vars: { pg_cluster: pg-v6, pg_port: 5532 }\n")},
	}
	for _, tc := range cases {
		if _, err := inventory.ParseInventory("good.yml", []byte(tc.yaml)); err != nil {
			t.Errorf("case %d (%s): %v", tc.n, tc.name, err)
		}
	}
}

// YAML aliases and merge keys are resolved: merged values are used, the mapping's own keys win
// over merged ones, and an alias stands for its anchor's value (not its name).
func TestMergeKeysAndAliases(t *testing.T) {
	text := `x-common: &common
  pg_port: 5532
  pg_parameters: &params { work_mem: 64MB }
  pigwf_approvers: [alice]
x-host: &replica { pg_role: replica }
x-path: &data /data/pg
all:
  children:
    pg-test:
      hosts:
        10.0.0.1: { pg_seq: 1, pg_role: primary }
        10.0.0.2: { <<: *replica, pg_seq: 2 }
        10.0.0.3: { <<: *replica, pg_seq: 3, pg_role: offline }
      vars:
        <<: *common
        pg_cluster: pg-test
        pg_data: *data
        pigwf_approvers: [bob]
    etcd:
      hosts: { 10.0.0.1: {} }
  vars:
    <<: [ { etcd_port: 2479 }, { etcd_port: 9999, node_limits: { <<: { nofile: 1024 } } } ]
`
	inv, err := inventory.ParseInventory("merge.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := inv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	if c.PG.Port != 5532 || c.PG.Parameters["work_mem"] != "64MB" || c.PG.DataDir != "/data/pg" {
		t.Errorf("merged values not used: port %d, parameters %v, data %q", c.PG.Port, c.PG.Parameters, c.PG.DataDir)
	}
	if len(c.PG.Approvers) != 1 || c.PG.Approvers[0] != "bob" {
		t.Errorf("approvers = %v, want the group's own [bob] over the merged [alice]", c.PG.Approvers)
	}
	roles := map[int]string{}
	for _, h := range c.Hosts {
		roles[h.Seq] = h.Role
	}
	if roles[2] != inventory.RoleReplica || roles[3] != inventory.RoleOffline {
		t.Errorf("roles = %v, want 2 merged replica, 3 its own offline", roles)
	}
	if got := c.Hosts[0].Node.Limits; got["nofile"] != "1024" || len(got) != 1 {
		t.Errorf("limits = %v, want the nested merge's nofile 1024", got)
	}
	if len(inv.Etcd) != 1 || inv.Etcd[0] != "https://10.0.0.1:2479" {
		t.Errorf("etcd = %v, want the first merged mapping's port 2479", inv.Etcd)
	}
}

// The port clash check knows the agent's port; it must be the one the CLI and workflows use.
func TestAgentAPIPortMatchesStarter(t *testing.T) {
	if inventory.AgentAPIPort != starter.AgentAPIPort {
		t.Errorf("inventory.AgentAPIPort = %d, starter.AgentAPIPort = %d", inventory.AgentAPIPort, starter.AgentAPIPort)
	}
}

// pg_tags reaches each host as its tags: the host's own mapping replaces the group's (as every
// variable, host > group > all), switches as booleans, the rest as custom tags.
func TestHostTags(t *testing.T) {
	text := inv("{ pg_seq: 1, pg_role: primary, pg_tags: { noloadbalance: true, dc: east, weight: 5 } }",
		"        pg_tags: { nosync: true, nofailover: false, rack: r1 }\n", "", "")
	i, err := inventory.ParseInventory("tags.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	hosts := i.Clusters["pg-test"].Hosts
	want := []haagent.ClusterTags{
		{NoLoadBalance: true, Custom: map[string]string{"dc": "east", "weight": "5"}},
		{NoSync: true, Custom: map[string]string{"rack": "r1"}},
	}
	for n, h := range hosts {
		if !reflect.DeepEqual(h.Tags, want[n]) {
			t.Errorf("host %s: tags %+v, want %+v", h.Addr, h.Tags, want[n])
		}
	}
}
