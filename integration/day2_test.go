package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/chaos"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/workflows"
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

// postmasterStart is when node i's running postmaster started, as PostgreSQL says.
func postmasterStart(t *testing.T, st *lab.Status, i int) string {
	t.Helper()
	out, err := psqlPort(st.Nodes[i].Addr, 5432, "SELECT pg_postmaster_start_time()")
	if err != nil {
		t.Fatalf("pg_postmaster_start_time() on node %d: %v\n%s", i+1, err, out)
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
	pmBefore := postmasterStart(t, st, 1)
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
	if pm := postmasterStart(t, st, 1); pm != pmBefore {
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

// Day-2 operations on the lab, in synchronous mode: the cluster's configuration from outside,
// then `pg-restart --pending` applying the pending setting under a steady writer, with write
// unavailability only at the switchover and no acknowledged write lost.
func TestDay2OnLab(t *testing.T) {
	requireIntegration(t)
	st, home := clusterLab(t, "pwday2", "10.213.35")
	inv, cl, err := chaos.SyncInventory(st, home) // pg_synchronous_mode: true
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", inv, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	st.Inventory = inv
	checkConfigOnLab(t, st, home)

	db, mon, addrs, _ := clusterLoad(t, st, cl)
	pmBefore := map[int]string{}
	for i := range st.Nodes {
		pmBefore[i] = postmasterStart(t, st, i)
	}
	run := pigwfRollingRestart(t, home, inv, "160MB", db, mon, addrs)
	t.Logf("PG-RESTART --pending under the writer: %.2f s, longest write gap %.3f s at +%.2f s, %d acknowledged writes, %d lost",
		run.total.Seconds(), run.gap.Seconds(), run.gapAt.Seconds(), run.acked, len(run.lost))
	for _, p := range run.phases {
		t.Logf("  %-40s at +%6.2fs takes %6.2fs", p.name, p.start.Seconds(), p.took.Seconds())
	}
	if run.gap > 2*time.Second {
		t.Errorf("writes stopped for %s during the rolling restart (the goal is under 1 s, at the switchover only)", run.gap)
	}
	// The replicas restart without stopping writes: the longest gap is the switchover's.
	for _, p := range run.phases {
		if p.name == "control/candidate" && run.gap > 200*time.Millisecond && run.gapAt < p.start {
			t.Errorf("the longest write gap (%s) began at +%.2f s, before the switchover (+%.2f s): a replica's restart stopped writes",
				run.gap, run.gapAt.Seconds(), p.start.Seconds())
		}
	}
	for i := range st.Nodes {
		if got := showOn(t, st, i, "shared_buffers"); got != "160MB" {
			t.Errorf("node %d runs shared_buffers %s after pg-restart", i+1, got)
		}
		if pm := postmasterStart(t, st, i); pm == pmBefore[i] {
			t.Errorf("node %d was not restarted", i+1)
		}
	}
	out, _ := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", inv)
	if strings.Contains(out, "Pending restart") {
		t.Errorf("a member still waits for a restart after pg-restart --pending:\n%s", out)
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		for _, id := range []string{"pg-restart/pg-test", "switchover/pg-test", "pg-cluster-create/pg-test"} {
			saveHistory(t, id)
		}
	}
	// pg-reload: every member reloads, nothing waits for a restart.
	if out, err := pigwf(t, home, "start", "pg-reload", "--cluster", "pg-test", "--inventory", inv, "--wait"); err != nil {
		t.Errorf("pg-reload: %v\n%s", err, out)
	} else {
		t.Logf("pg-reload:\n%s", out)
		if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
			saveHistory(t, "pg-reload/pg-test")
		}
	}
	checkRunbookOnLab(t, st, home, inv, w)

	// A rerun has nothing to restart.
	if out, err := pigwf(t, home, "start", "pg-restart", "--cluster", "pg-test", "--inventory", inv, "--pending", "--wait", "--as", "carol"); err != nil {
		t.Errorf("pg-restart --pending rerun: %v\n%s", err, out)
	} else if strings.Contains(out, "[changed]") {
		t.Errorf("pg-restart --pending with nothing pending restarted a member:\n%s", out)
	} else {
		t.Logf("pg-restart --pending rerun:\n%s", out)
	}
}

// restartsOn counts the planned restarts node i's agent has logged.
func restartsOn(t *testing.T, st *lab.Status, i int) int {
	t.Helper()
	out := nodeRun(t, st, i+1, "grep -c 'restarting PostgreSQL on request (POST /restart)' /pg/log/ha-agent/ha-agent.log || true")
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// checkRunbookOnLab runs the shipped rolling restart (runbooks/rolling-restart.yml) through the
// interpreter, with a pending setting to apply, kills the worker once the first replica has
// restarted, and checks the run completes on a new worker with no member restarted twice and
// the setting live everywhere; bad runbook files are refused with file:line before anything starts.
func checkRunbookOnLab(t *testing.T, st *lab.Status, home, inv string, w *workerProc) {
	t.Helper()
	for _, c := range []struct{ text, says string }{
		{"runbook: bad\nsteps:\n  - name: r\n    restart: {on: replicas}\n  - name: w\n    wiat: {until: streaming}\n", "bad-runbook.yml:6: steps[1].wiat is not a field here; did you mean wait?"},
		{"runbook: bad\nsteps:\n  - name: r\n    restart: {on: replicas}\n", "bad-runbook.yml:3: steps[0] (r) is a restart without an approval before it"},
		{"runbook: bad\nsteps:\n  - name: a\n    approval: {reason: x}\n  - name: l\n    each: {of: standbys, steps: [{name: s, reload: {on: member}}]}\n", "bad-runbook.yml:6"},
	} {
		bad := filepath.Join(home, "bad-runbook.yml")
		os.WriteFile(bad, []byte(c.text), 0o644)
		out, err := pigwf(t, home, "start", "runbook", "--file", bad, "--cluster", "pg-test", "--inventory", inv, "--as", "carol")
		if err == nil || !strings.Contains(out, c.says) {
			t.Errorf("a bad runbook: %v, want %q\n%s\n%s", err, c.says, c.text, out)
		} else {
			t.Logf("bad runbook refused: %s", firstLine(out))
		}
	}
	if out, err := pigwf(t, home, "config", "set", "--cluster", "pg-test", "--inventory", inv, "--yes", "shared_buffers=192MB"); err != nil {
		t.Fatalf("config set shared_buffers=192MB: %v\n%s", err, out)
	}
	waitAgentsPending(t, home, inv, "shared_buffers", len(st.Nodes))
	before := map[int]int{}
	for i := range st.Nodes {
		before[i] = restartsOn(t, st, i)
	}
	file, _ := filepath.Abs(filepath.Join("..", "runbooks", "rolling-restart.yml"))
	if out, err := pigwf(t, home, "start", "runbook", "--file", file, "--cluster", "pg-test", "--inventory", inv, "--dry-run", "--as", "carol"); err != nil {
		t.Fatalf("runbook --dry-run: %v\n%s", err, out)
	} else {
		t.Logf("rolling-restart.yml --dry-run:\n%s", out)
	}
	start := time.Now()
	if out, err := pigwf(t, home, "start", "runbook", "--file", file, "--cluster", "pg-test", "--inventory", inv, "--as", "carol"); err != nil {
		t.Fatalf("start runbook rolling-restart.yml: %v\n%s", err, out)
	}
	c := dial(t)
	ap := startApprover(t, home, c, "day2: the shipped rolling restart")
	defer ap.stop()
	// Kill the worker once a replica restarted: the run must finish on the next worker, and no
	// member restarts twice.
	deadline := time.Now().Add(3 * time.Minute)
	for killed := false; !killed; time.Sleep(100 * time.Millisecond) {
		for i := range st.Nodes {
			if restartsOn(t, st, i) > before[i] {
				t.Logf("the first replica restarted (node %d) %.1f s into the run: killing the worker", i+1, time.Since(start).Seconds())
				w.kill()
				killed = true
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica restarted within 3 minutes of the runbook's start")
		}
	}
	time.Sleep(2 * time.Second)
	startWorker(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var res workflows.RunbookResult
	if err := c.C.GetWorkflow(ctx, "runbook/pg-test", "").Get(ctx, &res); err != nil {
		t.Fatalf("runbook/pg-test after a worker kill: %v", err)
	}
	t.Logf("RUNBOOK rolling-restart.yml completed %.1f s after its start, across a worker kill", time.Since(start).Seconds())
	for i := range st.Nodes {
		// The old primary is restarted by the switchover's demotion, which applies the setting:
		// its agent then answers that nothing waits, and it is not restarted again.
		n := restartsOn(t, st, i) - before[i]
		t.Logf("node %d: %d planned restart(s) during the runbook", i+1, n)
		if n > 1 {
			t.Errorf("node %d restarted %d times during the runbook, want at most once", i+1, n)
		}
		if got := showOn(t, st, i, "shared_buffers"); got != "192MB" {
			t.Errorf("node %d runs shared_buffers %s after the runbook", i+1, got)
		}
	}
	// What the Web UI shows of the run comes from Temporal: the `temporal` CLI (not pigwf) sees the
	// runbook's name in the run's summary.
	if cli := testenv.TemporalCLI(); cli != "" {
		args := append([]string{"workflow", "describe", "--workflow-id", "runbook/pg-test", "--namespace", "default", "--command-timeout", "10s"}, env.TemporalCLIArgs()...)
		cmd := exec.Command(cli, args...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "rolling-restart") {
			t.Errorf("temporal workflow describe runbook/pg-test: %v, want the runbook's name in its summary\n%s", err, out)
		}
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, "runbook/pg-test")
	}
	ap.stop() // one approver at a time: the next runs start their own
	checkShippedRunbooks(t, st, home, inv)
}

// checkShippedRunbooks runs the other shipped runbooks on the lab: vacuum-analyze.yml, and
// rotate-password.yml, after which the admin user logs in with the worker's new secret only, and
// whose rerun changes nothing.
func checkShippedRunbooks(t *testing.T, st *lab.Status, home, inv string) {
	t.Helper()
	runbook := func(name string) (string, error) {
		file, _ := filepath.Abs(filepath.Join("..", "runbooks", name))
		return pigwf(t, home, "start", "runbook", "--file", file, "--cluster", "pg-test", "--inventory", inv, "--as", "carol", "--wait")
	}
	if out, err := runbook("vacuum-analyze.yml"); err != nil {
		t.Errorf("vacuum-analyze.yml: %v\n%s", err, out)
	} else {
		t.Logf("vacuum-analyze.yml:\n%s", out)
	}

	leader := nodeIndex(t, st, addrOfMember(t, st, leaderOf(t, home, st)))
	verifier := func() string {
		return nodeRun(t, st, leader, `runuser -u postgres -- psql -X -At -h /var/run/postgresql -d postgres -c "SELECT md5(rolpassword) FROM pg_authid WHERE rolname = 'dbuser_dba'"`)
	}
	before := verifier()
	password := fmt.Sprintf("Rotated.%d", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(home, "secrets", "pg-test", "admin"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := dial(t)
	ap := startApprover(t, home, c, "day2: rotate the admin password")
	defer ap.stop()
	out, err := runbook("rotate-password.yml")
	if err != nil {
		t.Fatalf("rotate-password.yml: %v\n%s", err, out)
	}
	t.Logf("rotate-password.yml:\n%s", out)
	if after := verifier(); after == before {
		t.Errorf("rotate-password.yml did not change dbuser_dba's password")
	}
	login := nodeRun(t, st, leader, "PGPASSWORD="+password+" psql -X -At -h 127.0.0.1 -U dbuser_dba -d postgres -c 'SELECT current_user' 2>&1 || true")
	if strings.TrimSpace(login) != "dbuser_dba" {
		t.Errorf("dbuser_dba cannot log in with the rotated password: %s", login)
	}
	out, err = runbook("rotate-password.yml")
	unchanged := false
	for _, l := range strings.Split(out, "\n") {
		unchanged = unchanged || (strings.Contains(l, "set-password") && strings.Contains(l, "[unchanged]"))
	}
	if err != nil || !unchanged {
		t.Errorf("rotate-password.yml rerun: %v, want its set-password step unchanged\n%s", err, out)
	}
}
