package activities

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/haproxy"
)

// TestParseStatsUp: HAProxy's stats CSV (the first columns, then status at its place) read into
// the servers up per proxy; FRONTEND/BACKEND rows and servers not UP left out.
func TestParseStatsUp(t *testing.T) {
	csv := "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n" +
		"stats,FRONTEND,,,0,1,20000,1,0,0,0,0,0,,,,,OPEN,\n" +
		"pg-test-primary,FRONTEND,,,0,0,20000,0,0,0,0,0,0,,,,,OPEN,\n" +
		"pg-test-primary,pg-test-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1\n" +
		"pg-test-primary,pg-test-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n" +
		"pg-test-primary,pg-test-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1\n" +
		"pg-test-primary,BACKEND,0,0,0,0,2000,0,0,0,0,0,,0,0,0,0,UP,2\n" +
		"pg-test-replica,pg-test-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,1\n"
	got, err := ParseStatsUp(csv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"pg-test-primary": {"pg-test-1", "pg-test-3"}, "pg-test-replica": {}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	if _, err := ParseStatsUp("<html>not csv\"</html>"); err == nil {
		t.Error("an HTML page parsed as stats")
	}
}

// TestServiceConfigPerMember: each member's file binds the stats port on its own address and
// puts the admin socket in ServiceRunDir; the services are the cluster's.
func TestServiceConfigPerMember(t *testing.T) {
	c := haproxy.Cluster{Name: "pg-test", Services: haproxy.PigstyServices(), Timing: haproxy.FastTiming(), StatsPort: 9101, CAFile: "/etc/pki/ca.crt",
		Members: []haproxy.Member{{Name: "pg-test-1", Addr: "10.213.0.11", Role: "primary", PGPort: 5432, APIPort: 8008, VerifyHost: "pg-test-1"}}}
	text, skipped, err := ServiceConfig(ServiceInput{Node: Node{Addr: "10.213.0.11", Name: "pg-test-1"}, Cluster: c})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bind 10.213.0.11:9101", "stats socket " + ServiceRunDir + "/admin.sock", "listen pg-test-primary", "# managed by pigwf pg-service"} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Join(skipped, ",") != "offline" {
		t.Errorf("skipped %v; want offline (no offline or replica member)", skipped)
	}
}
