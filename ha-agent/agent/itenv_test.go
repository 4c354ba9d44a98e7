package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/internal/pgparams"
)

const itCluster = "pg-it"

type itNode struct {
	name     string
	port     int
	apiPort  int
	dir      string
	dataDir  string
	sockDir  string
	cfgPath  string
	agentLog string
	pgLog    string
	sup      *exec.Cmd
	supDone  chan struct{}
	proxy    *etcdProxy
}

func (n *itNode) api(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.apiPort, path)
}

// The integration lab's API credentials (api.auth).
const (
	itAPIUser     = "pigwf-it"
	itAPIPassword = "it password: 1"
)

// itEnv is the integration test's lab on loopback: one etcd, three
// PostgreSQL instances and their supervised agents.
type itEnv struct {
	t      *testing.T
	base   string
	bin    string
	pgBin  string
	uid    int
	gid    int
	home   string
	etcd   string
	store  *dcs.Store
	nodes  []*itNode
	client *http.Client
}

func pgBinDir() string {
	if d := os.Getenv("PIGWF_PG_BIN"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}

func newITEnv(t *testing.T) *itEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "the integration test runs PostgreSQL as the postgres OS user and must start as root")
	}
	pgBin := pgBinDir()
	for _, b := range []string{"postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata"} {
		if _, err := os.Stat(filepath.Join(pgBin, b)); err != nil {
			skipOrFail(t, "PostgreSQL 15 binaries missing in "+pgBin+" (install postgresql-15 or set PIGWF_PG_BIN)")
		}
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		skipOrFail(t, "no postgres OS user")
	}
	e := &itEnv{t: t, pgBin: pgBin, client: &http.Client{Timeout: 2 * time.Second}}
	e.uid, _ = strconv.Atoi(pgUser.Uid)
	e.gid, _ = strconv.Atoi(pgUser.Gid)
	e.etcd = startEtcd(t)
	e.base, err = os.MkdirTemp("", "pigwf-ha-it-")
	if err != nil {
		t.Fatal(err)
	}
	e.mustChown(e.base, 0o755)
	e.home = filepath.Join(e.base, "home")
	e.mkdir(e.home, 0o700)
	// The agent binary: this test binary, copied where postgres can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.bin = filepath.Join(e.base, "pg-ha-agent")
	copyFile(t, self, e.bin, 0o755)
	store, err := dcs.New(newEtcdClient(t, e.etcd), "/pigwf-it", itCluster, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	for i := 1; i <= 3; i++ {
		// The proxy's listener first: it holds its port, so the ports
		// picked next cannot collide with it.
		proxy := startProxy(t, strings.TrimPrefix(e.etcd, "http://"))
		n := &itNode{name: fmt.Sprintf("pg-it-%d", i), proxy: proxy, port: freePort(t), apiPort: freePort(t)}
		n.dir = filepath.Join(e.base, n.name)
		n.dataDir = filepath.Join(n.dir, "data")
		n.sockDir = filepath.Join(n.dir, "run")
		n.cfgPath = filepath.Join(n.dir, "ha-agent.yml")
		n.agentLog = filepath.Join(n.dir, "ha-agent.log")
		n.pgLog = filepath.Join(n.dir, "postgresql.log")
		e.mkdir(n.dir, 0o755)
		e.mkdir(n.sockDir, 0o755)
		e.nodes = append(e.nodes, n)
	}
	t.Cleanup(e.cleanup)
	return e
}

func (e *itEnv) mkdir(path string, mode os.FileMode) {
	e.t.Helper()
	if err := os.MkdirAll(path, mode); err != nil {
		e.t.Fatal(err)
	}
	e.mustChown(path, mode)
}

func (e *itEnv) mustChown(path string, mode os.FileMode) {
	e.t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chown(path, e.uid, e.gid); err != nil {
		e.t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// asPostgres prepares a command that runs as the postgres OS user.
func (e *itEnv) asPostgres(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	cmd.Env = []string{"HOME=" + e.home, "LC_ALL=C", "LANG=C", "PATH=/usr/bin:/bin"}
	cmd.Dir = e.base
	return cmd
}

func (e *itEnv) pg(bin string, args ...string) string {
	e.t.Helper()
	out, err := e.asPostgres(filepath.Join(e.pgBin, bin), args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// conn opens a TCP connection (trust authentication in the test's pg_hba).
func conn(ctx context.Context, port int) (*pgwire.Conn, error) {
	return pgwire.Connect(ctx, pgwire.Config{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", port),
		User: "postgres", Database: "postgres", ApplicationName: "pigwf-it"})
}

func query(t *testing.T, port int, sql string) [][]*string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := conn(ctx, port)
	if err != nil {
		t.Fatalf("connect to port %d: %v", port, err)
	}
	defer c.Close()
	res, err := c.Query(ctx, sql)
	if err != nil {
		t.Fatalf("query on port %d: %s: %v", port, sql, err)
	}
	return res[len(res)-1].Rows
}

// prepare builds the cluster the way PgClusterCreate does: initdb the
// primary, create the replication user, clone the replicas with
// pg_basebackup, leave every PostgreSQL stopped, and register the
// cluster (initialize + config) in etcd before any agent starts.
func (e *itEnv) prepare(config string) string {
	t := e.t
	n1 := e.nodes[0]
	e.pg("initdb", "-D", n1.dataDir, "--data-checksums", "-U", "postgres", "-A", "trust")
	conf := "\nlisten_addresses = '127.0.0.1'\nshared_buffers = 16MB\nmax_connections = 40\nmax_wal_senders = 10\n" +
		"wal_keep_size = '64MB'\nlogging_collector = off\nlog_min_messages = warning\n" +
		// DSM segments in the data directory: a killed test cluster would
		// otherwise leave them in the machine's /dev/shm.
		"dynamic_shared_memory_type = mmap\n" +
		// As pigwf's postgresql.conf: the cluster's dynamic parameters, written by the agents, last.
		pgparams.IncludeLine + "\n"
	appendFile(t, filepath.Join(n1.dataDir, "postgresql.conf"), conf)
	appendFile(t, filepath.Join(n1.dataDir, "pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n")
	e.pg("pg_ctl", "-D", n1.dataDir, "-w", "-l", n1.pgLog, "-o", fmt.Sprintf("-p %d -c unix_socket_directories=%s", n1.port, n1.sockDir), "start")
	query(t, n1.port, `CREATE ROLE replicator LOGIN REPLICATION;
GRANT pg_monitor TO replicator;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO replicator;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO replicator;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO replicator;
CREATE TABLE ha_test (id bigint PRIMARY KEY, at timestamptz DEFAULT now());
SELECT 1`)
	for _, n := range e.nodes[1:] {
		e.pg("pg_basebackup", "-D", n.dataDir, "-h", "127.0.0.1", "-p", strconv.Itoa(n1.port), "-U", "replicator", "-X", "stream", "-c", "fast")
	}
	e.pg("pg_ctl", "-D", n1.dataDir, "-w", "-m", "fast", "stop")
	sysid := ""
	for _, line := range strings.Split(e.pg("pg_controldata", "-D", n1.dataDir), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Database system identifier" {
			sysid = strings.TrimSpace(v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := e.store.RegisterCluster(ctx, dcs.InitializeRecord{ClaimedBy: n1.name, Sysid: sysid}, json.RawMessage(config))
	if err != nil || got.Sysid != sysid {
		t.Fatalf("register cluster: %+v, %v", got, err)
	}
	// A plain-text lab (etcd over http, the API on http) whose mutating endpoints want api.auth's
	// password: the file is the agents' user's, mode 0600.
	pwFile := filepath.Join(e.base, "api-password")
	if err := os.WriteFile(pwFile, []byte(itAPIPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustChown(pwFile, 0o600)
	for _, n := range e.nodes {
		cfg := fmt.Sprintf(`cluster: %s
name: %s
prefix: /pigwf-it
insecure_plaintext: true
etcd:
  endpoints: [%s]
api:
  listen: 127.0.0.1:%d
  url: http://127.0.0.1:%d
  auth: {username: `+itAPIUser+`, password_file: `+pwFile+`}
postgres:
  bin_dir: %s
  data_dir: %s
  host: 127.0.0.1
  port: %d
  socket_dir: %s
  replication_user: replicator
  log_file: %s
tags: { nofailover: false, nosync: false }
log_file: %s
`, itCluster, n.name, n.proxy.url(), n.apiPort, n.apiPort, e.pgBin, n.dataDir, n.port, n.sockDir, n.pgLog, n.agentLog)
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sysid
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func (e *itEnv) startSupervisor(n *itNode) {
	e.t.Helper()
	cmd := e.asPostgres(e.bin, "supervise", "--config", n.cfgPath)
	cmd.Env = append(cmd.Env, "PIGWF_AGENT_MAIN=1")
	cmd.SysProcAttr.Setpgid = true
	// The agents' own stderr (Go runtime and race detector reports).
	stderr, err := os.OpenFile(filepath.Join(n.dir, "agent-stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	e.t.Cleanup(func() { stderr.Close() })
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start supervisor for %s: %v", n.name, err)
	}
	n.sup, n.supDone = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.supDone) }()
}

func (e *itEnv) cleanup() {
	for _, n := range e.nodes {
		if n.sup != nil {
			_ = n.sup.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range e.nodes {
		if n.sup == nil {
			continue
		}
		select {
		case <-n.supDone:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-n.sup.Process.Pid, syscall.SIGKILL)
			<-n.supDone
		}
	}
	for _, n := range e.nodes {
		if b, err := os.ReadFile(filepath.Join(n.dir, "agent-stderr.log")); err == nil &&
			(strings.Contains(string(b), "DATA RACE") || strings.Contains(string(b), "panic:")) {
			e.t.Errorf("%s agent stderr reports a data race or panic:\n%s", n.name, tailLines(string(b), 80))
		}
	}
	// Anything left in a data directory (a bug, or a failed start) dies now.
	for _, n := range e.nodes {
		for _, dir := range []string{n.dataDir} {
			if pid := readPid(dir); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if e.t.Failed() {
		for _, n := range e.nodes {
			if b, err := os.ReadFile(n.agentLog); err == nil {
				e.t.Logf("--- %s agent log (tail) ---\n%s", n.name, tailLines(string(b), 60))
			}
			if b, err := os.ReadFile(n.pgLog); err == nil {
				e.t.Logf("--- %s PostgreSQL log (tail) ---\n%s", n.name, tailLines(string(b), 15))
			}
		}
	}
	if os.Getenv("PIGWF_KEEP_IT") == "1" {
		e.t.Logf("kept %s", e.base)
		return
	}
	_ = os.RemoveAll(e.base)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readPid(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

func (e *itEnv) get(url string) (int, []byte) {
	resp, err := e.client.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// leader returns the node whose /primary answers 200 (nil if none or several).
func (e *itEnv) leader() (*itNode, int) {
	var found *itNode
	count := 0
	for _, n := range e.nodes {
		if code, _ := e.get(n.api("/primary")); code == http.StatusOK {
			found = n
			count++
		}
	}
	return found, count
}

func (e *itEnv) node(name string) *itNode {
	for _, n := range e.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (e *itEnv) cluster(n *itNode) (haagent.ClusterStatus, bool) {
	code, body := e.get(n.api("/cluster"))
	var cv haagent.ClusterStatus
	if code != http.StatusOK || json.Unmarshal(body, &cv) != nil {
		return cv, false
	}
	return cv, true
}

// healthy: leader L, every other member streaming from it (per L's own
// pg_stat_replication), one of them sync, and /cluster agreeing with
// pg_stat_replication row by row.
func (e *itEnv) healthy(l *itNode) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := conn(ctx, l.port)
	if err != nil {
		return false, err.Error()
	}
	defer c.Close()
	res, err := c.Query(ctx, "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1")
	if err != nil {
		return false, err.Error()
	}
	psr := map[string][2]string{}
	sync := 0
	for _, r := range res[0].Rows {
		psr[*r[0]] = [2]string{*r[1], *r[2]}
		if *r[2] == "sync" {
			sync++
		}
	}
	if len(psr) != len(e.nodes)-1 || sync != 1 {
		return false, fmt.Sprintf("pg_stat_replication on %s: %v", l.name, psr)
	}
	for name, st := range psr {
		if st[0] != "streaming" {
			return false, fmt.Sprintf("%s is %s", name, st[0])
		}
		if st[1] == "sync" {
			if key := e.syncKey(); key == nil || key.Leader != l.name || !slices.Equal(key.Standbys, []string{name}) {
				return false, fmt.Sprintf("sync key %+v does not (yet) name %s, the standby PostgreSQL reports sync", key, name)
			}
		}
	}
	cv, ok := e.cluster(l)
	if !ok {
		return false, "no /cluster"
	}
	if cv.Leader != l.name || !strings.HasPrefix(cv.SyncSource, "live:") {
		return false, fmt.Sprintf("/cluster leader %q sync_source %q", cv.Leader, cv.SyncSource)
	}
	for _, m := range cv.Members {
		if m.Name == l.name {
			if m.Role != haagent.ClusterRoleLeader {
				return false, "leader role " + string(m.Role)
			}
			continue
		}
		st := psr[m.Name]
		wantRole := haagent.ClusterRoleReplica
		if st[1] == "sync" {
			wantRole = haagent.ClusterRoleSyncStandby
		}
		if m.Role != wantRole || m.State != st[0] {
			return false, fmt.Sprintf("/cluster says %s is %s/%s, pg_stat_replication says %s/%s", m.Name, m.Role, m.State, st[0], st[1])
		}
	}
	return true, ""
}

func (e *itEnv) syncKey() *dcs.SyncRecord {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	snap, err := e.store.Load(ctx)
	if err != nil || snap.Sync == nil {
		return nil
	}
	return &snap.Sync.Value
}

func (e *itEnv) syncStandbys() []string {
	if k := e.syncKey(); k != nil {
		return k.Standbys
	}
	return nil
}

// agentPID is the pid of the agent the supervisor of n runs.
func agentPID(n *itNode) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", n.sup.Process.Pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, p := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(p); err == nil {
				return pid
			}
		}
	}
	return 0
}
