//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
)

// Labs of the suite: names and subnets nobody else uses.
var (
	pigwfLab   = lab.Config{Name: "pwchaos", Subnet: "10.213.41", Nodes: 3, Cluster: "pg-test"}
	patroniLab = lab.Config{Name: "pwpatroni", Subnet: "10.213.42", Nodes: 3, Cluster: "pg-test"}
)

// reserve is kept free before the test's deadline for the report and the labs' teardown.
const reserve = 3 * time.Minute

func say(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }

// TestChaos runs every fault N times (PIGWF_CHAOS_N, default 10) on pigwf, then faults (1)–(3)
// on Patroni, and prints the report. PIGWF_CHAOS_SYSTEMS (default "pigwf,patroni") and
// PIGWF_CHAOS_FAULTS / PIGWF_CHAOS_PATRONI_FAULTS (fault names, comma-separated) narrow it down.
func TestChaos(t *testing.T) {
	if reason := testenv.MissingPrereq(); reason != "" {
		t.Fatalf("chaos suite prerequisites missing: %s (run `make chaos`)", reason)
	}
	n, err := envInt("PIGWF_CHAOS_N", 10)
	if err != nil {
		t.Fatal(err)
	}
	systems := envList("PIGWF_CHAOS_SYSTEMS", "pigwf,patroni")
	pigwfFaults, err := envFaults("PIGWF_CHAOS_FAULTS", []FaultKind{PGCrash, NodeCrash, Isolation, AgentKill, EtcdKill, Switchover})
	if err != nil {
		t.Fatal(err)
	}
	patroniFaults, err := envFaults("PIGWF_CHAOS_PATRONI_FAULTS", []FaultKind{PGCrash, NodeCrash, Isolation})
	if err != nil {
		t.Fatal(err)
	}
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(75 * time.Minute)
	}
	began := time.Now()
	say("CHAOS suite: N=%d, systems %v, started %s", n, systems, began.Format(time.RFC3339))
	facts := machineFacts()
	for _, f := range facts {
		say("  machine: %s", f)
	}

	var (
		pigwfSums, patroniSums         []Summary
		pigwfSettings, patroniSettings []string
		pigwfNotes, patroniNotes       []string
	)
	if systems["pigwf"] {
		// leave the Patroni side its time: ~35 s per trial (ttl 20 s + rejoin) and its set-up
		stopAt := deadline.Add(-reserve)
		if systems["patroni"] {
			stopAt = stopAt.Add(-time.Duration(n*len(patroniFaults))*35*time.Second - 2*time.Minute)
		}
		t.Run("pigwf", func(t *testing.T) {
			pigwfSums, pigwfSettings, pigwfNotes = runPigwf(t, n, pigwfFaults, stopAt)
		})
	}
	if systems["patroni"] {
		t.Run("patroni", func(t *testing.T) {
			patroniSums, patroniSettings, patroniNotes = runPatroni(t, n, patroniFaults, deadline.Add(-reserve))
		})
	}

	// The report.
	say("")
	say("================ CHAOS REPORT ================")
	say("run: %s, took %s, N=%d requested", began.Format(time.RFC3339), time.Since(began).Round(time.Second), n)
	for _, f := range facts {
		say("machine: %s", f)
	}
	say("writer: pgx/v5 to all 3 nodes as %s/%s, commit timeout %s, hedge %s, pace %s; probe every %s (write timeout %s)",
		ChaosDB.User, ChaosDB.Database, DefaultWriterConfig().CommitTimeout, DefaultWriterConfig().Hedge, DefaultWriterConfig().Pace,
		DefaultProbeConfig().Interval, DefaultProbeConfig().Timeout)
	say("RTO = fault injection → first write acknowledged (attempt started after the fault); back in = fault lifted (node restarted + link up / link up / at once) → old primary streaming from the new one")
	say("faults: ")
	for _, f := range Faults {
		say("  (%d) %-11s %s", f.Number, f.Kind, f.Title)
	}
	if systems["pigwf"] {
		say("")
		say("pigwf settings (lab %s, subnet %s.0/24):", pigwfLab.Name, pigwfLab.Subnet)
		for _, s := range pigwfSettings {
			say("  %s", s)
		}
		for _, s := range pigwfNotes {
			say("  note: %s", s)
		}
	}
	if systems["patroni"] {
		say("")
		say("Patroni settings (lab %s, subnet %s.0/24, own 3-member etcd; run after pigwf's lab was removed):", patroniLab.Name, patroniLab.Subnet)
		for _, s := range patroniSettings {
			say("  %s", s)
		}
		for _, s := range patroniNotes {
			say("  note: %s", s)
		}
	}
	say("")
	var b strings.Builder
	WriteTable(&b, append(append([]Summary(nil), pigwfSums...), patroniSums...))
	say("%s", b.String())
	if len(pigwfSums) > 0 {
		say("pigwf goal: median RTO < 1 s")
		b.Reset()
		WriteGoals(&b, pigwfSums)
		say("%s", b.String())
	}
	if len(pigwfSums) > 0 && len(patroniSums) > 0 {
		say("ratio of median RTOs (same run, same machine):")
		b.Reset()
		WriteComparison(&b, pigwfSums, patroniSums, "Patroni")
		say("%s", b.String())
	}
	say("==============================================")
}

// side is one system's run: its writer, probe and monitor around the trials.
func runTrials(t *testing.T, sys System, db DB, faults []FaultKind, n int, stopAt time.Time, failOnBroken bool) ([]Summary, []string) {
	addrs := addrsOf(sys.Lab())
	mon := NewMonitor(db, addrs)
	defer mon.Close()
	ctx := context.Background()
	h, err := mon.WaitHealthy(ctx, 2*time.Minute, sys.ExtraHealthy)
	if err != nil {
		t.Fatalf("%s: not healthy before the first trial: %v\n%s", sys.Name(), err, sys.Diagnostics([]int{1, 2, 3}))
	}
	first, err := mon.MaxID(ctx, h.Primary)
	if err != nil {
		t.Fatalf("%s: %v", sys.Name(), err)
	}
	w := NewWriter(db, addrs, DefaultWriterConfig(), first)
	p := NewProbe(db, addrs, DefaultProbeConfig())
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(runCtx) }()
	go func() { defer wg.Done(); p.Run(runCtx) }()
	defer func() { stop(); wg.Wait() }()

	r := &Runner{Sys: sys, Addrs: addrs, Mon: mon, W: w, P: p}
	var sums []Summary
	var notes []string
	for _, kind := range faults {
		var trials []*Trial
		for k := 1; k <= n; k++ {
			if time.Now().After(stopAt) {
				notes = append(notes, fmt.Sprintf("%s: stopped after %d of %d trials: the run's time budget is spent", kind, k-1, n))
				break
			}
			tr := r.RunTrial(ctx, kind, k)
			trials = append(trials, tr)
			say("%s", TrialLine(tr))
			if tr.Failed() {
				if tr.Diag != "" {
					say("    diagnostics:\n%s", indent(tr.Diag, "      "))
				}
				if failOnBroken {
					t.Errorf("%s %s trial %d broke a promise: %s", sys.Name(), kind, k, failureSummary(tr))
				}
			}
		}
		sums = append(sums, Summarize(sys.Name(), FaultByKind(kind), trials))
	}
	stop()
	wg.Wait()
	attempts, acked, timeouts, cancels := w.Stats()
	rounds, perNode := p.Rounds()
	notes = append(notes, fmt.Sprintf("writer: %d attempts, %d acknowledged, %d timed out, %d successes carrying the sync-cancel notice (not counted); probe: %d rounds, acknowledged probe writes per node %v",
		attempts, acked, timeouts, cancels, rounds, perNode))
	return sums, notes
}

func failureSummary(tr *Trial) string {
	var parts []string
	if len(tr.Lost) > 0 {
		parts = append(parts, fmt.Sprintf("%d acknowledged writes lost", len(tr.Lost)))
	}
	if len(tr.SplitBrains) > 0 {
		parts = append(parts, fmt.Sprintf("%d probe rounds with two writable primaries", len(tr.SplitBrains)))
	}
	parts = append(parts, tr.Errs...)
	return strings.Join(parts, "; ")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

func runPigwf(t *testing.T, n int, faults []FaultKind, stopAt time.Time) ([]Summary, []string, []string) {
	agent := filepath.Join(filepath.Dir(os.Getenv(testenv.EnvPigwfBin)), "pg-ha-agent")
	if _, err := os.Stat(agent); err != nil {
		t.Fatalf("pigwf side: no HA agent binary at %s (the worker installs it on the nodes): build it with `go build -o %s ./ha-agent/cmd/pg-ha-agent`", agent, agent)
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	st := testenv.LabWith(t, pigwfLab)
	sys, err := SetupPigwf(t, env, st, say)
	if err != nil {
		t.Fatalf("pigwf side: %v", err)
	}
	settings := sys.Settings()
	for _, s := range settings {
		say("pigwf: %s", s)
	}
	sums, notes := runTrials(t, sys, sys.DB(), faults, n, stopAt, true)
	return sums, settings, notes
}

func runPatroni(t *testing.T, n int, faults []FaultKind, stopAt time.Time) ([]Summary, []string, []string) {
	ctx := context.Background()
	version, err := EnsurePatroni(ctx)
	if err != nil {
		t.Fatalf("patroni side: %v", err)
	}
	st := testenv.LabWith(t, patroniLab)
	sys, err := SetupPatroni(ctx, st, TightestPatroni(), version, say)
	if err != nil {
		t.Fatalf("patroni side: %v", err)
	}
	settings := sys.Settings()
	for _, s := range settings {
		say("patroni: %s", s)
	}
	// the anchor's broken promises are reported, not failed on: the suite judges pigwf
	sums, notes := runTrials(t, sys, sys.DB(), faults, n, stopAt, false)
	return sums, settings, notes
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func envList(name, def string) map[string]bool {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out[s] = true
		}
	}
	return out
}

func envFaults(name string, def []FaultKind) ([]FaultKind, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	var out []FaultKind
	for _, s := range strings.Split(v, ",") {
		k := FaultKind(strings.TrimSpace(s))
		if FaultByKind(k).Number == 0 {
			return nil, fmt.Errorf("%s: unknown fault %q (faults: pg-crash, node-crash, isolation, agent-kill, etcd-kill, switchover)", name, k)
		}
		out = append(out, k)
	}
	return out, nil
}

// machineFacts are the facts a reader needs to compare numbers across machines.
func machineFacts() []string {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	model := "?"
	for _, line := range strings.Split(read("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	mem := "?"
	for _, line := range strings.Split(read("/proc/meminfo"), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			mem = strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:"))
		}
	}
	version := func(argv ...string) string {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return "?"
		}
		return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	return []string{
		fmt.Sprintf("%d cores (%s), %s RAM", runtime.NumCPU(), model, mem),
		"kernel " + read("/proc/sys/kernel/osrelease") + ", " + read("/etc/debian_version") + " (Debian)",
		"PostgreSQL: " + version("/usr/lib/postgresql/15/bin/postgres", "--version") + "; etcd: " + version("/usr/bin/etcd", "--version") + "; Go " + runtime.Version(),
	}
}
