package activities

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/haproxy"
)

// The access layer (pg-service): HAProxy on every member with the cluster's services.
const (
	StepService = "haproxy"

	// ServiceConfigPath is HAProxy's configuration on a member (the distribution's path, so the
	// distribution's service unit runs it).
	ServiceConfigPath = "/etc/haproxy/haproxy.cfg"
	// ServiceRunDir holds HAProxy's admin socket and, where no systemd runs it, its pid file.
	ServiceRunDir = "/var/lib/pigwf/haproxy"
	// ServiceBootPath is the boot service that runs HAProxy on a host without systemd.
	ServiceBootPath = "/etc/pigwf/boot.d/60-haproxy"
)

// ServiceBootScript is the boot service that runs HAProxy where no systemd does: master-worker
// mode in the foreground (reloaded by SIGUSR2 to the master), the master's pid in
// ServiceRunDir/haproxy.pid (-p writes none in the foreground), and as many descriptors as
// the host allows (HAProxy sizes its connection limit from them).
func ServiceBootScript() string {
	return `#!/bin/sh
# managed by pigwf pg-service: runs HAProxy at host start (this host has no systemd); master-worker mode, reloaded by SIGUSR2
mkdir -p ` + ServiceRunDir + `; echo $$ > ` + ServiceRunDir + `/haproxy.pid
ulimit -n $(ulimit -Hn) 2>/dev/null
exec haproxy -W -db -f ` + ServiceConfigPath + ` >> /var/log/pigwf/haproxy.log 2>&1
`
}

// ServiceInput is one member's HAProxy: the cluster's services (the same on every member) and
// the node it runs on.
type ServiceInput struct {
	Node    Node            `json:"node"`
	Cluster haproxy.Cluster `json:"cluster"`
}

// ServiceConfig is the member's haproxy.cfg: the cluster's services, with the stats port bound
// on the member's own address. One function renders it for the activity, the dry run and tests.
func ServiceConfig(in ServiceInput) (text string, skipped []string, err error) {
	c := in.Cluster
	c.StatsAddr = in.Node.Addr
	c.AdminSocket = ServiceRunDir + "/admin.sock"
	cfg, skipped, err := haproxy.ClusterConfig(c, "managed by pigwf pg-service: changes here are overwritten; edit the inventory's pg_services and run pg-service")
	if err != nil {
		return "", nil, err
	}
	text, err = haproxy.Render(cfg)
	return text, skipped, err
}

// PGService installs the member's HAProxy configuration and runs HAProxy with it: started when it
// is not running, reloaded (never restarted) when the configuration changed, left alone otherwise.
func (a *Activities) PGService(ctx context.Context, in ServiceInput) (StepResult, error) {
	text, skipped, err := ServiceConfig(in)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the services of %s: %v", in.Cluster.Name, err), ErrConfig, nil)
	}
	ports := []string{}
	for _, s := range in.Cluster.Services {
		if !slices.Contains(skipped, s.Name) {
			ports = append(ports, strconv.Itoa(s.Port))
		}
	}
	if in.Cluster.StatsPort != 0 {
		ports = append(ports, strconv.Itoa(in.Cluster.StatsPort))
	}
	script := withInputs(haproxyScript,
		shellVar{"conf", ServiceConfigPath},
		shellVar{"want", strings.TrimSuffix(text, "\n")},
		shellVar{"rundir", ServiceRunDir},
		shellVar{"ports", strings.Join(ports, " ")},
		shellVar{"boot", ServiceBootPath},
		shellVar{"bwant", strings.TrimSuffix(ServiceBootScript(), "\n")})
	res, err := a.runStep(ctx, in.Node, StepService, script, nil)
	for _, s := range skipped {
		res.Notes = append(res.Notes, "service "+s+" selects no member: left out")
	}
	return res, err
}

// ServiceCheckInput: the members whose HAProxy routing is checked, and the agents that say who
// leads.
type ServiceCheckInput struct {
	Nodes     []Node      `json:"nodes"`
	Cluster   string      `json:"cluster"`
	StatsPort int         `json:"stats_port"`
	Members   []MemberAPI `json:"members"`
	// Within is how long the routing may take to settle (the checks' rise after a reload).
	Within time.Duration `json:"within"`
}

// ServiceRouting is what one member's HAProxy routes: the servers it has up, per service.
type ServiceRouting struct {
	Node string              `json:"node"`
	Up   map[string][]string `json:"up"` // listen name -> servers marked UP
}

// ServiceCheckResult is the routing of every member's HAProxy, checked against the leader.
type ServiceCheckResult struct {
	Leader  string           `json:"leader"`
	Routing []ServiceRouting `json:"routing"`
}

// PGServiceCheck checks, from HAProxy's own stats, that every member's HAProxy sends the
// primary service to the leader and to no one else. It waits up to Within for the checks to
// settle (a just-started HAProxy marks servers up after their first checks).
func (a *Activities) PGServiceCheck(ctx context.Context, in ServiceCheckInput) (ServiceCheckResult, error) {
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return ServiceCheckResult{}, err
	}
	deadline := time.Now().Add(in.Within)
	primary := in.Cluster + "-primary"
	for {
		activity.RecordHeartbeat(ctx, "checking routing")
		var res ServiceCheckResult
		problem := ""
		view, err := clusterView(ctx, client, in.Members, "")
		switch {
		case err != nil:
			problem = err.Error()
		case view.Leader == "":
			problem = "the cluster has no leader"
		default:
			res.Leader = view.Leader
			for _, n := range in.Nodes {
				up, err := a.serviceUp(ctx, n, in.StatsPort)
				if err != nil {
					return res, err
				}
				res.Routing = append(res.Routing, ServiceRouting{Node: n.Name, Up: up})
				if got := up[primary]; len(got) != 1 || got[0] != view.Leader {
					problem = fmt.Sprintf("HAProxy on %s sends %s to %v, the leader is %s", n.Name, primary, got, view.Leader)
				}
			}
		}
		if problem == "" {
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, temporal.NewApplicationError("the access layer does not route to the leader: "+problem+" (the agents: "+describeCluster(view)+")", ErrConfig)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serviceUp reads one member's HAProxy stats (CSV, the read-only stats port on the member's
// address) from the worker, as Prometheus scrapes it, and returns the servers marked UP per
// listen. No shell and no curl on the member.
func (a *Activities) serviceUp(ctx context.Context, n Node, statsPort int) (map[string][]string, error) {
	url := "http://" + net.JoinHostPort(n.Addr, strconv.Itoa(statsPort)) + "/stats;csv"
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading HAProxy's stats on %s (%s): %w", n.Name, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading HAProxy's stats on %s (%s): status %d %v", n.Name, url, resp.StatusCode, err)
	}
	return ParseStatsUp(string(body))
}

// ParseStatsUp parses HAProxy's stats CSV ("# pxname,svname,...,status,...") into the servers
// marked UP per proxy (FRONTEND and BACKEND rows left out).
func ParseStatsUp(text string) (map[string][]string, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("HAProxy's stats are not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	if _, ok := col["status"]; !ok {
		return nil, fmt.Errorf("HAProxy's stats have no status column")
	}
	up := map[string][]string{}
	for _, row := range rows[1:] {
		if len(row) <= max(px, sv, st) || row[sv] == "FRONTEND" || row[sv] == "BACKEND" {
			continue
		}
		if _, ok := up[row[px]]; !ok {
			up[row[px]] = []string{}
		}
		if strings.HasPrefix(row[st], "UP") {
			up[row[px]] = append(up[row[px]], row[sv])
		}
	}
	for k := range up {
		sort.Strings(up[k])
	}
	return up, nil
}
