package inventory

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const goodInventory = `all:
  children:
    pg-test:
      hosts:
        10.213.0.11: { pg_seq: 1, pg_role: primary }
        10.213.0.12: { pg_seq: 2, pg_role: replica, ansible_port: 2222 }
        10.213.0.13: { pg_seq: 3, pg_role: replica, nodename: custom-3 }
      vars:
        pg_cluster: pg-test
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, roles: [dbrole_admin] }
        pg_databases:
          - { name: meta, owner: dbuser_meta }
        pg_hba_rules:
          - { user: dbuser_meta, db: all, addr: intra, auth: pwd, title: meta }
    infra:
      hosts:
        10.213.0.10: {}
  vars:
    ansible_user: admin
    pigwf_known_hosts: /lab/known_hosts
    node_sysctl_params: { net.core.somaxconn: 4096 }
`

func TestLoadGoodInventory(t *testing.T) {
	inv, err := ParseInventory("inv.yml", []byte(goodInventory))
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	c, err := inv.Cluster("pg-test")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts) != 3 || c.Primary().Addr != "10.213.0.11" {
		t.Fatalf("hosts = %+v", c.Hosts)
	}
	h2 := c.Hosts[1]
	if h2.Node.SSHPort != 2222 || h2.Node.SSHUser != "admin" || h2.Node.KnownHosts != "/lab/known_hosts" || h2.Node.Nodename != "pg-test-2" {
		t.Errorf("host 2 vars = %+v", h2.Node)
	}
	if c.Hosts[2].Node.Nodename != "custom-3" {
		t.Errorf("nodename override lost: %+v", c.Hosts[2].Node)
	}
	if got := c.Hosts[0].Node.Sysctl; len(got) != 1 || got["net.core.somaxconn"] != "4096" {
		t.Errorf("sysctl = %v, want the inventory's one setting", got)
	}
	if got := c.Hosts[0].Node.Packages; len(got) != 4 || got[3] != "haproxy" {
		t.Errorf("default packages = %v", c.Hosts[0].Node.Packages)
	}
	if len(c.Users) != 1 || c.Users[0].Password != "DBUser.Meta" || len(c.Databases) != 1 || len(c.HBARules) != 1 {
		t.Errorf("users/dbs/hba = %+v %+v %+v", c.Users, c.Databases, c.HBARules)
	}
	if _, err := inv.Cluster("infra"); err != nil {
		t.Errorf("infra group: %v", err)
	}
	sel, err := c.SelectHosts([]string{"pg-test-2", "10.213.0.11"})
	if err != nil || len(sel) != 2 || sel[0].Seq != 1 {
		t.Errorf("select = %+v, %v", sel, err)
	}
	if _, err := c.SelectHosts([]string{"10.9.9.9"}); err == nil || !strings.Contains(err.Error(), "10.9.9.9 are not in cluster pg-test") {
		t.Errorf("select unknown node: %v", err)
	}
}

// Each bad inventory yields one clear error naming file:line, the field and the fix.
func TestBadInventories(t *testing.T) {
	cases := []struct {
		n    int
		name string
		yaml string
		want []string // substrings of the error
	}{
		{1, "yaml syntax error", "all:\n  children:\n    pg-test:\n      hosts:\n\t10.0.0.1: {}\n", []string{"inv.yml: line 5", "fix the YAML syntax"}},
		{2, "no primary", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: replica}\n      vars: {pg_cluster: pg-test}\n", []string{"inv.yml:3: cluster pg-test: has no primary", "set pg_role: primary on exactly one host"}},
		{3, "two primaries", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n        10.0.0.2: {pg_seq: 2, pg_role: primary}\n      vars: {pg_cluster: pg-test}\n", []string{"has 2 primaries (10.0.0.1, 10.0.0.2)"}},
		{4, "duplicate pg_seq", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n        10.0.0.2: {pg_seq: 1, pg_role: replica}\n      vars: {pg_cluster: pg-test}\n", []string{"inv.yml:6: cluster pg-test, host 10.0.0.2: pg_seq: 1 is also used by host 10.0.0.1", "unique"}},
		{5, "bad cluster name", "all:\n  children:\n    pg_Test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n      vars: {pg_cluster: pg_Test}\n", []string{"inv.yml:6: cluster pg_Test: pg_cluster: \"pg_Test\" is not a valid cluster name", "lower-case"}},
		{6, "unknown role", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n        10.0.0.2: {pg_seq: 2, pg_role: leader}\n      vars: {pg_cluster: pg-test}\n", []string{"inv.yml:6: cluster pg-test, host 10.0.0.2: pg_role: \"leader\" is not a role; use primary, replica or offline"}},
		{7, "missing pg_seq", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_role: primary}\n      vars: {pg_cluster: pg-test}\n", []string{"inv.yml:5: cluster pg-test, host 10.0.0.1: pg_seq: is missing"}},
		{8, "pg_seq not a number", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: one, pg_role: primary}\n      vars: {pg_cluster: pg-test}\n", []string{"pg_seq: \"one\" is not a positive integer"}},
		{9, "no all", "pg-test:\n  hosts: {}\n", []string{"no 'all' group at the top"}},
		{10, "no hosts", "all:\n  children:\n    pg-test:\n      vars: {pg_cluster: pg-test}\n", []string{"cluster pg-test: hosts: no hosts"}},
		{11, "bad port", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary, ansible_port: 70000}\n      vars: {pg_cluster: pg-test}\n", []string{"ansible_port: \"70000\" is not a TCP port"}},
		{12, "role without pg_cluster", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n", []string{"has pg_seq/pg_role but its group has no pg_cluster", "add 'pg_cluster: pg-test' under pg-test.vars"}},
		{13, "db owner unknown", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n      vars:\n        pg_cluster: pg-test\n        pg_databases: [{name: meta, owner: nobody}]\n", []string{"owner \"nobody\" of database meta is not in pg_users"}},
		{14, "bad host address", "all:\n  children:\n    pg-test:\n      hosts:\n        'bad host!': {pg_seq: 1, pg_role: primary}\n      vars: {pg_cluster: pg-test}\n", []string{"is not an IP address or host name"}},
		{15, "empty file", "", []string{"the file is empty"}},
		{16, "sysctl injection", "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary}\n      vars: {pg_cluster: pg-test, node_sysctl_params: {'vm.x; rm -rf /': 1}}\n", []string{"is not a sysctl setting"}},
	}
	for _, tc := range cases {
		_, err := ParseInventory("inv.yml", []byte(tc.yaml))
		if err == nil {
			t.Errorf("case %d (%s): no error", tc.n, tc.name)
			continue
		}
		if !IsValidation(err) {
			t.Errorf("case %d (%s): error %T is not a validation error", tc.n, tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("case %d (%s): error %q lacks %q", tc.n, tc.name, err, w)
			}
		}
	}
}

func TestUnknownCluster(t *testing.T) {
	inv, err := ParseInventory("inv.yml", []byte(goodInventory))
	if err != nil {
		t.Fatal(err)
	}
	_, err = inv.Cluster("pg-tset")
	if err == nil || !strings.Contains(err.Error(), `cluster "pg-tset" is not in the inventory; clusters there: infra, pg-test`) {
		t.Fatalf("err = %v", err)
	}
}

func TestKeySuggestions(t *testing.T) {
	// Every key pigwf reads or knows from Pigsty is accepted as is.
	for _, k := range append(pigwfKeys(), pigstyKeys...) {
		if p, f := checkKey(k); p != "" {
			t.Errorf("known key %s refused: %s; %s", k, p, f)
		}
	}
	if p, f := checkKey("pg_synchronous_mode_stict"); p == "" || !strings.Contains(f, "pg_synchronous_mode_strict") {
		t.Errorf("typo not caught: %q %q", p, f)
	}
}

// pg_rto: absent is the agents' default (0 here); an integer is seconds as Pigsty writes it; a
// duration says less than a second; a lease the agents refuse is refused with the field and fix.
func TestRTO(t *testing.T) {
	base := "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary%s}\n      vars:\n        pg_cluster: pg-test\n%s"
	for i, c := range []struct {
		host    string
		vars    string
		want    time.Duration
		problem string
	}{
		{"", "", 0, ""},
		{"", "        pg_rto: 30\n", 30 * time.Second, ""},
		{"", "        pg_rto: 500ms\n", 500 * time.Millisecond, ""},
		{"", "        pg_rto: 2s\n", 2 * time.Second, ""},
		{"", "        pg_rto: 100ms\n", 0, "inv.yml:8: cluster pg-test: pg_rto: 100ms is not a lease the HA agents take"},
		{"", "        pg_rto: 120\n", 0, "use a value from 150ms to 60s"},
		{"", "        pg_rto: soon\n", 0, `pg_rto: "soon" is not a number of seconds or a duration; write seconds as Pigsty does (30)`},
		{"", "        pg_rto: -1\n", 0, "pg_rto: -1s is not a lease"},
		{", pg_rto: 2s", "", 0, "pg_rto: is ignored here: a cluster setting"},
	} {
		inv, err := ParseInventory("inv.yml", []byte(fmt.Sprintf(base, c.host, c.vars)))
		if c.problem != "" {
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("%d: err = %v, want %q", i+1, err, c.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i+1, err)
			continue
		}
		if cl, _ := inv.Cluster("pg-test"); cl.PG.RTO != c.want {
			t.Errorf("%d: RTO %v, want %v", i+1, cl.PG.RTO, c.want)
		}
	}
}

// pg_backup_source: leader by default, replica when written; anything else refused with the field
// and the fix; a value on one host is a cluster setting in the wrong place.
func TestBackupSource(t *testing.T) {
	base := "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {pg_seq: 1, pg_role: primary%s}\n      vars:\n        pg_cluster: pg-test\n%s"
	cases := []struct {
		name, host, vars string
		want             string // the source read; "" when refused
		problem          string
	}{
		{"default", "", "", BackupSourceLeader, ""},
		{"leader", "", "        pg_backup_source: leader\n", BackupSourceLeader, ""},
		{"replica", "", "        pg_backup_source: replica\n", BackupSourceReplica, ""},
		{"unknown word", "", "        pg_backup_source: standby\n", "", `inv.yml:8: cluster pg-test: pg_backup_source: "standby" is not a backup source; write leader (the default) or replica`},
		{"a list", "", "        pg_backup_source: [replica]\n", "", "pg_backup_source: must be a single value"},
		{"on a host", ", pg_backup_source: replica", "", "", "pg_backup_source: is ignored here: a cluster setting"},
		{"typo", "", "        pg_backup_sourc: replica\n", "", "did you mean pg_backup_source?"},
		{"pg_port on the server's port", "", "        pg_backup_source: replica\n        pg_port: 8432\n", "", "pgBackRest's TLS server (8432"},
		{"the server's port free without it", "", "        pg_port: 8432\n", BackupSourceLeader, ""},
	}
	for _, c := range cases {
		inv, err := ParseInventory("inv.yml", []byte(fmt.Sprintf(base, c.host, c.vars)))
		if c.problem != "" {
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		cl, _ := inv.Cluster("pg-test")
		if cl.PG.BackupSource != c.want {
			t.Errorf("%s: source %q, want %q", c.name, cl.PG.BackupSource, c.want)
		}
	}
}
