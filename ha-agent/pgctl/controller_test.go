package pgctl

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
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
	case "tls":
		os.Exit(helperTLS(os.Args[1:]))
	case "observe":
		os.Exit(helperObserve(os.Args[1:]))
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
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := prim.cfg
	cfg.MemberName, cfg.DataDir, cfg.Port, cfg.LogFile = "h2", dir, port, filepath.Join(filepath.Dir(dir), name+".log")
	return New(cfg, openGate{}, prim.log)
}

// freePort is a TCP port on 127.0.0.1 nothing listens on now. The primary's port plus one, used
// before, is in the ephemeral range and was sometimes taken by another test's listener (CI runs
// the packages side by side).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func report(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func waitRunning(c *Controller) (time.Duration, error) {
	start := time.Now()
	var last string
	for time.Since(start) < 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		o, err := c.Observe(ctx)
		cancel()
		if err == nil && o.State == haagent.PGRunning {
			return time.Since(start), nil
		}
		last = fmt.Sprintf("state %v, error %v", o.State, err)
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("PostgreSQL not running after 30 s (last seen: %s)", last)
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
		e.t.Fatalf("helper %s: %v\n%s\n%s%s", mode, err, out, stderr.String(), e.serverLogs())
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		e.t.Fatalf("helper %s output %q: %v", mode, out, err)
	}
	if msg, ok := r["error"]; ok {
		e.t.Fatalf("helper %s: %v\n%s%s", mode, msg, lastLines(stderr.String(), 20), e.serverLogs())
	}
	return r, stderr.String()
}

// serverLogs is the end of every PostgreSQL log the helpers wrote, for a failure's message:
// the directory is removed at cleanup, and a server that would not start says why only there.
func (e *pgEnv) serverLogs() string {
	logs, _ := filepath.Glob(filepath.Join(e.dir, "*.log"))
	var b strings.Builder
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s (last lines)\n%s", filepath.Base(l), lastLines(string(data), 15))
	}
	return b.String()
}
