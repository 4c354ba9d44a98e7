package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/inventory"
)

// Pigwf is a pigwf cluster on a lab, built the way a user builds one: `pigwf start node-init`
// then `pigwf start pg-cluster-create` through a real Temporal server and worker, from a copy of
// the lab inventory with pg_synchronous_mode: true. The HA agents (pg-ha-agent) it installs
// own PostgreSQL from then on.
type Pigwf struct {
	st      *lab.Status
	cluster *inventory.Cluster
	members map[int]string // lab node → member (nodename)
	db      DB
	cli     *clientv3.Client
	store   *dcs.Store
	// CreateTook is how long pg-cluster-create took (the brief's "under 1 minute" figure).
	CreateTook, NodeInitTook time.Duration
	config                   string // the DCS config key as the agents read it
}

// SyncInventory writes a copy of the lab's inventory with pg_synchronous_mode: true in the
// cluster's vars and returns its path and the cluster as pigwf reads it.
func SyncInventory(st *lab.Status, dir string) (string, *inventory.Cluster, error) {
	data, err := os.ReadFile(st.Inventory)
	if err != nil {
		return "", nil, fmt.Errorf("while reading the lab inventory: %w", err)
	}
	anchor := "        pg_cluster: " + st.Cluster + "\n"
	if !strings.Contains(string(data), anchor) {
		return "", nil, fmt.Errorf("the lab inventory %s has no line %q to add pg_synchronous_mode after", st.Inventory, strings.TrimSpace(anchor))
	}
	text := strings.Replace(string(data), anchor, anchor+"        pg_synchronous_mode: true\n", 1)
	path := filepath.Join(dir, "inventory-sync.yml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", nil, fmt.Errorf("while writing %s: %w", path, err)
	}
	inv, err := inventory.LoadInventory(path)
	if err != nil {
		return "", nil, fmt.Errorf("the synchronous inventory does not load: %w", err)
	}
	cl, err := inv.Cluster(st.Cluster)
	if err != nil {
		return "", nil, err
	}
	if !cl.PG.SyncMode {
		return "", nil, fmt.Errorf("%s: pigwf does not read pg_synchronous_mode: true", path)
	}
	return path, cl, nil
}

// SetupPigwf builds the cluster on st with node-init and pg-cluster-create, prepares the
// writer's tables and connects to the DCS.
func SetupPigwf(t testing.TB, env *testenv.Env, st *lab.Status, logf func(string, ...any)) (*Pigwf, error) {
	home := testenv.LabHome(t, st)
	invPath, cl, err := SyncInventory(st, home)
	if err != nil {
		return nil, err
	}
	p := &Pigwf{st: st, cluster: cl, members: map[int]string{}}
	for i, n := range st.Nodes {
		for _, h := range cl.Hosts {
			if h.Addr == n.Addr {
				p.members[i+1] = h.Node.Nodename
			}
		}
		if p.members[i+1] == "" {
			return nil, fmt.Errorf("lab node %s (%s) is not in the inventory's cluster %s", n.Name, n.Addr, cl.Name)
		}
	}
	p.db = ChaosDB
	p.db.Port = cl.PG.Port
	p.db.Device = st.Bridge
	found := false
	for _, u := range cl.Users {
		if u.Name == p.db.User {
			p.db.Password, found = u.Password, true
		}
	}
	if !found {
		return nil, fmt.Errorf("the lab inventory has no user %s for the writer", p.db.User)
	}

	var workerArgs []string
	if st.Plaintext {
		workerArgs = append(workerArgs, "--allow-insecure-plaintext") // the baseline lab says so
	}
	w := env.StartWorker(t, home, workerArgs...)
	defer w.Kill() // the runbooks are done before the faults: the agents act alone
	start := time.Now()
	out, err := env.Pigwf(t, home, "start", "node-init", "--cluster", cl.Name, "--inventory", invPath, "--wait")
	p.NodeInitTook = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("pigwf start node-init: %w\n%s", err, out)
	}
	logf("pigwf: node-init took %.1f s", p.NodeInitTook.Seconds())
	start = time.Now()
	out, err = env.Pigwf(t, home, "start", "pg-cluster-create", "--cluster", cl.Name, "--inventory", invPath, "--wait")
	p.CreateTook = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("pigwf start pg-cluster-create: %w\n%s\nworker log:\n%s\n%s", err, out,
			TailFile(filepath.Join(home, "worker.log"), 30), p.Diagnostics([]int{1, 2, 3}))
	}
	logf("pigwf: pg-cluster-create took %.1f s (synchronous mode)", p.CreateTook.Seconds())
	start = time.Now()
	out, err = env.Pigwf(t, home, "start", "pg-service", "--cluster", cl.Name, "--inventory", invPath, "--wait")
	if err != nil {
		return nil, fmt.Errorf("pigwf start pg-service: %w\n%s", err, out)
	}
	logf("pigwf: pg-service (HAProxy on every member, Pigsty's services) took %.1f s", time.Since(start).Seconds())

	ctx := context.Background()
	ecfg, err := etcdConfig(st, st.Etcd)
	if err != nil {
		return nil, err
	}
	p.cli, err = clientv3.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to the lab's etcd: %w", err)
	}
	t.Cleanup(func() { p.cli.Close() })
	p.store, err = dcs.New(p.cli, cl.PG.Namespace, cl.Name, 10*time.Second)
	if err != nil {
		return nil, err
	}
	snap, err := p.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if snap.Config != nil {
		p.config = string(snap.Config.Value)
	}

	mon := NewMonitor(p.db, addrsOf(st))
	defer mon.Close()
	h, err := mon.WaitHealthy(ctx, 60*time.Second, nil)
	if err != nil {
		// the monitor's user may lack pg_monitor still: only the roles part is trusted here
		if h.Primary == 0 {
			return nil, fmt.Errorf("no single primary after pg-cluster-create: %w", err)
		}
	}
	// pg_stat_replication's columns need pg_monitor; the inventory's user is not granted it
	grant := "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d " + p.db.Database + " -c 'GRANT pg_monitor TO " + p.db.User + "'"
	if out, err := st.Exec(ctx, h.Primary, "sh", "-c", grant); err != nil {
		return nil, fmt.Errorf("while granting pg_monitor to %s: %w: %s", p.db.User, err, out)
	}
	if err := mon.Exec(ctx, h.Primary, ChaosTables); err != nil {
		return nil, fmt.Errorf("while creating the chaos tables: %w", err)
	}
	if _, err := mon.WaitHealthy(ctx, 60*time.Second, p.ExtraHealthy); err != nil {
		return nil, fmt.Errorf("the pigwf cluster is not healthy after creation: %w\n%s", err, p.Diagnostics([]int{1, 2, 3}))
	}
	return p, nil
}

// ServicePort implements System: pg-service's primary service.
func (p *Pigwf) ServicePort() int { return ServicePort }

// Name implements System.
func (p *Pigwf) Name() string {
	if p.st.Plaintext {
		return "pigwf plain"
	}
	return "pigwf"
}

// Lab implements System.
func (p *Pigwf) Lab() *lab.Status { return p.st }

// DataDir implements System.
func (p *Pigwf) DataDir() string { return p.cluster.PG.DataDir }

// Member implements System.
func (p *Pigwf) Member(i int) string { return p.members[i] }

// DB is how the writer reaches the cluster.
func (p *Pigwf) DB() DB { return p.db }

// ExtraHealthy implements System: the DCS leader key names the member PostgreSQL says is the
// primary, and no failover request is pending.
func (p *Pigwf) ExtraHealthy(ctx context.Context, h Health) error {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	snap, err := p.store.Load(lctx)
	if err != nil {
		return err
	}
	want := p.members[h.Primary]
	switch {
	case snap.Leader == nil:
		return fmt.Errorf("no leader key while %s is the primary", want)
	case snap.Leader.Value.Holder != want:
		return fmt.Errorf("leader key held by %s while PostgreSQL's primary is %s", snap.Leader.Value.Holder, want)
	case snap.Failover != nil:
		return fmt.Errorf("a failover request is still pending: %+v", snap.Failover.Value)
	case snap.Sync == nil || snap.Sync.Value.Leader != want || len(snap.Sync.Value.Standbys) == 0:
		// the agents let only the standbys in the sync key promote (and accept a switchover to
		// them): until the key matches, a trial would measure the key's lag, not a failover
		return fmt.Errorf("the sync key does not name a standby of %s yet: %+v", want, snap.Sync)
	}
	pgSync := h.SyncNames()
	for _, m := range snap.Sync.Value.Standbys {
		if !pgSync[m] {
			return fmt.Errorf("the sync key names %s but PostgreSQL reports synchronous %v", m, pgSync)
		}
	}
	return nil
}

// Switchover implements System: the DCS failover request, From the leader To a sync standby.
func (p *Pigwf) Switchover(ctx context.Context, from, to int) error {
	_, err := p.store.RequestFailover(ctx, dcs.FailoverRecord{From: p.members[from], To: p.members[to], RequestedBy: "chaos suite", ScheduledAt: time.Time{}})
	return err
}

// Diagnostics implements System: the tails of each node's agent and PostgreSQL logs, and the
// etcd member's leadership changes (an etcd election stalls every renewal).
func (p *Pigwf) Diagnostics(nodes []int) string {
	var b strings.Builder
	for _, i := range nodes {
		fmt.Fprintf(&b, "--- node %d etcd leadership changes (last 6)\n%s\n", i, grepTail(nodeFile(p.st, i, "/var/log/pigwf/etcd.log"), 6,
			"elected leader", "lost leader", "became candidate", "became leader", "starting etcd"))
		for _, f := range []struct {
			path  string
			lines int
		}{{"/pg/log/ha-agent/ha-agent.log", 40}, {"/pg/log/ha-agent/supervise.log", 10}, {"/pg/log/postgres/postgresql.log", 15}} {
			fmt.Fprintf(&b, "--- node %d %s (last %d lines)\n%s\n", i, f.path, f.lines, TailFile(nodeFile(p.st, i, f.path), f.lines))
		}
	}
	return b.String()
}

// LogFiles implements System.
func (p *Pigwf) LogFiles() []string {
	return []string{"/pg/log/ha-agent/*.log", "/pg/log/postgres/*", "/var/log/pigwf/*.log"}
}

// Settings describes pigwf's configuration for the report: the dynamic config the agents read.
func (p *Pigwf) Settings() []string {
	cfg := p.config
	var pretty map[string]any
	if json.Unmarshal([]byte(cfg), &pretty) == nil {
		var parts []string
		for _, k := range []string{"loop_interval_ms", "leader_timeout_ms", "clock_drift_ppm", "fence_margin_ms", "promote_margin_ms", "max_fence_ms",
			"synchronous_mode", "synchronous_mode_strict", "synchronous_node_count", "use_pg_rewind", "crash_restart_budget_ms", "failsafe_mode", "maximum_lag_on_failover"} {
			if v, ok := pretty[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %v", k, v))
			}
		}
		cfg = strings.Join(parts, ", ")
	}
	return []string{
		"pg-ha-agent on every node (supervised), etcd DCS = the lab's 3-member etcd",
		"dynamic config (DCS " + p.store.Key(dcs.KeyConfig) + "): " + cfg,
		fmt.Sprintf("cluster built by node-init (%.1f s) + pg-cluster-create (%.1f s) from the lab inventory with pg_synchronous_mode: true",
			p.NodeInitTook.Seconds(), p.CreateTook.Seconds()),
	}
}
