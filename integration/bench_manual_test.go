package integration

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/chaos"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/starter"
)

// The by-hand cluster's layout, the same on every node. It lives below /pg, which each lab node
// has to itself: most of /var/lib is one directory shared by every lab node.
const (
	manualPort = 5499
	manualDir  = "/pg/bench-manual"
	manualData = manualDir + "/data"
	manualLog  = manualDir + "/postgresql.log"
	manualPass = manualDir + "/pgpass"             // the replication user's password: pg_basebackup's and the walreceiver's passfile
	manualBin  = "/usr/lib/postgresql/15/bin"      // initdb, pg_ctl and pg_basebackup are not on Debian's PATH
	asPostgres = "runuser -u postgres -- "         // as pigwf's own steps run PostgreSQL's tools
	manualApp  = "TestBenchRollingRestart by hand" // in the configuration files' headers
)

// manualCluster is TestBenchRollingRestart's anchor: a plain PostgreSQL 15 streaming cluster with
// no HA agent on the lab's nodes beside pigwf's pg-test (its own port and data directories), built
// and operated as a DBA does by hand: initdb, pg_basebackup -R, pg_ctl and psql, each over SSH
// (the SSH runner pigwf's steps use, with the lab inventory's targets) as root running the tools
// as postgres, as pigwf's steps do. Secrets travel on the commands' stdin.
type manualCluster struct {
	t        *testing.T
	r        *sshrun.Runner
	nodes    []activities.Node // lab node i is nodes[i-1]
	primary  int               // lab node (1-based) of the primary
	replPass string
	// DB is how the writer and Mon reach the cluster: a user of its own, in pg_monitor.
	DB  chaos.DB
	Mon *chaos.Monitor
}

// manualName is lab node i's name in the by-hand cluster (application_name,
// synchronous_standby_names).
func manualName(i int) string { return fmt.Sprintf("node%d", i) }

// setupManualCluster builds the by-hand cluster on st's nodes: the primary on node 1 with pigwf's
// member settings and sharedBuffers, a standby on every other node, synchronous_standby_names
// naming them (FIRST 1), the writer's tables. It is stopped and removed when the test ends.
func setupManualCluster(t *testing.T, st *lab.Status, invPath, sharedBuffers string) *manualCluster {
	t.Helper()
	inv, err := inventory.LoadInventory(invPath)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inv.Cluster(st.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	m := &manualCluster{t: t, r: sshrun.New(sshrun.Options{Logger: slog.New(slog.DiscardHandler)}), primary: 1, replPass: newSecret(t)}
	t.Cleanup(m.r.Close)
	var addrs []string
	for _, n := range st.Nodes {
		for _, h := range cl.Hosts {
			if h.Addr == n.Addr {
				m.nodes = append(m.nodes, starter.NodeOf(h))
			}
		}
		if len(m.nodes) != len(addrs)+1 {
			t.Fatalf("lab node %s (%s) is not a host of %s in %s", n.Name, n.Addr, st.Cluster, invPath)
		}
		addrs = append(addrs, n.Addr)
	}
	if len(m.nodes) != 3 {
		t.Fatalf("the by-hand procedure is written for a primary and two standbys; the lab has %d nodes", len(m.nodes))
	}
	t.Cleanup(m.teardown)
	t.Logf("by hand: a plain PostgreSQL 15 streaming cluster on port %d of the same nodes, in %s, no HA agent", manualPort, manualDir)

	pgpass, err := activities.PgpassLine("replicator", m.replPass)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.nodes {
		m.run(i+1, m.stopScript()+fmt.Sprintf("rm -rf %[1]s && mkdir -m 700 %[1]s && chown postgres:postgres %[1]s\n", manualDir), nil)
		m.run(i+1, "umask 077 && "+asPostgres+"tee "+manualPass+" >/dev/null", []byte(pgpass+"\n"))
	}
	m.run(1, fmt.Sprintf(asPostgres+"%s/initdb -D %s -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >%s/initdb.log 2>&1 || { s=$?; cat %s/initdb.log >&2; exit $s; }",
		manualBin, manualData, manualDir, manualDir), nil)
	// pigwf's own member settings, so both sides restart the same kind of server; without archiving
	// (this cluster has no pgBackRest stanza) nor the log collector (pg_ctl -l takes the log).
	params := activities.Parameters("bench-manual", manualPort, true, map[string]string{
		"shared_buffers": sharedBuffers, "archive_mode": "off", "logging_collector": "off"})
	delete(params, "archive_command")
	m.run(1, asPostgres+"tee "+manualData+"/postgresql.conf >/dev/null", []byte(pgparams.Render([]string{manualApp + ": pigwf's member settings"}, params)))
	subnet := st.Subnet + ".0/24"
	hba := fmt.Sprintf("# %s\nlocal all all peer\nhost replication replicator %[2]s scram-sha-256\nhost all all %[2]s scram-sha-256\n", manualApp, subnet)
	m.run(1, asPostgres+"tee "+manualData+"/pg_hba.conf >/dev/null", []byte(hba))
	m.pgctl(1, "-w start")

	writerPass := newSecret(t)
	// Passwords on stdin, and kept out of the server log whatever happens to the statements.
	roles := fmt.Sprintf(`SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;
CREATE ROLE replicator REPLICATION LOGIN PASSWORD %s;
CREATE ROLE bench_writer LOGIN PASSWORD %s IN ROLE pg_monitor;
CREATE DATABASE bench OWNER bench_writer;
`, pgwire.QuoteLiteral(m.replPass), pgwire.QuoteLiteral(writerPass))
	if _, err := m.try(1, m.psqlScript(), []byte(roles)); err != nil {
		t.Fatalf("by hand: creating the roles and the database: %s", errorLines(err.Error()))
	}
	for i := 2; i <= len(m.nodes); i++ {
		m.run(i, fmt.Sprintf(asPostgres+"%s/pg_basebackup -D %s -R -X stream -c fast -d %s >%s/basebackup.log 2>&1 || { s=$?; cat %s/basebackup.log >&2; exit $s; }",
			manualBin, manualData, sshrun.ShellQuote(m.conninfo(1, i)), manualDir, manualDir), nil)
		m.pgctl(i, "-w start")
	}
	m.psql(1, "ALTER SYSTEM SET synchronous_standby_names = "+pgwire.QuoteLiteral(syncNames(2, 3))+";\nSELECT pg_reload_conf();")

	m.DB = chaos.DB{User: "bench_writer", Password: writerPass, Database: "bench", Port: manualPort, Device: st.Bridge}
	m.Mon = chaos.NewMonitor(m.DB, addrs)
	t.Cleanup(m.Mon.Close)
	ctx := context.Background()
	if _, err := m.Mon.WaitHealthy(ctx, 60*time.Second, nil); err != nil {
		t.Fatalf("by hand: the cluster does not stream with a synchronous standby: %v\n%s", err, m.logs())
	}
	if err := m.Mon.Exec(ctx, 1, chaos.ChaosTables); err != nil {
		t.Fatalf("by hand: the writer's tables: %v", err)
	}
	t.Logf("by hand: %s primary, %s and %s streaming, synchronous_standby_names %s", manualName(1), manualName(2), manualName(3), syncNames(2, 3))
	return m
}

// setPendingRestart sets a postmaster setting on every member with ALTER SYSTEM and a reload, as
// a DBA does, and waits until each reports it pending a restart.
func (m *manualCluster) setPendingRestart(name, value string) {
	m.t.Helper()
	for i := range m.nodes {
		m.psql(i+1, fmt.Sprintf("ALTER SYSTEM SET %s = %s;\nSELECT pg_reload_conf();", pgwire.QuoteIdent(name), pgwire.QuoteLiteral(value)))
	}
	q := "SELECT pending_restart FROM pg_settings WHERE name = " + pgwire.QuoteLiteral(name)
	for i := range m.nodes {
		for deadline := time.Now().Add(30 * time.Second); m.psql(i+1, q) != "t"; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				m.t.Fatalf("by hand: %s does not report %s pending a restart 30 s after ALTER SYSTEM and a reload", m.nodes[i], name)
			}
		}
	}
	m.t.Logf("by hand: %s = %s set on every member, pending a restart", name, value)
}

// show is SHOW name on lab node i.
func (m *manualCluster) show(i int, name string) string {
	m.t.Helper()
	return m.psql(i, "SHOW "+pgwire.QuoteIdent(name))
}

// rollingRestart is the by-hand procedure: each standby restarted and streaming again before the
// next, then a switchover to the synchronous standby (the old primary stopped, the standby
// promoted, the other standby pointed at it, the old primary started as its standby), every
// member streaming at the end. It returns each step's time.
func (m *manualCluster) rollingRestart() []benchPhase {
	m.t.Helper()
	t0 := time.Now()
	var phases []benchPhase
	step := func(name string, fn func()) {
		m.t.Helper()
		s := time.Now()
		fn()
		phases = append(phases, benchPhase{name: name, start: s.Sub(t0), took: time.Since(s)})
		m.t.Logf("by hand: %s: %.2f s", name, time.Since(s).Seconds())
	}
	old := m.primary
	for i := range m.nodes {
		if i+1 == old {
			continue
		}
		step(fmt.Sprintf("restart %s, streaming again", manualName(i+1)), func() {
			began := time.Now()
			m.pgctl(i+1, "-m fast -w restart")
			m.waitStreaming(old, []int{i + 1}, began, false)
		})
	}

	var cand, other int
	step("switchover: synchronous_standby_names on the sync standby", func() {
		// The candidate is the standby the primary waits for; it gets its own list now, while it
		// is a standby, so that as a primary it never acknowledges a commit no standby has.
		sync := m.psql(old, "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'")
		for i := range m.nodes {
			switch {
			case manualName(i+1) == sync:
				cand = i + 1
			case i+1 != old:
				other = i + 1
			}
		}
		if cand == 0 || other == 0 {
			m.t.Fatalf("by hand: the primary %s names no synchronous standby among %d nodes (pg_stat_replication: %q)", manualName(old), len(m.nodes), sync)
		}
		m.psql(cand, "ALTER SYSTEM SET synchronous_standby_names = "+pgwire.QuoteLiteral(syncNames(other, old))+";\nSELECT pg_reload_conf();")
	})
	stopped := time.Now()
	step(fmt.Sprintf("switchover: stop the primary %s (-m fast)", manualName(old)), func() { m.pgctl(old, "-m fast -w stop") })
	step(fmt.Sprintf("switchover: promote %s", manualName(cand)), func() { m.pgctl(cand, "-w promote") })
	step(fmt.Sprintf("switchover: %s follows %s (reload)", manualName(other), manualName(cand)), func() {
		m.psql(other, "ALTER SYSTEM SET primary_conninfo = "+pgwire.QuoteLiteral(m.conninfo(cand, other))+";\nSELECT pg_reload_conf();")
	})
	step(fmt.Sprintf("switchover: %s started as a standby", manualName(old)), func() {
		// Stopped, it takes its settings in postgresql.auto.conf (as pg_basebackup -R writes them).
		conf := pgparams.Render(nil, map[string]string{"primary_conninfo": m.conninfo(cand, old)})
		m.run(old, fmt.Sprintf(asPostgres+"tee -a %s/postgresql.auto.conf >/dev/null && "+asPostgres+"touch %s/standby.signal", manualData, manualData), []byte(conf))
		m.pgctl(old, "-w start")
	})
	step("switchover: both standbys streaming, one synchronous", func() { m.waitStreaming(cand, []int{other, old}, stopped, true) })
	m.primary = cand
	return phases
}

// waitStreaming polls the primary's pg_stat_replication (psql over SSH, as a DBA checks) until
// every one of standbys streams on a connection opened after since, and with wantSync one of them
// is synchronous.
func (m *manualCluster) waitStreaming(primary int, standbys []int, since time.Time, wantSync bool) {
	m.t.Helper()
	q := fmt.Sprintf("SELECT application_name, state, sync_state, backend_start >= %s FROM pg_stat_replication ORDER BY 1",
		pgwire.QuoteLiteral(since.Format("2006-01-02 15:04:05.999999-07:00")))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := m.psql(primary, q)
		rows := map[string][]string{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Split(l, "|"); len(f) == 4 {
				rows[f[0]] = f
			}
		}
		ok, sync := true, false
		for _, s := range standbys {
			f := rows[manualName(s)]
			ok = ok && f != nil && f[1] == "streaming" && f[3] == "t"
			sync = sync || (f != nil && f[2] == "sync")
		}
		if ok && (sync || !wantSync) {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("by hand: after 2 min, %s's pg_stat_replication (name|state|sync|since %s) is\n%s\n%s",
				manualName(primary), since.Format(time.TimeOnly), out, m.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// conninfo is standby's primary_conninfo to upstream (lab nodes, 1-based).
func (m *manualCluster) conninfo(upstream, standby int) string {
	return libpq.Conninfo(libpq.P("host", m.nodes[upstream-1].Addr), libpq.P("port", fmt.Sprint(manualPort)),
		libpq.P("user", "replicator"), libpq.P("passfile", manualPass), libpq.P("application_name", manualName(standby)))
}

// syncNames is synchronous_standby_names waiting for the first of nodes that streams.
func syncNames(nodes ...int) string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = manualName(n)
	}
	return "FIRST 1 (" + strings.Join(names, ", ") + ")"
}

// pgctl runs pg_ctl args on lab node i, with the server log's tail when it fails.
func (m *manualCluster) pgctl(i int, args string) {
	m.t.Helper()
	m.run(i, fmt.Sprintf(asPostgres+"%s/pg_ctl -D %s -l %s -t 300 %s >/dev/null || { s=$?; tail -n 30 %s >&2; exit $s; }",
		manualBin, manualData, manualLog, args, manualLog), nil)
}

func (m *manualCluster) psqlScript() string {
	return fmt.Sprintf(asPostgres+"psql -X -q -A -t -v ON_ERROR_STOP=1 -h /var/run/postgresql -p %d -d postgres -f -", manualPort)
}

// psql runs sql (on stdin) as postgres over lab node i's socket; its unaligned output.
func (m *manualCluster) psql(i int, sql string) string {
	m.t.Helper()
	return m.run(i, m.psqlScript(), []byte(sql))
}

// run runs script as root on lab node i over SSH, with stdin, and fails the test with the
// command's output when it fails.
func (m *manualCluster) run(i int, script string, stdin []byte) string {
	m.t.Helper()
	out, err := m.try(i, script, stdin)
	if err != nil {
		m.t.Fatalf("by hand: %v", err)
	}
	return out
}

func (m *manualCluster) try(i int, script string, stdin []byte) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := m.r.Run(ctx, m.nodes[i-1].Target(), sshrun.Command{Script: script, AsUser: "root", Stdin: stdin})
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", m.nodes[i-1], script, err)
	}
	if res.ExitStatus != 0 {
		return res.Stdout, fmt.Errorf("%s: %s: exit status %d\n%s%s", m.nodes[i-1], script, res.ExitStatus, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout), nil
}

// stopScript stops the by-hand PostgreSQL on a node if it runs (a shell snippet, run as root).
func (m *manualCluster) stopScript() string {
	return fmt.Sprintf("if [ -f %[1]s/postmaster.pid ]; then "+asPostgres+"%[2]s/pg_ctl -D %[1]s -m immediate -w stop >/dev/null 2>&1 || true; fi\n", manualData, manualBin)
}

// teardown stops the by-hand cluster and removes its directories on every node.
func (m *manualCluster) teardown() {
	for i := range m.nodes {
		if _, err := m.try(i+1, m.stopScript()+"rm -rf "+manualDir, nil); err != nil {
			m.t.Logf("by hand: tearing down: %v", err)
		}
	}
}

// logs is the tail of every node's server log, for failure messages.
func (m *manualCluster) logs() string {
	var b strings.Builder
	for i := range m.nodes {
		// without the lines the writer's refused writes on standbys cause
		out, err := m.try(i+1, "grep -v -e chaos_ack -e 'read-only transaction' "+manualLog+" | tail -n 15", nil)
		fmt.Fprintf(&b, "--- %s %s (last 15 lines)\n%s\n", m.nodes[i], manualLog, cmp.Or(out, fmt.Sprint(err)))
	}
	return b.String()
}

// errorLines keeps only the error lines of a psql failure whose statements carry secrets (psql
// echoes a failing statement's text after LINE).
func errorLines(s string) string {
	var keep []string
	for i, l := range strings.Split(s, "\n") {
		if i == 0 || (strings.Contains(l, "ERROR:") || strings.Contains(l, "FATAL:")) && !strings.HasPrefix(strings.TrimSpace(l), "LINE ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// newSecret is a random password for the by-hand cluster's roles.
func newSecret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
