package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/haproxy"
	"github.com/pigwf/pigwf/inventory"
)

func loadText(t *testing.T, text string) (*inventory.Inventory, error) {
	t.Helper()
	return inventory.ParseInventory("inv.yml", []byte(text))
}

// TestServicesDefault: a cluster that names no service gets Pigsty's four, with pigwf's fast
// check timing.
func TestServicesDefault(t *testing.T) {
	iv, err := loadText(t, inv("", "", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	c := iv.Clusters["pg-test"]
	var names []string
	for _, s := range c.Services {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "primary,replica,default,offline" || !c.ServicesEnabled {
		t.Errorf("services %v enabled %v; want Pigsty's four, enabled", names, c.ServicesEnabled)
	}
	if c.ServiceCheck != haproxy.FastTiming() {
		t.Errorf("check timing %+v; want FastTiming", c.ServiceCheck)
	}
}

// TestServicesPigstyForm: Pigsty's own pg_default_services (JMESPath selectors) load as roles,
// pg_services add to them, and pigwf_service_check overrides the timing.
func TestServicesPigstyForm(t *testing.T) {
	group := "        pg_default_services:\n" +
		"          - { name: primary ,port: 5433 ,dest: default  ,check: /primary   ,selector: \"[]\" }\n" +
		"          - { name: replica ,port: 5434 ,dest: default  ,check: /read-only ,selector: \"[]\" , backup: \"[? pg_role == `primary` || pg_role == `offline` ]\" }\n" +
		"          - { name: offline ,port: 5438 ,dest: postgres ,check: /replica   ,selector: \"[? pg_role == `offline` || pg_offline_query ]\" , backup: \"[? pg_role == `replica` && !pg_offline_query]\"}\n" +
		"        pg_services:\n" +
		"          - { name: standby, port: 5435, dest: 6543, check: '/replica?lag=16MB', selector: [replica], balance: leastconn, maxconn: 100 }\n" +
		"        pigwf_service_check: { inter: 200ms, rise: 2 }\n"
	iv, err := loadText(t, inv("", group, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	got := iv.Clusters["pg-test"].Services
	want := []haproxy.Service{
		{Name: "primary", Port: 5433, Check: "/primary"},
		{Name: "replica", Port: 5434, Check: "/read-only", Backup: []string{"primary", "offline"}},
		{Name: "offline", Port: 5438, Check: "/replica", Selector: []string{"offline"}, Backup: []string{"replica"}},
		{Name: "standby", Port: 5435, DestPort: 6543, Check: "/replica?lag=16MB", Selector: []string{"replica"}, Balance: "leastconn", MaxConn: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("services %+v; want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Port != w.Port || g.DestPort != w.DestPort || g.Check != w.Check || strings.Join(g.Selector, ",") != strings.Join(w.Selector, ",") ||
			strings.Join(g.Backup, ",") != strings.Join(w.Backup, ",") || g.Balance != w.Balance || g.MaxConn != w.MaxConn {
			t.Errorf("service %d: %+v; want %+v", i, g, w)
		}
	}
	tm := iv.Clusters["pg-test"].ServiceCheck
	if tm.Inter != 200*time.Millisecond || tm.Rise != 2 || tm.Fall != haproxy.FastTiming().Fall {
		t.Errorf("timing %+v; want inter 200ms rise 2, the rest pigwf's default", tm)
	}
}

// TestServicesRefused: each bad service setting is refused at load naming the field and a fix.
func TestServicesRefused(t *testing.T) {
	for i, tc := range []struct {
		group, field, problem string
	}{
		{"        pg_services: [ { name: x, port: 5440, options: 'server evil 1.2.3.4:1' } ]\n", "pg_services[0].options", "raw HAProxy options"},
		{"        pg_services: [ { name: x, port: 5440, dest: pgbouncer } ]\n", "pg_services[0].dest", "no PgBouncer"},
		{"        pg_services: [ { name: x, port: 5440, selector: '[? pg_weight > `1` ]' } ]\n", "pg_services[0].selector", "by pg_role only"},
		{"        pg_services: [ { name: x, port: 5440, selector: [leader] } ]\n", "pg_services[0].selector", "not a role"},
		{"        pg_services: [ { name: x, port: 5440, check: \"/primary\\nserver evil\" } ]\n", "pg_services[0].check", "not a health check path"},
		{"        pg_services: [ { name: 'x y', port: 5440 } ]\n", "pg_services[0].name", "not a service name"},
		{"        pg_services: [ { name: x } ]\n", "pg_services[0].port", "is missing"},
		{"        pg_services: [ { name: x, port: 5440, ip: 0.0.0.0 } ]\n", "pg_services[0].ip", "every address"},
		{"        pg_services: [ { name: x, port: 5440, prot: 1 } ]\n", `pg_services[0].prot`, "not a field"},
		{"        pg_services: [ { name: primary, port: 5440 } ]\n", "pg_services", "defined twice"},
		{"        pg_services: [ { name: x, port: 5433 } ]\n", "pg_services", "as service primary does"},
		{"        pg_services: [ { name: x, port: 8008 } ]\n", "pg_services", "port"},
		{"        pigwf_service_check: { inter: 1ms }\n", "pigwf_service_check", "want 10ms to 1h"},
		{"        pigwf_service_check: { rise: x }\n", "pigwf_service_check.rise", "not an integer"},
		{"        pigwf_service_check: { intr: 100ms }\n", "pigwf_service_check.intr", "not a check setting"},
		{"        haproxy_enabled: maybe\n", "haproxy_enabled", "not true or false"},
	} {
		_, err := loadText(t, inv("", tc.group, "", ""))
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("case %d: error %v; want one naming %s with %q", i+1, err, tc.field, tc.problem)
		}
	}
}

// TestServicesDisabled: haproxy_enabled: false frees the services' ports (pg_port 5433 loads).
func TestServicesDisabled(t *testing.T) {
	if _, err := loadText(t, inv("", "        pg_port: 5433\n", "", "")); err == nil || !strings.Contains(err.Error(), "service primary") {
		t.Fatalf("pg_port 5433 with the default services: %v; want a clash with service primary", err)
	}
	iv, err := loadText(t, inv("", "        pg_port: 5433\n        haproxy_enabled: false\n", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if iv.Clusters["pg-test"].ServicesEnabled {
		t.Error("haproxy_enabled: false left the services enabled")
	}
}
