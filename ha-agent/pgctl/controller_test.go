package pgctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
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
)

// These tests drive a real PostgreSQL 15. PostgreSQL refuses to run as
// root, so the test (root) re-executes this test binary as the postgres
// OS user in a helper mode (PIGWF_PGCTL_HELPER) that uses the Controller
// and reports JSON lines on stdout.

func TestMain(m *testing.M) {
	switch os.Getenv("PIGWF_PGCTL_HELPER") {
	case "":
		os.Exit(m.Run())
	case "fence":
		os.Exit(helperFence(os.Args[1:]))
	case "orphan":
		os.Exit(helperOrphan(os.Args[1:]))
	case "rewind":
		os.Exit(helperRewind(os.Args[1:]))
	case "followstarting":
		os.Exit(helperFollowStarting(os.Args[1:]))
	case "resumepromotion":
		os.Exit(helperResumePromotion(os.Args[1:]))
	case "stalelock":
		os.Exit(helperStaleLock(os.Args[1:]))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(2)
	}
}

type openGate struct{}

func (openGate) WhileWritable(fn func() error) error { return fn() }

func helperController(args []string) (*Controller, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("want bin_dir data_dir socket_dir port, got %v", args)
	}
	port, _ := strconv.Atoi(args[3])
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return New(Config{MemberName: "h1", BinDir: args[0], DataDir: args[1], SocketDir: args[2], Port: port,
		Host: "127.0.0.1", ReplicationUser: "postgres", LogFile: filepath.Join(filepath.Dir(args[1]), "postgresql.log")}, openGate{}, log)
}

// helperFail reports a helper's failure (what, and why) and returns its exit code.
func helperFail(what string, err error) int {
	report(map[string]any{"error": what + ": " + err.Error()})
	return 1
}

// startHelperPrimary starts the helper's data directory as a running primary.
func startHelperPrimary(ctx context.Context, args []string) (*Controller, error) {
	c, err := helperController(args)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx, StartOptions{AsPrimary: true}); err != nil {
		return nil, err
	}
	if _, err := waitRunning(c); err != nil {
		return nil, err
	}
	return c, nil
}

// cloneHelper base-backs up prim into a sibling directory name (WAL method "stream" or "none")
// and returns a controller for it: member h2 on the next port, log name.log. Not started.
func cloneHelper(ctx context.Context, prim *Controller, name, walMethod string) (*Controller, error) {
	dir := filepath.Join(filepath.Dir(prim.cfg.DataDir), name)
	out, err := exec.CommandContext(ctx, filepath.Join(prim.cfg.BinDir, "pg_basebackup"), "-D", dir, "-h", "127.0.0.1",
		"-p", strconv.Itoa(prim.cfg.Port), "-U", "postgres", "-X", walMethod, "-c", "fast").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, out)
	}
	cfg := prim.cfg
	cfg.MemberName, cfg.DataDir, cfg.Port, cfg.LogFile = "h2", dir, prim.cfg.Port+1, filepath.Join(filepath.Dir(dir), name+".log")
	return New(cfg, openGate{}, prim.log)
}

func report(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func waitRunning(c *Controller) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		o, err := c.Observe(ctx)
		cancel()
		if err == nil && o.State == haagent.PGRunning {
			return time.Since(start), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("PostgreSQL not running after 30 s")
}

// helperFence starts PostgreSQL as a primary, keeps backends busy
// committing, fences, and reports how long the fence took and what
// Observe says afterwards. Five rounds.
func helperFence(args []string) int {
	c, err := helperController(args)
	if err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	for round := 0; round < 5; round++ {
		if err := c.Start(context.Background(), StartOptions{AsPrimary: true}); err != nil {
			report(map[string]any{"error": err.Error()})
			return 1
		}
		startup, err := waitRunning(c)
		if err != nil {
			report(map[string]any{"error": err.Error()})
			return 1
		}
		// Busy backends: each commits in a loop until killed.
		stop := make(chan struct{})
		for i := 0; i < 6; i++ {
			go func() {
				ctx := context.Background()
				conn, err := c.Connect(ctx)
				if err != nil {
					return
				}
				defer conn.Close()
				_ = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS f (i int)")
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn.Exec(ctx, "INSERT INTO f VALUES (1)") != nil {
						return
					}
				}
			}()
		}
		time.Sleep(150 * time.Millisecond)
		rep, ferr := c.Fence()
		close(stop)
		left := processesIn(c.cfg.DataDir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o, oerr := c.Observe(ctx)
		cancel()
		r := map[string]any{"round": round, "startup_ms": startup.Milliseconds(), "fence_us": rep.Elapsed.Microseconds(), "signalled_us": rep.Signalled.Microseconds(), "children_us": rep.ChildrenSignalled.Microseconds(),
			"killed": rep.Killed, "left": len(left), "state": string(o.State)}
		if ferr != nil {
			r["fence_error"] = ferr.Error()
		}
		if oerr != nil {
			r["observe_error"] = oerr.Error()
		}
		report(r)
	}
	// A clean stop is "stopped", not "crashed".
	if err := c.Start(context.Background(), StartOptions{AsPrimary: true}); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	if _, err := waitRunning(c); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx, StopFast); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	o, err := c.Observe(ctx)
	r := map[string]any{"clean_stop_state": string(o.State)}
	if err != nil {
		r["observe_error"] = err.Error()
	}
	report(r)
	return 0
}

// helperOrphan starts PostgreSQL, reports the postmaster pid and waits to
// be killed: the postmaster must die with it (Pdeathsig from the locked
// spawner thread), even though other goroutines come and go.
func helperOrphan(args []string) int {
	c, err := helperController(args)
	if err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	// Churn threads before and after the spawn: Pdeathsig must not fire
	// when some other thread of the process exits.
	for i := 0; i < 50; i++ {
		go func() { time.Sleep(time.Millisecond) }()
	}
	if err := c.Start(context.Background(), StartOptions{AsPrimary: true}); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	if _, err := waitRunning(c); err != nil {
		report(map[string]any{"error": err.Error()})
		return 1
	}
	for i := 0; i < 50; i++ {
		go func() { time.Sleep(time.Millisecond) }()
	}
	time.Sleep(100 * time.Millisecond)
	report(map[string]any{"postmaster": c.PostmasterPID(), "alive_after_thread_churn": alive(c.PostmasterPID())})
	select {} // until killed
}

type pgEnv struct {
	t        *testing.T
	bin      string
	pgBin    string
	dir      string
	dataDir  string
	sockDir  string
	uid, gid int
}

func newPGEnv(t *testing.T) *pgEnv {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("PIGWF_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("PIGWF_REQUIRE_INTEGRATION=1 but %s", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("runs PostgreSQL as the postgres OS user; must start as root")
	}
	pgBin := os.Getenv("PIGWF_PG_BIN")
	if pgBin == "" {
		pgBin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		skip("no PostgreSQL 15 binaries in " + pgBin)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		skip("no postgres OS user")
	}
	e := &pgEnv{t: t, pgBin: pgBin}
	e.uid, _ = strconv.Atoi(u.Uid)
	e.gid, _ = strconv.Atoi(u.Gid)
	e.dir, err = os.MkdirTemp("", "pigwf-pgctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range processesIn(e.dataDir) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		os.RemoveAll(e.dir)
	})
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.dir, e.uid, e.gid); err != nil {
		t.Fatal(err)
	}
	e.dataDir = filepath.Join(e.dir, "data")
	e.sockDir = e.dir
	self, _ := os.Executable()
	e.bin = filepath.Join(e.dir, "pgctl.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := e.cmd(filepath.Join(pgBin, "initdb"), "-D", e.dataDir, "-A", "trust", "-U", "postgres").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// DSM segments in the data directory: the clusters these tests kill
	// would otherwise leave them in the machine's /dev/shm.
	f, err := os.OpenFile(filepath.Join(e.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("\ndynamic_shared_memory_type = mmap\n")
		f.Close()
	}
	if err != nil {
		t.Fatalf("postgresql.conf: %v", err)
	}
	return e
}

func (e *pgEnv) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	cmd.Env = []string{"HOME=" + e.dir, "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Dir = e.dir
	return cmd
}

func (e *pgEnv) helper(mode string) *exec.Cmd {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := e.cmd(e.bin, e.pgBin, e.dataDir, e.sockDir, strconv.Itoa(port))
	cmd.Env = append(cmd.Env, "PIGWF_PGCTL_HELPER="+mode)
	return cmd
}

// runHelper runs a helper mode that reports one JSON object, and returns
// it with the helper's stderr (its log). Processes left in the helper's
// extra data directories (named below e.dir) are killed at cleanup.
func (e *pgEnv) runHelper(mode string, extraDataDirs ...string) (map[string]any, string) {
	e.t.Helper()
	cmd := e.helper(mode)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	e.t.Cleanup(func() {
		for _, d := range extraDataDirs {
			for _, p := range processesIn(filepath.Join(e.dir, d)) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	if err != nil {
		e.t.Fatalf("helper %s: %v\n%s\n%s", mode, err, out, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		e.t.Fatalf("helper %s output %q: %v", mode, out, err)
	}
	if msg, ok := r["error"]; ok {
		e.t.Fatalf("helper %s: %v\n%s", mode, msg, lastLines(stderr.String(), 20))
	}
	return r, stderr.String()
}

// Fence kills every PostgreSQL process of the data directory — backends
// included, though they are in sessions of their own — within a few
// milliseconds, and Observe then reports "crashed" with nothing left.
func TestFenceRealPostgres(t *testing.T) {
	e := newPGEnv(t)
	cmd := e.helper("fence")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s\n%s", err, out, stderr.String())
	}
	var sig, dead []time.Duration
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("helper output %q: %v", sc.Text(), err)
		}
		if e, ok := r["error"]; ok {
			t.Fatalf("helper: %v\n%s", e, stderr.String())
		}
		if st, ok := r["clean_stop_state"]; ok {
			if st != string(haagent.PGStopped) {
				t.Errorf("after a clean stop Observe says %v, want stopped (%v)", st, r["observe_error"])
			}
			continue
		}
		t.Logf("round %v: startup %vms, fence: postmaster+children SIGKILLed after %vµs, all %v processes after %vµs, all dead after %vµs; %v left, state %v",
			r["round"], r["startup_ms"], r["children_us"], r["killed"], r["signalled_us"], r["fence_us"], r["left"], r["state"])
		if r["fence_error"] != nil || r["left"].(float64) != 0 || r["state"] != string(haagent.PGCrashed) || r["killed"].(float64) < 6 {
			t.Errorf("round %v: %v", r["round"], r)
		}
		sig = append(sig, time.Duration(r["children_us"].(float64))*time.Microsecond)
		dead = append(dead, time.Duration(r["fence_us"].(float64))*time.Microsecond)
	}
	if len(sig) != 5 {
		t.Fatalf("%d fence rounds reported, want 5\n%s", len(sig), stderr.String())
	}
	slices.Sort(sig)
	slices.Sort(dead)
	t.Logf("FENCE over 5 rounds with 6 backends committing: postmaster and every child SIGKILLed after min %s / median %s / max %s; "+
		"all processes dead after min %s / median %s / max %s", sig[0], sig[2], sig[4], dead[0], dead[2], dead[4])
	// Once SIGKILL is pending a backend never returns to user code, so it
	// starts no new acknowledgement: that is the fence time the safety
	// argument's max_fence_ms (40) bounds. Death itself can wait for an
	// fsync in progress (D state), which sends nothing.
	if sig[4] > 40*time.Millisecond {
		t.Errorf("signalling the postmaster and its children took %s, above max_fence_ms 40", sig[4])
	}
	if dead[4] > 500*time.Millisecond {
		t.Errorf("processes took %s to die after SIGKILL", dead[4])
	}
}

// The postmaster dies with the agent: SIGKILL of the process that
// started it kills it (Pdeathsig), although Go threads come and go.
func TestPostmasterDiesWithAgent(t *testing.T) {
	e := newPGEnv(t)
	cmd := e.helper("orphan")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(line), &r); err != nil || r["postmaster"] == nil {
		t.Fatalf("helper said %q (%v)\n%s", line, err, stderr.String())
	}
	pm := int(r["postmaster"].(float64))
	if r["alive_after_thread_churn"] != true {
		t.Fatalf("postmaster %d died while the agent lived (thread churn fired Pdeathsig)", pm)
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_, _ = io.Copy(io.Discard, stdout)
	for alive(pm) {
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("postmaster %d still alive 2 s after its agent was killed", pm)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("postmaster %d died %s after its agent was SIGKILLed", pm, time.Since(killed).Round(time.Microsecond))
	// Backends of the dead postmaster notice it and exit; what remains is
	// what the next agent kills (clearLeftovers).
	time.Sleep(200 * time.Millisecond)
	if left := processesIn(e.dataDir); len(left) > 0 {
		t.Logf("processes left in the data directory 200 ms later (the next agent kills them): %v", left)
	}
}

// conninfo and configuration-file quoting round-trip.
func TestConfQuoting(t *testing.T) {
	dir := t.TempDir()
	orig := "# Do not edit this file manually!\nrestore_command = 'pgbackrest --stanza=pg-test archive-get %f \"%p\"'\nprimary_conninfo = 'host=old'\n"
	if err := os.WriteFile(filepath.Join(dir, autoConf), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	ci := "host=10.0.0.1 port=5432 user=replicator application_name='pg test''s' passfile=/var/lib/postgresql/.pgpass"
	if err := setAutoConf(dir, map[string]string{"primary_conninfo": ci, "primary_slot_name": "pg_test_2"}); err != nil {
		t.Fatal(err)
	}
	if got := readAutoConf(dir, "primary_conninfo"); got != ci {
		t.Errorf("primary_conninfo round trip: %q, want %q", got, ci)
	}
	if got := readAutoConf(dir, "restore_command"); got != `pgbackrest --stanza=pg-test archive-get %f "%p"` {
		t.Errorf("restore_command (written by pgBackRest) not kept: %q", got)
	}
	if err := setAutoConf(dir, map[string]string{"primary_conninfo": "", "primary_slot_name": ""}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, autoConf))
	if strings.Contains(string(b), "primary_") || !strings.Contains(string(b), "restore_command") {
		t.Errorf("after clearing the recovery settings:\n%s", b)
	}
	kv := parseConninfo(`host=h1 port=5433 user='a b' options='-c statement_timeout=0' x=a\ b`)
	if kv["host"] != "h1" || kv["port"] != "5433" || kv["user"] != "a b" || kv["options"] != "-c statement_timeout=0" || kv["x"] != "a b" {
		t.Errorf("parseConninfo: %v", kv)
	}
	if h, p := hostPort("host=10.213.0.12 port=5432 user=replicator"); h != "10.213.0.12" || p != 5432 {
		t.Errorf("hostPort: %s %d", h, p)
	}
	if SlotName("pg-test-2") != "pg_test_2" || SlotName("PG.Test") != "pg_test" {
		t.Errorf("SlotName: %s %s", SlotName("pg-test-2"), SlotName("PG.Test"))
	}
}

// helperRewind builds a diverged old primary and rewinds it while Observe
// runs every few milliseconds, as the agent's loop does. The old primary
// is killed (not shut down), so pg_rewind first runs crash recovery with
// `postgres --single` in the data directory: Observe's sweep for
// backends of a dead postmaster must not kill it.
func helperRewind(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("old primary", err)
	}
	exec1 := func(c *Controller, sql string) error {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Exec(ctx, sql)
	}
	// As pigwf's clusters do: keep WAL for pg_rewind, whose crash
	// recovery ends with a checkpoint that would recycle the segment of
	// the last common checkpoint.
	for _, sql := range []string{"ALTER SYSTEM SET wal_keep_size = '256MB'", "SELECT pg_reload_conf()",
		"CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)"} {
		if err := exec1(old, sql); err != nil {
			return fail("prepare old primary: "+sql, err)
		}
	}
	// The new primary: a base backup of the old one, promoted (timeline 2).
	src, err := cloneHelper(ctx, old, "src", "stream")
	if err != nil {
		return fail("source", err)
	}
	port := src.cfg.Port
	if err := src.Start(ctx, StartOptions{}); err != nil {
		return fail("start source as a standby", err)
	}
	if _, err := waitRunning(src); err != nil {
		return fail("source", err)
	}
	if err := src.Promote(ctx); err != nil {
		return fail("promote source", err)
	}
	if err := exec1(src, "INSERT INTO t VALUES (-2); CHECKPOINT"); err != nil {
		return fail("write on the new primary", err)
	}
	// The old primary diverges, then dies without a shutdown checkpoint.
	if err := exec1(old, "INSERT INTO t SELECT generate_series(1001, 5000)"); err != nil {
		return fail("diverge old primary", err)
	}
	if _, err := old.Fence(); err != nil {
		return fail("kill old primary", err)
	}
	stop := make(chan struct{})
	states := map[string]int{}
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			octx, ocancel := context.WithTimeout(ctx, time.Second)
			o, _ := old.Observe(octx)
			ocancel()
			states[string(o.State)]++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	rerr := old.Rewind(ctx, Upstream{Name: "h2", Host: "127.0.0.1", Port: port})
	close(stop)
	<-observed
	r := map[string]any{"observations": states}
	if rerr != nil {
		r["rewind_error"] = rerr.Error()
	}
	// The rewound old primary follows the new one and has its row.
	if rerr == nil {
		if err := old.Start(ctx, StartOptions{Upstream: &Upstream{Name: "h2", Host: "127.0.0.1", Port: port}}); err != nil {
			return fail("start rewound old primary", err)
		}
		if _, err := waitRunning(old); err != nil {
			return fail("rewound old primary", err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := old.Connect(ctx)
			if err == nil {
				res, qerr := conn.Query(ctx, "SELECT count(*) FILTER (WHERE i = -2), count(*) FILTER (WHERE i > 1000) FROM t")
				conn.Close()
				if qerr == nil && len(res) == 1 && len(res[0].Rows) == 1 {
					r["new_row"], r["diverged_rows"] = str(res[0].Rows[0][0]), str(res[0].Rows[0][1])
					if r["new_row"] == "1" || time.Now().After(deadline) {
						break
					}
				}
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = old.Stop(ctx, StopFast)
	}
	_ = src.Stop(ctx, StopFast)
	report(r)
	return 0
}

// pg_rewind of a crashed old primary works while the agent's loop keeps
// observing: the sweep for orphaned backends must not kill pg_rewind's
// single-user crash recovery (it did, and every rewind became a re-clone).
func TestRewindWhileObserving(t *testing.T) {
	e := newPGEnv(t)
	r, stderr := e.runHelper("rewind", "src")
	t.Logf("observations during pg_rewind: %v", r["observations"])
	if msg, ok := r["rewind_error"]; ok {
		t.Fatalf("pg_rewind failed while the loop observed: %v\n%s", msg, lastLines(stderr, 20))
	}
	if !strings.Contains(stderr, "pg_rewind from h2 finished") {
		t.Errorf("no pg_rewind completion in the log:\n%s", lastLines(stderr, 20))
	}
	if r["new_row"] != "1" || r["diverged_rows"] != "0" {
		t.Errorf("after the rewind the old primary has the new primary's row %v time(s) (want 1) and %v diverged rows (want 0)", r["new_row"], r["diverged_rows"])
	}
}

// helperStaleLock leaves the lock files of a dead postmaster naming a PID
// that now belongs to another live process (as after a node restart), and
// starts PostgreSQL again.
func helperStaleLock(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("first start", err)
	}
	sockLock := filepath.Join(c.cfg.SocketDir, fmt.Sprintf(".s.PGSQL.%d.lock", c.cfg.Port))
	pidFile := filepath.Join(c.cfg.DataDir, "postmaster.pid")
	saved := map[string][]byte{}
	for _, f := range []string{sockLock, pidFile} {
		if saved[f], err = os.ReadFile(f); err != nil {
			return fail("read lock file", err)
		}
	}
	if _, err := c.Fence(); err != nil { // dies without removing its lock files
		return fail("kill", err)
	}
	other := exec.Command("sleep", "60") // the process that got the old PID
	if err := other.Start(); err != nil {
		return fail("start another process", err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	for f, b := range saved {
		_, rest, _ := strings.Cut(string(b), "\n")
		if err := os.WriteFile(f, []byte(strconv.Itoa(other.Process.Pid)+"\n"+rest), 0o600); err != nil {
			return fail("write stale lock file", err)
		}
	}
	r := map[string]any{}
	if err := c.Start(ctx, StartOptions{AsPrimary: true}); err != nil {
		r["start_error"] = err.Error()
	} else if _, err := waitRunning(c); err != nil {
		r["start_error"] = err.Error() + pgLogTail(c.cfg.LogFile)
	}
	_ = c.Stop(ctx, StopFast)
	report(r)
	return 0
}

func pgLogTail(path string) string {
	b, _ := os.ReadFile(path)
	return ": " + lastLines(string(b), 3)
}

// PostgreSQL starts after a node restart although its old lock files name
// a PID that another process has now (it refused: "lock file already exists").
func TestStartWithStaleLockFiles(t *testing.T) {
	e := newPGEnv(t)
	r, stderr := e.runHelper("stalelock")
	if msg, ok := r["start_error"]; ok {
		t.Fatalf("PostgreSQL did not start with stale lock files: %v", msg)
	}
	if !strings.Contains(stderr, "removed a stale PostgreSQL lock file") {
		t.Errorf("no log line about the stale lock files:\n%s", lastLines(stderr, 10))
	}
}

// helperFollowStarting starts a standby that cannot become consistent
// without its primary's WAL (a base backup without WAL) pointed at a port
// where nothing listens, then re-points it with FollowWhileStarting.
func helperFollowStarting(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	conn, err := prim.Connect(ctx)
	if err != nil {
		return fail("connect", err)
	}
	// The leader keeps a slot for every member (ensureSlots); so does this primary.
	for _, sql := range []string{"ALTER SYSTEM SET wal_keep_size = '256MB'", "SELECT pg_reload_conf()",
		"SELECT pg_create_physical_replication_slot('" + SlotName("h2") + "')"} {
		if err := conn.Exec(ctx, sql); err != nil {
			return fail(sql, err)
		}
	}
	conn.Close()
	sb, err := cloneHelper(ctx, prim, "standby", "none")
	if err != nil {
		return fail("standby", err)
	}
	defer func() { _ = sb.Stop(context.Background(), StopFast) }()
	nowhere := Upstream{Name: "gone", Host: "127.0.0.1", Port: prim.cfg.Port + 2}
	if err := sb.Start(ctx, StartOptions{Upstream: &nowhere}); err != nil {
		return fail("start standby", err)
	}
	// It stays "starting": it needs WAL only the primary has.
	time.Sleep(1500 * time.Millisecond)
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	o, _ := sb.Observe(octx)
	ocancel()
	r := map[string]any{"state_before": string(o.State), "upstream_before": o.PrimaryHost + ":" + strconv.Itoa(o.PrimaryPort),
		"in_recovery_before": o.InRecovery}
	if err := sb.FollowWhileStarting(&Upstream{Name: "h1", Host: "127.0.0.1", Port: prim.cfg.Port}); err != nil {
		r["follow_error"] = err.Error()
	} else if took, err := waitRunning(sb); err != nil {
		r["follow_error"] = err.Error() + pgLogTail(sb.cfg.LogFile)
	} else {
		r["running_after_ms"] = took.Milliseconds()
	}
	report(r)
	return 0
}

// A standby that is still starting and needs WAL it can only get from a
// new upstream is re-pointed without a restart (and then becomes consistent).
func TestFollowWhileStarting(t *testing.T) {
	e := newPGEnv(t)
	r, _ := e.runHelper("followstarting", "standby")
	t.Logf("%v", r)
	if r["state_before"] != string(haagent.PGStarting) || r["in_recovery_before"] != true {
		t.Fatalf("the standby should be a starting standby before the switch: %v", r)
	}
	if up, _ := r["upstream_before"].(string); !strings.HasPrefix(up, "127.0.0.1:") {
		t.Errorf("Observe of a starting standby does not report its upstream from postgresql.auto.conf: %v", r["upstream_before"])
	}
	if msg, ok := r["follow_error"]; ok {
		if b, err := os.ReadFile(filepath.Join(e.dir, "standby.log")); err == nil {
			t.Logf("standby log:\n%s", lastLines(string(b), 30))
		}
		t.Fatalf("after FollowWhileStarting the standby did not become consistent and running: %v", msg)
	}
}

// helperResumePromotion: a standby holds WAL it received but has not replayed (replay paused)
// when it is killed, as a new leader's standby can be in the middle of its promotion. It is
// started again the way the agent resumes a promotion (a standby without upstream) and promoted:
// every row the primary committed must be there.
func helperResumePromotion(args []string) int {
	fail := helperFail
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prim, err := startHelperPrimary(ctx, args)
	if err != nil {
		return fail("primary", err)
	}
	defer func() { _ = prim.Stop(context.Background(), StopFast) }()
	query := func(c *Controller, sql string) (string, error) {
		conn, err := c.Connect(ctx)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		res, err := conn.Query(ctx, sql)
		if err != nil || len(res) == 0 || len(res[len(res)-1].Rows) == 0 {
			return "", err
		}
		return str(res[len(res)-1].Rows[0][0]), nil
	}
	for _, sql := range []string{"SELECT pg_create_physical_replication_slot('" + SlotName("h2") + "')", "CREATE TABLE t (i int)"} {
		if _, err := query(prim, sql); err != nil {
			return fail(sql, err)
		}
	}
	sb, err := cloneHelper(ctx, prim, "standby", "stream")
	if err != nil {
		return fail("standby", err)
	}
	defer func() { _ = sb.Stop(context.Background(), StopFast) }()
	if err := sb.Start(ctx, StartOptions{Upstream: &Upstream{Name: "h1", Host: "127.0.0.1", Port: prim.cfg.Port}}); err != nil {
		return fail("start standby", err)
	}
	if _, err := waitRunning(sb); err != nil {
		return fail("standby", err)
	}
	if _, err := query(sb, "SELECT pg_wal_replay_pause()"); err != nil {
		return fail("pause replay", err)
	}
	if _, err := query(prim, "INSERT INTO t SELECT generate_series(1, 5000)"); err != nil {
		return fail("insert", err)
	}
	flush, err := query(prim, "SELECT pg_current_wal_flush_lsn()::text")
	if err != nil {
		return fail("flush lsn", err)
	}
	r := map[string]any{}
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, err := query(sb, "SELECT pg_last_wal_receive_lsn() >= '"+flush+"'::pg_lsn AND pg_last_wal_replay_lsn() < '"+flush+"'::pg_lsn")
		if err == nil && got == "t" {
			break
		}
		if time.Now().After(deadline) {
			return fail("the standby did not receive the rows with replay paused", fmt.Errorf("%q %v", got, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r["rows_visible_before_kill"], _ = query(sb, "SELECT count(*) FROM t")
	if _, err := sb.Fence(); err != nil { // killed mid-promotion: standby.signal stays
		return fail("kill standby", err)
	}
	// How the agent resumes the promotion: a standby without upstream, then promote.
	if err := sb.Start(ctx, StartOptions{}); err != nil {
		return fail("restart standby", err)
	}
	if _, err := waitRunning(sb); err != nil {
		return fail("restarted standby", err)
	}
	if err := sb.Promote(ctx); err != nil {
		return fail("promote", err)
	}
	r["rows_after_promotion"], _ = query(sb, "SELECT count(*) FROM t")
	report(r)
	return 0
}

// The agent's resumed promotion (Decide cases 105-107) on real PostgreSQL: a standby killed with
// received but unreplayed WAL, restarted as a standby without upstream and promoted, has every row.
// (The loss the old restart-as-primary caused needs WAL on a newer timeline than the control
// file's; this test shows the path the agent takes now works, not that contrast.)
func TestResumedPromotionKeepsReceivedWAL(t *testing.T) {
	e := newPGEnv(t)
	r, _ := e.runHelper("resumepromotion", "standby")
	t.Logf("%v", r)
	if r["rows_visible_before_kill"] == "5000" {
		t.Fatalf("replay was not paused: the standby had replayed everything before the kill, so this proves nothing: %v", r)
	}
	if r["rows_after_promotion"] != "5000" {
		t.Errorf("after the resumed promotion the new primary has %v rows, want the 5000 its old primary committed", r["rows_after_promotion"])
	}
}
