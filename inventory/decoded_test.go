package inventory

import (
	"strings"
	"testing"
)

// A decoded value is refused with the loader's own words: the same problem and fix as the
// value written in a file, under the caller's field name.
func TestCheckDecodedIsTheLoadersRule(t *testing.T) {
	cases := []struct {
		variable string
		value    any
		yaml     string // the value as written in all.vars
	}{
		{"etcd_port", "2379$(id)", `"2379$(id)"`},
		{"etcd_port", 70000, "70000"},
		{"ansible_host", "10.0.0.1;rm -rf /", `"10.0.0.1;rm -rf /"`},
		{"pg_data", "/pg/data dir", `"/pg/data dir"`},
		{"node_packages", []string{"postgresql-15", "--force-yes"}, `[postgresql-15, "--force-yes"]`},
		{"pg_parameters", map[string]string{"archive_command": "rm -rf /"}, `{archive_command: "rm -rf /"}`},
	}
	for _, c := range cases {
		got := CheckDecoded("input.x", c.variable, c.value)
		_, err := ParseInventory("inv.yml", []byte("all:\n  children:\n    etcd:\n      hosts: { 10.0.0.1: {} }\n  vars:\n    "+c.variable+": "+c.yaml+"\n"))
		verr, ok := err.(*ValidationError)
		if len(got) != 1 || !ok {
			t.Errorf("%s = %v: decoded %v; in a file %v", c.variable, c.value, got, err)
			continue
		}
		var file *FieldError
		for i, p := range verr.Problems {
			if strings.HasPrefix(p.Field, c.variable) {
				file = &verr.Problems[i]
			}
		}
		if file == nil || file.Problem != got[0].Problem || file.Fix != got[0].Fix {
			t.Errorf("%s = %v: decoded %+v, in a file %+v", c.variable, c.value, got[0], file)
		}
		if want := "input.x" + strings.TrimPrefix(file.Field, c.variable); got[0].Field != want {
			t.Errorf("%s = %v: field %q, want %q", c.variable, c.value, got[0].Field, want)
		}
		if msg := got[0].Error(); !strings.HasPrefix(msg, got[0].Field+": ") {
			t.Errorf("%q does not start with the field", msg)
		}
	}
}

func TestCheckDecodedValues(t *testing.T) {
	good := []struct {
		rule  string
		value any
	}{
		{RuleHost, "10.0.0.1"}, {RuleHost, "fd00::11"}, {RuleHost, "db1.example.com"},
		{RuleHostURL, "http://10.0.0.1:2379"}, {RuleHostURL, "https://[fd00::11]:8008"}, {RuleHostURL, "http://etcd-1.example.com:2379/"},
		{RulePort, 8008}, {RuleRoleName, "pg_monitor"}, {RuleDatabaseName, "meta"}, {RuleText, "role for global read-only access"},
		{RuleLocalPath, "/etc/pigwf/inventory.yml"},
		{"nodename", "pg-test-1"}, {"pg_cluster", "pg-test"}, {"node_sysctl_params", DefaultSysctl}, {"node_limits", DefaultLimits},
		{"node_packages", DefaultPackages}, {"pg_namespace", "/pigwf"}, {"pgbackrest_retention_full", 2},
	}
	for _, c := range good {
		if p := CheckDecoded("f", c.rule, c.value); p != nil {
			t.Errorf("%s %v refused: %v", c.rule, c.value, p)
		}
	}
	bad := []struct {
		rule  string
		value any
		field string
	}{
		{RuleHost, "10.0.0.1;rm -rf /", "f"},
		{RuleHost, "", "f"},
		{RuleHostURL, "http://10.0.0.1:70000", "f"},
		{RuleHostURL, "http://10.0.0.1:2379/v3/kv?x=1", "f"},
		{RuleHostURL, "http://user:pw@10.0.0.1:2379", "f"},
		{RuleHostURL, "http://10.0.0.1", "f"},
		{RuleHostURL, "http://$(id):2379", "f"},
		{RuleHostURL, "file:///etc/passwd", "f"},
		{RulePort, 0, "f"},
		{RulePort, -1, "f"},
		{RuleRoleName, `x"; DROP ROLE postgres; --`, "f"},
		{RuleDatabaseName, "Meta", "f"},
		{RuleText, "a\nb", "f"},
		{RuleLocalPath, "inventory.yml", "f"},
		{"pg_cluster", "pg-test'", "f"},
		{"node_sysctl_params", map[string]string{"vm.swappiness": "1; reboot"}, "f.vm.swappiness"},
		{"node_packages", []string{"ok", "-o=APT::x"}, "f[1]"},
	}
	for _, c := range bad {
		p := CheckDecoded("f", c.rule, c.value)
		if len(p) != 1 || p[0].Field != c.field || p[0].Line != 0 {
			t.Errorf("%s %q: %+v, want one problem of %s", c.rule, c.value, p, c.field)
		}
	}
}

// An entry is checked by its list's rule, fields renamed to the caller's.
func TestCheckEntry(t *testing.T) {
	if p := CheckEntry("hba[2]", "pg_hba_rules", map[string]string{"user": "all", "db": "all", "addr": "10.0.0.0/8", "auth": "scram-sha-256"}); p != nil {
		t.Errorf("a good rule refused: %v", p)
	}
	p := CheckEntry("hba[2]", "pg_hba_rules", map[string]string{"user": "all", "db": "all", "addr": "0.0.0.0/0 trust", "auth": "md5"})
	if len(p) != 1 || p[0].Field != "hba[2].addr" {
		t.Errorf("got %+v, want one problem of hba[2].addr", p)
	}
}

func TestCheckDecodedUnknownRulePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("an unknown rule did not panic")
		}
	}()
	CheckDecoded("f", "pg_dat", "/pg/data")
}
