package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
)

// PatroniSettings are the anchor's HA timing settings (Patroni's dynamic configuration).
type PatroniSettings struct {
	TTL                 int // leader key TTL, s
	LoopWait            int // HA loop period, s
	RetryTimeout        int // DCS and PostgreSQL retry budget, s
	PrimaryStartTimeout int // how long a crashed primary may take to restart before failover, s
	SynchronousMode     bool
	UsePgRewind         bool
}

// TightestPatroni are the tightest settings Patroni allows: its validator (patroni/validator.py
// since 3.x: ttl IntValidator(min=20), loop_wait min=1, retry_timeout min=3) and the documented
// rule loop_wait + 2×retry_timeout ≤ ttl. Debian 12's patroni 3.0.2 does not enforce the minima
// yet, but values below them are outside what Patroni supports, so the anchor runs at them.
func TightestPatroni() PatroniSettings {
	return PatroniSettings{TTL: 20, LoopWait: 1, RetryTimeout: 3, PrimaryStartTimeout: 0, SynchronousMode: true, UsePgRewind: true}
}

// Validate applies Patroni's own limits.
func (s PatroniSettings) Validate() error {
	var errs []error
	if s.TTL < 20 {
		errs = append(errs, fmt.Errorf("patroni ttl %d: Patroni's minimum is 20", s.TTL))
	}
	if s.LoopWait < 1 {
		errs = append(errs, fmt.Errorf("patroni loop_wait %d: Patroni's minimum is 1", s.LoopWait))
	}
	if s.RetryTimeout < 3 {
		errs = append(errs, fmt.Errorf("patroni retry_timeout %d: Patroni's minimum is 3", s.RetryTimeout))
	}
	if s.LoopWait+2*s.RetryTimeout > s.TTL {
		errs = append(errs, fmt.Errorf("patroni: loop_wait + 2×retry_timeout = %d exceeds ttl %d", s.LoopWait+2*s.RetryTimeout, s.TTL))
	}
	if s.PrimaryStartTimeout < 0 {
		errs = append(errs, fmt.Errorf("patroni primary_start_timeout %d must not be negative", s.PrimaryStartTimeout))
	}
	return errors.Join(errs...)
}

// Patroni is a Patroni cluster on a lab: one Patroni per node, run as postgres by the node's
// boot service /etc/pigwf/boot.d/50-patroni (so a restarted node starts it again), REST API
// on :8008, the lab's own etcd through etcd3.
type Patroni struct {
	st       *lab.Status
	settings PatroniSettings
	db       DB
	version  string
	dialer   *net.Dialer  // bound to the lab's bridge
	http     *http.Client // REST calls, through dialer
}

// Patroni's cluster layout in the lab.
const (
	patroniScope      = "pg-chaos"
	patroniConfPath   = "/etc/pigwf/patroni.yml"
	patroniBootScript = "/etc/pigwf/boot.d/50-patroni"
	patroniLog        = "/var/log/pigwf/patroni.log"
	patroniRESTPort   = 8008
	patroniDataDir    = "/pg/data"
	patroniSuperPass  = "Chaos.Super"
	patroniReplPass   = "Chaos.Repl"
	pgBinDir          = "/usr/lib/postgresql/15/bin"
)

// ChaosDB is the user and database the writer uses on both sides: the lab inventory's
// dbuser_meta on meta.
var ChaosDB = DB{User: "dbuser_meta", Password: "DBUser.Meta", Database: "meta", Port: 5432}

// EnsurePatroni installs Debian's patroni package when it is missing (idempotent) and returns
// its version. Package scripts may not start services on the host (policy-rc.d), as in
// deploy/deps.sh.
func EnsurePatroni(ctx context.Context) (string, error) {
	// python3-idna: urllib3 needs it for https, which the lab's etcd speaks (--no-install-recommends
	// leaves it out)
	_, missing := os.Stat("/usr/bin/patroni")
	if missing == nil {
		// the package, not an import: a module in root's own site directory is not Patroni's
		missing = exec.CommandContext(ctx, "dpkg", "-s", "python3-idna").Run()
	}
	if missing != nil {
		script := `set -e
export DEBIAN_FRONTEND=noninteractive
created=""
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created=1; fi
trap '[ -n "$created" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-cache policy patroni | grep -q 'Candidate: [0-9]' || apt-get update -q
apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends patroni python3-etcd python3-psycopg2 python3-idna`
		out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("while installing patroni: %w: %s", err, lastLines(string(out), 10))
		}
	}
	out, err := exec.CommandContext(ctx, "/usr/bin/patroni", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("patroni --version: %w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (p *Patroni) memberName(i int) string { return fmt.Sprintf("%s-%d", patroniScope, i) }

// patroniConfig is node i's patroni.yml.
func patroniConfig(st *lab.Status, i int, s PatroniSettings) string {
	n := st.Nodes[i-1]
	var hosts []string
	for _, ep := range st.Etcd {
		hosts = append(hosts, strings.TrimPrefix(strings.TrimPrefix(ep, "https://"), "http://"))
	}
	// the lab's etcd requires TLS and a client certificate of its CA, as Pigsty runs it for
	// Patroni: Patroni gets the lab's client certificate (etcdTLSFiles)
	etcdTLS := ""
	if !st.Plaintext {
		etcdTLS = fmt.Sprintf("\n  protocol: https\n  cacert: %s\n  cert: %s\n  key: %s", patroniEtcdCA, patroniEtcdCert, patroniEtcdKey)
	}
	subnet := st.Subnet + ".0/24"
	return fmt.Sprintf(`# chaos suite: Patroni (the anchor) on lab %[1]s node %[2]s
scope: %[3]s
namespace: /service/
name: %[3]s-%[4]d
log:
  level: INFO
restapi:
  listen: %[5]s:%[6]d
  connect_address: %[5]s:%[6]d
etcd3:
  hosts: %[7]s%[19]s
bootstrap:
  dcs:
    ttl: %[8]d
    loop_wait: %[9]d
    retry_timeout: %[10]d
    primary_start_timeout: %[11]d
    maximum_lag_on_failover: 1048576
    synchronous_mode: %[12]v
    synchronous_mode_strict: false
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: %[13]v
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
  initdb:
    - encoding: UTF8
    - data-checksums
postgresql:
  listen: 127.0.0.1,%[5]s:5432
  connect_address: %[5]s:5432
  use_unix_socket: true
  data_dir: %[14]s
  bin_dir: %[15]s
  pgpass: /var/lib/postgresql/.pgpass.patroni
  # a replica clone must not wait for a spread checkpoint (minutes at the default)
  basebackup:
    checkpoint: fast
  authentication:
    superuser: {username: postgres, password: %[16]s}
    replication: {username: replicator, password: %[17]s}
    rewind: {username: postgres, password: %[16]s}
  parameters:
    unix_socket_directories: /var/run/postgresql
    password_encryption: scram-sha-256
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host replication replicator %[18]s scram-sha-256
    - host all all %[18]s scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`, st.Name, n.Name, patroniScope, i, n.Addr, patroniRESTPort, strings.Join(hosts, ","),
		s.TTL, s.LoopWait, s.RetryTimeout, s.PrimaryStartTimeout, s.SynchronousMode, s.UsePgRewind,
		patroniDataDir, pgBinDir, patroniSuperPass, patroniReplPass, subnet, etcdTLS)
}

// Where Patroni's etcd client files go on the nodes (postgres's home: Patroni runs as postgres).
const (
	patroniEtcdCA   = "/var/lib/postgresql/patroni-etcd-ca.crt"
	patroniEtcdCert = "/var/lib/postgresql/patroni-etcd.crt"
	patroniEtcdKey  = "/var/lib/postgresql/patroni-etcd.key"
)

// writePatroniEtcdTLS copies the lab's client certificate, key and CA to node i for Patroni
// (writeNodeFile makes them root:postgres: the key 0640, readable by Patroni running as postgres).
func writePatroniEtcdTLS(st *lab.Status, node int) error {
	if st.Plaintext {
		return nil
	}
	files, err := st.ClientTLS()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		from, to string
		mode     os.FileMode
	}{{files.CA, patroniEtcdCA, 0o644}, {files.Cert, patroniEtcdCert, 0o644}, {files.Key, patroniEtcdKey, 0o640}} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			return err
		}
		if err := writeNodeFile(st, node, f.to, string(data), f.mode, "postgres"); err != nil {
			return err
		}
	}
	return nil
}

const patroniBoot = `#!/bin/sh
# chaos suite: Patroni is this node's HA service (what its systemd unit is on a real host),
# started at every node start.
exec runuser -u postgres -- /usr/bin/patroni ` + patroniConfPath + ` >> ` + patroniLog + ` 2>&1
`

// SetupPatroni installs Patroni's configuration and boot service on every node of st, starts
// node 1 first (it bootstraps the cluster), then the others (they clone from it), creates the
// writer's user, database and tables, and waits until the cluster is healthy.
func SetupPatroni(ctx context.Context, st *lab.Status, s PatroniSettings, version string, logf func(string, ...any)) (*Patroni, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &Patroni{st: st, settings: s, db: ChaosDB, version: version, dialer: labDialer(st.Bridge)}
	p.db.Device = st.Bridge
	p.http = &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: p.dialer.DialContext}}
	for i := range st.Nodes {
		node := i + 1
		if out, err := st.Exec(ctx, node, "sh", "-c", "mkdir -p "+patroniDataDir+" && chown postgres:postgres "+patroniDataDir+
			" /var/lib/postgresql /var/run/postgresql && chmod 700 "+patroniDataDir); err != nil {
			return nil, fmt.Errorf("while preparing node %d for Patroni: %w: %s", node, err, out)
		}
		if err := writeNodeFile(st, node, patroniConfPath, patroniConfig(st, node, s), 0o640, "postgres"); err != nil {
			return nil, err
		}
		if err := writePatroniEtcdTLS(st, node); err != nil {
			return nil, fmt.Errorf("while giving Patroni on node %d the lab's etcd client certificate: %w", node, err)
		}
		if err := writeNodeFile(st, node, patroniBootScript, patroniBoot, 0o755, ""); err != nil {
			return nil, err
		}
	}
	start := func(node int) error {
		// the boot service, started now the way the node's init starts it at boot
		out, err := st.Exec(ctx, node, "sh", "-c", "setsid "+patroniBootScript+" </dev/null >/dev/null 2>&1 &")
		if err != nil {
			return fmt.Errorf("while starting Patroni on node %d: %w: %s", node, err, out)
		}
		return nil
	}
	t0 := time.Now()
	if err := start(1); err != nil {
		return nil, err
	}
	super := DB{User: "postgres", Password: patroniSuperPass, Database: "postgres", Port: 5432, Device: st.Bridge}
	superConn := newNodeConn(super, st.Nodes[0].Addr, "chaos-setup", time.Second)
	defer superConn.drop()
	if err := waitFor(ctx, 120*time.Second, func() error {
		var rec bool
		return superConn.query(ctx, time.Second, func(r pgxRows) error { return r.Scan(&rec) }, "SELECT pg_is_in_recovery()")
	}); err != nil {
		return nil, fmt.Errorf("Patroni did not bootstrap node 1 in 120 s: %w\n%s", err, p.Diagnostics([]int{1}))
	}
	logf("patroni: node 1 bootstrapped the cluster in %.1f s", time.Since(t0).Seconds())
	for _, stmt := range []string{
		"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbuser_meta') THEN CREATE ROLE dbuser_meta LOGIN PASSWORD 'DBUser.Meta'; END IF; END$$",
		"GRANT pg_monitor TO dbuser_meta",
	} {
		if err := superConn.exec(ctx, 10*time.Second, stmt); err != nil {
			return nil, fmt.Errorf("while creating the writer's role on Patroni's primary: %w", err)
		}
	}
	var hasDB bool
	if err := superConn.query(ctx, 5*time.Second, func(r pgxRows) error { return r.Scan(&hasDB) }, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'meta')"); err != nil {
		return nil, fmt.Errorf("while looking for database meta: %w", err)
	}
	if !hasDB {
		if err := superConn.exec(ctx, 30*time.Second, "CREATE DATABASE meta OWNER dbuser_meta"); err != nil {
			return nil, fmt.Errorf("while creating database meta: %w", err)
		}
	}
	for _, node := range []int{2, 3} {
		if err := start(node); err != nil {
			return nil, err
		}
	}
	mon := NewMonitor(p.db, addrsOf(st))
	defer mon.Close()
	if err := mon.Exec(ctx, 1, ChaosTables); err != nil {
		return nil, fmt.Errorf("while creating the chaos tables: %w", err)
	}
	if _, err := mon.WaitHealthy(ctx, 180*time.Second, p.ExtraHealthy); err != nil {
		return nil, fmt.Errorf("the Patroni cluster did not become healthy: %w\n%s", err, p.Diagnostics([]int{1, 2, 3}))
	}
	logf("patroni: 3 members healthy (1 primary, 2 streaming, 1 sync) %.1f s after the first start", time.Since(t0).Seconds())
	if err := pigstyHAProxy(ctx, st, p.memberName, patroniRESTPort); err != nil {
		return nil, err
	}
	logf("patroni: HAProxy with Pigsty's default services and check settings on every node")
	return p, nil
}

// writeNodeFile writes a node-private file through the node's directory on the host,
// atomically (the boot loop skips *.tmp files), owned by owner's group when owner is set.
func writeNodeFile(st *lab.Status, node int, path, content string, mode os.FileMode, owner string) error {
	host := nodeFile(st, node, path)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return fmt.Errorf("while creating the directory of %s on node %d: %w", path, node, err)
	}
	tmp := host + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return fmt.Errorf("while writing %s on node %d: %w", path, node, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("while writing %s on node %d: %w", path, node, err)
	}
	if owner != "" {
		if out, err := exec.Command("chown", "root:"+owner, tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("while writing %s on node %d: chown: %w: %s", path, node, err, out)
		}
	}
	if err := os.Rename(tmp, host); err != nil {
		return fmt.Errorf("while writing %s on node %d: %w", path, node, err)
	}
	return nil
}

// waitFor retries fn every 200 ms until it succeeds or timeout; it returns fn's last error.
func waitFor(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func addrsOf(st *lab.Status) []string {
	var a []string
	for _, n := range st.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// Name implements System.
func (p *Patroni) Name() string { return "patroni" }

// ServicePort implements System: HAProxy's primary service with Pigsty's defaults.
func (p *Patroni) ServicePort() int { return ServicePort }

// Lab implements System.
func (p *Patroni) Lab() *lab.Status { return p.st }

// DataDir implements System.
func (p *Patroni) DataDir() string { return patroniDataDir }

// Member implements System.
func (p *Patroni) Member(i int) string { return p.memberName(i) }

// DB is how the writer reaches Patroni's PostgreSQL.
func (p *Patroni) DB() DB { return p.db }

// ExtraHealthy implements System: Patroni's own view (GET /cluster on the primary's REST API)
// agrees with PostgreSQL's: the primary is Patroni's leader, the other members are running, and
// the standby PostgreSQL reports as sync is the one Patroni's sync key names (role
// sync_standby). Until then Patroni would not let any standby take over (in synchronous mode
// only the member in the sync key may), and a trial would measure that, not a failover.
func (p *Patroni) ExtraHealthy(ctx context.Context, h Health) error {
	url := fmt.Sprintf("http://%s:%d/cluster", p.st.Nodes[h.Primary-1].Addr, patroniRESTPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("patroni REST %s: %w", url, err)
	}
	defer resp.Body.Close()
	var view struct {
		Members []struct {
			Name  string `json:"name"`
			Role  string `json:"role"`
			State string `json:"state"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("patroni REST %s: status %d: %v", url, resp.StatusCode, err)
	}
	pgSync := h.SyncNames()
	leader, syncOK := "", false
	for _, m := range view.Members {
		switch {
		case m.State != "running" && m.State != "streaming":
			return fmt.Errorf("patroni member %s is %s", m.Name, m.State)
		case m.Role == "leader" || m.Role == "master" || m.Role == "primary":
			leader = m.Name
		case m.Role == "sync_standby" && pgSync[m.Name]:
			syncOK = true
		}
	}
	switch {
	case leader != p.memberName(h.Primary):
		return fmt.Errorf("patroni's leader is %q while PostgreSQL's primary is %s", leader, p.memberName(h.Primary))
	case !syncOK:
		return fmt.Errorf("patroni's sync key does not name the standby PostgreSQL reports as sync (%v)", pgSync)
	case len(view.Members) != len(p.st.Nodes):
		return fmt.Errorf("patroni lists %d members, want %d", len(view.Members), len(p.st.Nodes))
	}
	return nil
}

// Switchover implements System through Patroni's REST API (POST /switchover on the leader).
func (p *Patroni) Switchover(ctx context.Context, from, to int) error {
	body, _ := json.Marshal(map[string]string{"leader": p.memberName(from), "candidate": p.memberName(to)})
	url := fmt.Sprintf("http://%s:%d/switchover", p.st.Nodes[from-1].Addr, patroniRESTPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// the call returns when the switchover is done; the writer measures it independently
	go func() {
		resp, err := (&http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: p.dialer.DialContext}}).Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return nil
}

// Diagnostics implements System: the tail of each node's Patroni log.
func (p *Patroni) Diagnostics(nodes []int) string {
	var b strings.Builder
	for _, i := range nodes {
		fmt.Fprintf(&b, "--- node %d %s (last 60 lines)\n%s\n", i, patroniLog, TailFile(nodeFile(p.st, i, patroniLog), 60))
	}
	return b.String()
}

// LogFiles implements System: Patroni's log (PostgreSQL's stderr goes there too) and etcd's.
func (p *Patroni) LogFiles() []string { return []string{"/var/log/pigwf/*.log"} }

// Settings describes the anchor's configuration for the report.
func (p *Patroni) Settings() []string {
	s := p.settings
	return []string{
		p.version + " (Debian package), etcd3 DCS = the lab's own 3-member etcd (TLS with a client certificate, as pigwf's)",
		fmt.Sprintf("ttl %d s, loop_wait %d s, retry_timeout %d s (loop_wait + 2×retry_timeout = %d ≤ ttl), primary_start_timeout %d",
			s.TTL, s.LoopWait, s.RetryTimeout, s.LoopWait+2*s.RetryTimeout, s.PrimaryStartTimeout),
		"those are the tightest Patroni allows: its validator's minima ttl 20, loop_wait 1, retry_timeout 3 (IntValidator in later 3.x; 3.0.2 only checks the type) and the documented rule loop_wait + 2×retry_timeout ≤ ttl",
		fmt.Sprintf("synchronous_mode %v (strict false, synchronous_node_count 1), use_pg_rewind %v, use_slots true, maximum_lag_on_failover 1 MiB, basebackup checkpoint fast", s.SynchronousMode, s.UsePgRewind),
		"each Patroni runs as postgres from the node's boot.d (restarted with the node), REST on :8008",
	}
}
