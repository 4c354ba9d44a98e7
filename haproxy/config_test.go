package haproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/pkitest"
)

func testCluster() Cluster {
	return Cluster{
		Name: "pg-test",
		Members: []Member{
			{Name: "pg-test-1", Addr: "10.213.0.11", Role: "primary", PGPort: 5432, APIPort: 8008, VerifyHost: "pg-test-1"},
			{Name: "pg-test-2", Addr: "10.213.0.12", Role: "replica", PGPort: 5432, APIPort: 8008, VerifyHost: "pg-test-2"},
			{Name: "pg-test-3", Addr: "10.213.0.13", Role: "offline", PGPort: 5432, APIPort: 8008, VerifyHost: "pg-test-3"},
		},
		Services: PigstyServices(), Timing: FastTiming(), CAFile: "/etc/pki/ca.crt",
		StatsPort: 9101, StatsAddr: "10.213.0.11", AdminSocket: "/var/lib/pigwf/haproxy/admin.sock",
	}
}

// requireHAProxy returns the haproxy binary, skipping when it is missing unless the run requires
// the integration tools.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("PIGWF_REQUIRE_INTEGRATION") != "" {
			t.Fatal("haproxy is not installed: run `make deps` (Debian package haproxy)")
		}
		t.Skip("haproxy is not installed")
	}
	return bin
}

// haproxyCheck runs `haproxy -c` on text: HAProxy itself is the reader of what Render writes.
func haproxyCheck(t *testing.T, text string) {
	t.Helper()
	bin := requireHAProxy(t)
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	// The CA file must exist for HAProxy to load the config.
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-c", "-f", f).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c refused the rendered config: %v\n%s\n---\n%s", err, out, text)
	}
	if strings.Contains(string(out), "[WARNING]") {
		t.Fatalf("haproxy -c warns about the rendered config:\n%s\n---\n%s", out, text)
	}
}

func TestClusterConfigPigstyLayout(t *testing.T) {
	cfg, skipped, err := ClusterConfig(testCluster(), "managed by pigwf pg-service")
	if err != nil || len(skipped) != 0 {
		t.Fatalf("ClusterConfig: %v (skipped %v)", err, skipped)
	}
	byName := map[string]Listen{}
	for _, l := range cfg.Listens {
		byName[l.Name] = l
	}
	for _, tc := range []struct {
		listen  string
		port    int
		check   string
		servers string // name[+b for backup]
	}{
		{"pg-test-primary", 5433, "/primary", "pg-test-1 pg-test-2 pg-test-3"},
		{"pg-test-replica", 5434, "/read-only?prefer=replica", "pg-test-1+b pg-test-2 pg-test-3+b"},
		{"pg-test-default", 5436, "/primary", "pg-test-1 pg-test-2 pg-test-3"},
		{"pg-test-offline", 5438, "/replica", "pg-test-2+b pg-test-3"},
	} {
		l, ok := byName[tc.listen]
		if !ok {
			t.Fatalf("no listen %s in %+v", tc.listen, cfg.Listens)
		}
		var got []string
		for _, s := range l.Servers {
			n := s.Name
			if s.Backup {
				n += "+b"
			}
			got = append(got, n)
		}
		if l.Port != tc.port || l.Check.URI != tc.check || strings.Join(got, " ") != tc.servers {
			t.Errorf("%s: port %d check %s servers %v; want %d %s %s", tc.listen, l.Port, l.Check.URI, got, tc.port, tc.check, tc.servers)
		}
	}
	text, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# managed by pigwf pg-service",
		"stats socket /var/lib/pigwf/haproxy/admin.sock mode 600 level admin expose-fd listeners",
		"listen pg-test-primary\n    bind *:5433\n",
		"http-check send meth OPTIONS uri /primary?wait=1000ms\n",
		"default-server inter 100ms fastinter 100ms downinter 100ms rise 1 fall 2 on-marked-down shutdown-sessions\n",
		"server pg-test-2 10.213.0.12:5432 check port 8008 check-ssl ca-file /etc/pki/ca.crt verify required verifyhost pg-test-2 check-sni pg-test-2\n",
		"server pg-test-1 10.213.0.11:5432 check port 8008 check-ssl ca-file /etc/pki/ca.crt verify required verifyhost pg-test-1 check-sni pg-test-1 backup\n",
		"bind 10.213.0.11:9101",
		// the default service asks the same /primary check: it follows the primary service's
		"listen pg-test-default\n    bind *:5436\n",
		"    server pg-test-2 10.213.0.12:5432 track pg-test-primary/pg-test-2\n",
		// read services are checked every second
		"http-check send meth OPTIONS uri /read-only?prefer=replica&wait=1000ms\n    http-check expect status 200\n    default-server inter 1000ms fastinter 100ms downinter 1000ms rise 1 fall 2",
		"timeout check 1500ms",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, text)
		}
	}
	// HAProxy loads it (the CA file must exist for that).
	c := testCluster()
	c.CAFile, c.AdminSocket = filepath.Join(pkitest.CA(t).Dir, "ca.crt"), filepath.Join(t.TempDir(), "admin.sock")
	cfg, _, _ = ClusterConfig(c, "test")
	text, err = Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	haproxyCheck(t, text)
}

// TestPatroniSampleShape: an empty check URI is Patroni's sample (a bare `option httpchk`,
// which HAProxy sends as OPTIONS /), so the agents' "/" must be the primary check.
func TestPatroniSampleShape(t *testing.T) {
	c := testCluster()
	c.CAFile, c.AdminSocket, c.StatsPort = "", "", 0
	c.Services = []Service{{Name: "batman", Port: 5000}}
	c.Timing = PatroniSampleTiming()
	cfg, _, err := ClusterConfig(c, "")
	if err != nil {
		t.Fatal(err)
	}
	text, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "http-check send") || !strings.Contains(text, "    option httpchk\n    http-check expect status 200\n") || !strings.Contains(text, "timeout check 500ms") {
		t.Errorf("want a bare option httpchk:\n%s", text)
	}
	if !strings.Contains(text, "default-server inter 3000ms rise 2 fall 3 on-marked-down shutdown-sessions\n") {
		t.Errorf("want Patroni's sample timing:\n%s", text)
	}
	haproxyCheck(t, text)
}

func TestSkippedService(t *testing.T) {
	c := testCluster()
	c.Members = c.Members[:1] // a single primary: no replica or offline member
	cfg, skipped, err := ClusterConfig(c, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(skipped, ",") != "offline" || len(cfg.Listens) != 3 {
		t.Errorf("skipped %v, %d listens; want offline skipped and 3 listens", skipped, len(cfg.Listens))
	}
}

// TestRenderRefusesHostileValues: nothing that could end a directive or start another reaches
// the file.
func TestRenderRefusesHostileValues(t *testing.T) {
	for i, tc := range []struct {
		mutate func(*Cluster)
		want   string
	}{
		{func(c *Cluster) { c.Name = "pg test" }, "cluster name"},
		{func(c *Cluster) { c.Name = "pg-test\nglobal" }, "cluster name"},
		{func(c *Cluster) { c.Members[1].Addr = "10.0.0.1 backup" }, "is not an IP address"},
		{func(c *Cluster) { c.Members[1].Name = "x#y" }, "server name"},
		{func(c *Cluster) { c.Members[1].VerifyHost = "a b" }, "HTTPS check needs the name"},
		{func(c *Cluster) { c.Services[0].Check = "/primary\n  server evil 1.2.3.4:1" }, "check"},
		{func(c *Cluster) { c.Services[0].Check = "primary" }, "check"},
		{func(c *Cluster) { c.Services[1].Port = 5433 }, "port 5433 is also used by pg-test-primary"},
		{func(c *Cluster) { c.Services[0].Port = 70000 }, "want 1-65535"},
		{func(c *Cluster) { c.Services[0].Balance = "source;x" }, "balance"},
		{func(c *Cluster) { c.Services[1].Name = "primary" }, "listed twice"},
		{func(c *Cluster) { c.CAFile = "/etc/pki/ca crt" }, "CA file"},
		{func(c *Cluster) { c.AdminSocket = "relative.sock" }, "admin socket"},
		{func(c *Cluster) { c.Timing.Inter = time.Millisecond }, "check inter"},
		{func(c *Cluster) { c.Timing.Rise = 0 }, "check rise"},
		{func(c *Cluster) { c.Members[0].APIPort = 0 }, "want 1-65535"},
		{func(c *Cluster) { c.StatsPort = 5433 }, "port 5433 is also used by stats"},
		{func(c *Cluster) { c.Timing.Hold = 10 * time.Second }, "check hold"},
	} {
		c := testCluster()
		c.Services = PigstyServices()
		tc.mutate(&c)
		cfg, _, err := ClusterConfig(c, "")
		if err == nil {
			_, err = Render(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: error %v; want one containing %q", i+1, err, tc.want)
		}
	}
}

func TestTimingValidate(t *testing.T) {
	for _, tm := range []CheckTiming{PigstyTiming(), PatroniSampleTiming(), FastTiming()} {
		if err := tm.Validate(); err != nil {
			t.Errorf("%+v: %v", tm, err)
		}
	}
}

func TestCheckURIHold(t *testing.T) {
	held := CheckTiming{Hold: 250 * time.Millisecond}
	for _, c := range []struct {
		timing   CheckTiming
		uri, out string
	}{
		{held, "/primary", "/primary?wait=250ms"},
		{held, "/replica?lag=16MB", "/replica?lag=16MB&wait=250ms"},
		{held, "", "/?wait=250ms"},
		{CheckTiming{}, "/primary", "/primary"},
		{CheckTiming{}, "", ""},
	} {
		if got := c.timing.checkURI(c.uri); got != c.out {
			t.Errorf("checkURI(%q) with hold %v = %q; want %q", c.uri, c.timing.Hold, got, c.out)
		}
	}
}
