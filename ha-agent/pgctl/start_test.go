package pgctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
