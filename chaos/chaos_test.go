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
	// plainLab is pigwf without TLS (etcd, the agents' API, replication): the baseline that
	// shows what TLS costs the failover, measured in the same run.
	plainLab = lab.Config{Name: "pwplain", Subnet: "10.213.43", Nodes: 3, Cluster: "pg-test", Plaintext: true}
)

// tlsBudget is how much slower than the plain-text baseline pigwf's failover with TLS may be.
const tlsBudget = 1.20

// reserve is kept free before the test's deadline for the report and the labs' teardown.
const reserve = 3 * time.Minute

func say(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }

// saySettings prints a system's settings and notes under title.
func saySettings(title string, settings, notes []string) {
	say("")
	say("%s", title)
	for _, s := range settings {
		say("  %s", s)
	}
	for _, s := range notes {
		say("  note: %s", s)
	}
}

// TestChaos runs every fault N times (PIGWF_CHAOS_N, default 10) on pigwf (TLS on, as
// deployed), faults (1)–(3) on pigwf in plain text (the baseline for TLS's cost), then faults
// (1)–(3) on Patroni, and prints the report. PIGWF_CHAOS_SYSTEMS (default
// "pigwf,plaintext,patroni") and
// PIGWF_CHAOS_FAULTS / PIGWF_CHAOS_PATRONI_FAULTS (fault names, comma-separated) narrow it down.
func TestChaos(t *testing.T) {
	if reason := testenv.MissingPrereq(); reason != "" {
		t.Fatalf("chaos suite prerequisites missing: %s (run `make chaos`)", reason)
	}
	n, err := envInt("PIGWF_CHAOS_N", 10)
	if err != nil {
		t.Fatal(err)
	}
	systems := envList("PIGWF_CHAOS_SYSTEMS", "pigwf,plaintext,patroni")
	pigwfFaults, err := envFaults("PIGWF_CHAOS_FAULTS", []FaultKind{PGCrash, NodeCrash, Isolation, AgentKill, EtcdKill, Switchover})
	if err != nil {
		t.Fatal(err)
	}
	patroniFaults, err := envFaults("PIGWF_CHAOS_PATRONI_FAULTS", []FaultKind{PGCrash, NodeCrash, Isolation})
	if err != nil {
		t.Fatal(err)
	}
	plainFaults, err := envFaults("PIGWF_CHAOS_PLAINTEXT_FAULTS", []FaultKind{PGCrash, NodeCrash, Isolation})
	if err != nil {
		t.Fatal(err)
	}
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(75 * time.Minute)
	}
	began := time.Now()
	// the nodes' logs of every cluster are kept here for the analysis of failed trials
	artifacts := os.Getenv("PIGWF_CHAOS_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(os.TempDir(), "pigwf-chaos-"+began.Format("20060102T150405"))
	}
	say("CHAOS suite: N=%d, systems %v, started %s", n, systems, began.Format(time.RFC3339))
	facts := machineFacts()
	for _, f := range facts {
		say("  machine: %s", f)
	}

	var (
		pigwfSums, patroniSums         []Summary
		plainSums                      []Summary
		plainSettings, plainNotes      []string
		pigwfSettings, patroniSettings []string
		pigwfNotes, patroniNotes       []string
	)
	if systems["pigwf"] {
		// leave the Patroni side its time: ~35 s per trial (ttl 20 s + rejoin) and its set-up
		stopAt := deadline.Add(-reserve)
		if systems["patroni"] {
			stopAt = stopAt.Add(-time.Duration(n*len(patroniFaults))*35*time.Second - 2*time.Minute)
		}
		if systems["plaintext"] {
			stopAt = stopAt.Add(-time.Duration(n*len(plainFaults))*6*time.Second - time.Minute)
		}
		t.Run("pigwf", func(t *testing.T) {
			pigwfSums, pigwfSettings, pigwfNotes = runPigwf(t, pigwfLab, n, pigwfFaults, stopAt, artifacts)
		})
	}
	if systems["plaintext"] {
		stopAt := deadline.Add(-reserve)
		if systems["patroni"] {
			stopAt = stopAt.Add(-time.Duration(n*len(patroniFaults))*35*time.Second - 2*time.Minute)
		}
		t.Run("plaintext", func(t *testing.T) {
			plainSums, plainSettings, plainNotes = runPigwf(t, plainLab, n, plainFaults, stopAt, artifacts)
		})
	}
	if systems["patroni"] {
		t.Run("patroni", func(t *testing.T) {
			patroniSums, patroniSettings, patroniNotes = runPatroni(t, n, patroniFaults, deadline.Add(-reserve), artifacts)
		})
	}

	// The report.
	say("")
	say("================ CHAOS REPORT ================")
	say("run: %s, took %s, N=%d requested; node logs in %s", began.Format(time.RFC3339), time.Since(began).Round(time.Second), n, artifacts)
	for _, f := range facts {
		say("machine: %s", f)
	}
	say("writer: pgx/v5 to all 3 nodes as %s/%s, commit timeout %s, hedge %s, pace %s; probe every %s (write timeout %s)",
		ChaosDB.User, ChaosDB.Database, DefaultWriterConfig().CommitTimeout, DefaultWriterConfig().Hedge, DefaultWriterConfig().Pace,
		DefaultProbeConfig().Interval, DefaultProbeConfig().Timeout)
	say("RTO = fault injection → first write acknowledged (attempt started after the fault); back in = fault lifted (link up + node restarted / link up / at once) → old primary streaming from the new one")
	say("faults: ")
	for _, f := range Faults {
		say("  (%d) %-11s %s", f.Number, f.Kind, f.Title)
	}
	if systems["pigwf"] {
		saySettings(fmt.Sprintf("pigwf settings (lab %s, subnet %s.0/24; TLS from the deployment CA):", pigwfLab.Name, pigwfLab.Subnet), pigwfSettings, pigwfNotes)
	}
	if systems["plaintext"] {
		saySettings(fmt.Sprintf("pigwf in plain text (lab %s, subnet %s.0/24; etcd, the agents' API and replication without TLS, otherwise the same):",
			plainLab.Name, plainLab.Subnet), plainSettings, plainNotes)
	}
	if systems["patroni"] {
		after := ""
		if systems["pigwf"] {
			after = "; run after pigwf's labs were removed, on the same machine"
		}
		saySettings(fmt.Sprintf("Patroni settings (lab %s, subnet %s.0/24, its own 3-member etcd with the same flags%s):", patroniLab.Name, patroniLab.Subnet, after),
			patroniSettings, patroniNotes)
	}
	say("")
	var b strings.Builder
	WriteTable(&b, append(append(append([]Summary(nil), pigwfSums...), plainSums...), patroniSums...))
	say("%s", b.String())
	for _, l := range Legend {
		say("  %s", l)
	}
	say("")
	if len(pigwfSums) > 0 {
		say("pigwf goal: median RTO < 1 s")
		b.Reset()
		WriteGoals(&b, pigwfSums)
		say("%s", b.String())
	}
	if len(pigwfSums) > 0 && len(plainSums) > 0 {
		say("what TLS costs (same run): plain text / TLS median RTO, budget: TLS within %.0f %% of plain text", (tlsBudget-1)*100)
		b.Reset()
		WriteComparison(&b, pigwfSums, plainSums, "plain text")
		say("%s", b.String())
		for _, v := range TLSVerdicts(pigwfSums, plainSums, tlsBudget) {
			say("  %s", v)
		}
		say("")
	}
	if len(pigwfSums) > 0 && len(patroniSums) > 0 {
		say("ratio of median RTOs (same run, same machine):")
		b.Reset()
		WriteComparison(&b, pigwfSums, patroniSums, "Patroni")
		say("%s", b.String())
		say("ratio of median client RTOs through HAProxy (pigwf: pg-service; Patroni: Pigsty's service defaults; same run):")
		b.Reset()
		WriteClientComparison(&b, pigwfSums, patroniSums, "Patroni")
		say("%s", b.String())
	}
	say("==============================================")
}

// incarnation is one cluster of a system with its own writer, probe and monitor. A trial that
// leaves the cluster broken for good (not healthy 2 minutes later) ends the incarnation: the
// lab is rebuilt so the remaining faults can still be measured.
type incarnation struct {
	sys    System
	runner *Runner
	stop   func()
}

func startIncarnation(t *testing.T, sys System, db DB, firstID int64) *incarnation {
	addrs := addrsOf(sys.Lab())
	mon := NewMonitor(db, addrs)
	ctx := context.Background()
	h, err := mon.WaitHealthy(ctx, 2*time.Minute, sys.ExtraHealthy)
	if err != nil {
		t.Fatalf("%s: not healthy before the first trial: %v\n%s", sys.Name(), err, sys.Diagnostics([]int{1, 2, 3}))
	}
	maxID, err := mon.MaxID(ctx, h.Primary)
	if err != nil {
		t.Fatalf("%s: %v", sys.Name(), err)
	}
	w := NewWriter(db, addrs, DefaultWriterConfig(), max(firstID, maxID))
	p := NewProbe(db, addrs, DefaultProbeConfig())
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(runCtx) }()
	go func() { defer wg.Done(); p.Run(runCtx) }()
	inc := &incarnation{sys: sys, runner: &Runner{Sys: sys, Addrs: addrs, Mon: mon, W: w, P: p}}
	if port := sys.ServicePort(); port != 0 {
		// The client through the access layer: its ids far above the direct writer's.
		svc := db
		svc.Port = port
		// Paced at 25 ms (the direct writer: 5 ms): a second full-rate writer of synchronous
		// commits on this 2-core lab slowed the failover it measures. The RTO's resolution is
		// the retry pause (10 ms), which a failed attempt waits, not the pace.
		cfg := DefaultWriterConfig()
		cfg.Pace = 25 * time.Millisecond
		sw := NewServiceWriter(svc, addrs, addrs, cfg, max(firstID, maxID)+serviceIDOffset)
		inc.runner.SW = sw
		wg.Add(1)
		go func() { defer wg.Done(); sw.Run(runCtx) }()
	}
	inc.stop = func() { cancel(); wg.Wait(); mon.Close() }
	return inc
}

// serviceIDOffset keeps the service writer's ids apart from the direct writer's.
const serviceIDOffset = 1 << 40

func (inc *incarnation) note() string {
	attempts, acked, timeouts, cancels := inc.runner.W.Stats()
	rounds, perNode := inc.runner.P.Rounds()
	s := fmt.Sprintf("writer: %d attempts, %d acknowledged, %d timed out, %d successes carrying the sync-cancel notice (not counted); probe: %d rounds, acknowledged probe writes per node %v",
		attempts, acked, timeouts, cancels, rounds, perNode)
	if sw := inc.runner.SW; sw != nil {
		attempts, acked, timeouts, cancels := sw.Stats()
		s += fmt.Sprintf("; writer through HAProxy: %d attempts, %d acknowledged, %d timed out, %d with the sync-cancel notice", attempts, acked, timeouts, cancels)
	}
	return s
}

// runTrials runs every fault n times on clusters made by setup (called again when a trial left
// the cluster broken), copying the nodes' logs to artifacts before each cluster goes. It prints
// and returns the first cluster's settings.
func runTrials(t *testing.T, setup func(incarnation int) (System, DB, error), faults []FaultKind, n int, stopAt time.Time, failOnBroken bool, artifacts string) ([]Summary, []string, []string) {
	ctx := context.Background()
	var notes []string
	number := 1
	sys, db, err := setup(number)
	if err != nil {
		t.Fatal(err)
	}
	settings := sys.Settings()
	for _, s := range settings {
		say("%s: %s", sys.Name(), s)
	}
	inc := startIncarnation(t, sys, db, 0)
	finish := func() {
		inc.stop()
		notes = append(notes, fmt.Sprintf("cluster %d: %s", number, inc.note()))
		dir := filepath.Join(artifacts, fmt.Sprintf("%s-cluster%d", sys.Name(), number))
		if err := writeAcks(inc.runner.W.Acks(), filepath.Join(dir, "acks.csv")); err != nil {
			notes = append(notes, "writing the acknowledged writes: "+err.Error())
		}
		if sw := inc.runner.SW; sw != nil {
			if err := writeAcks(sw.Acks(), filepath.Join(dir, "acks-service.csv")); err != nil {
				notes = append(notes, "writing the acknowledged writes through HAProxy: "+err.Error())
			}
		}
		if err := copyLogs(sys, dir); err != nil {
			notes = append(notes, "copying logs: "+err.Error())
		} else {
			notes = append(notes, fmt.Sprintf("cluster %d: node logs copied to %s", number, dir))
		}
	}
	var sums []Summary
	for _, kind := range faults {
		var trials []*Trial
		for k := 1; k <= n; k++ {
			if time.Now().After(stopAt) {
				notes = append(notes, fmt.Sprintf("%s: stopped after %d of %d trials: the run's time budget is spent", kind, k-1, n))
				break
			}
			tr := inc.runner.RunTrial(ctx, kind, k)
			if !tr.Injected() {
				// the cluster is broken (an earlier trial failed and says why): rebuild it
				say("%s", TrialLine(tr))
				say("    the cluster is broken; rebuilding it so the remaining trials can run")
				next := max(inc.runner.W.next.Load(), swNext(inc.runner))
				finish()
				number++
				if sys, db, err = setup(number); err != nil {
					t.Fatalf("rebuilding the cluster: %v", err)
				}
				inc = startIncarnation(t, sys, db, next)
				notes = append(notes, fmt.Sprintf("%s trial %d: the cluster was broken before the fault and was rebuilt (cluster %d)", kind, k, number))
				tr = inc.runner.RunTrial(ctx, kind, k)
			}
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
	finish()
	return sums, settings, notes
}

// writeAcks keeps every acknowledged write (id, node, connection opened, attempt started,
// acknowledged; Unix nanoseconds) for an audit after the run.
func writeAcks(acks []Ack, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("id,node,conn_opened_ns,started_ns,acked_ns\n")
	for _, a := range acks {
		fmt.Fprintf(&b, "%d,%d,%d,%d,%d\n", a.ID, a.Node, a.Conn.UnixNano(), a.Started.UnixNano(), a.At.UnixNano())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// copyLogs copies the nodes' log files (node-private, readable on the host even when a node is
// dead) to dir/nN/..., skipping files over 64 MiB.
func copyLogs(sys System, dir string) error {
	st := sys.Lab()
	for i := range st.Nodes {
		for _, pattern := range sys.LogFiles() {
			matches, _ := filepath.Glob(nodeFile(st, i+1, pattern))
			for _, src := range matches {
				fi, err := os.Stat(src)
				if err != nil || !fi.Mode().IsRegular() || fi.Size() > 64<<20 {
					continue
				}
				rel, _ := filepath.Rel(nodeFile(st, i+1, "/"), src)
				dst := filepath.Join(dir, st.Nodes[i].Name, rel)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				data, err := os.ReadFile(src)
				if err != nil {
					return err
				}
				if err := os.WriteFile(dst, data, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
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

func runPigwf(t *testing.T, cfg lab.Config, n int, faults []FaultKind, stopAt time.Time, artifacts string) ([]Summary, []string, []string) {
	agent := filepath.Join(filepath.Dir(os.Getenv(testenv.EnvPigwfBin)), "pg-ha-agent")
	if _, err := os.Stat(agent); err != nil {
		t.Fatalf("pigwf side: no HA agent binary at %s (the worker installs it on the nodes): build it with `go build -o %s ./ha-agent/cmd/pg-ha-agent`", agent, agent)
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	var setupNotes []string
	setup := func(number int) (System, DB, error) {
		// A cluster build that fails is reported and retried on a fresh lab (up to 3 times):
		// one failed build must not cost the remaining faults their measurements.
		var sys *Pigwf
		var err error
		for attempt := 1; attempt <= 3; attempt++ {
			if number > 1 || attempt > 1 {
				if err := lab.Down(context.Background(), cfg); err != nil {
					return nil, DB{}, fmt.Errorf("lab down: %w", err)
				}
			}
			st := testenv.LabWith(t, cfg)
			if sys, err = SetupPigwf(t, env, st, say); err == nil {
				break
			}
			msg := fmt.Sprintf("building cluster %d failed (attempt %d of 3): %s", number, attempt, lastLines(err.Error(), 12))
			say("pigwf: %s", msg)
			setupNotes = append(setupNotes, msg)
		}
		if err != nil {
			return nil, DB{}, fmt.Errorf("pigwf side: %w", err)
		}
		return sys, sys.DB(), nil
	}
	sums, settings, notes := runTrials(t, setup, faults, n, stopAt, true, artifacts)
	return sums, settings, append(setupNotes, notes...)
}

func runPatroni(t *testing.T, n int, faults []FaultKind, stopAt time.Time, artifacts string) ([]Summary, []string, []string) {
	ctx := context.Background()
	version, err := EnsurePatroni(ctx)
	if err != nil {
		t.Fatalf("patroni side: %v", err)
	}
	setup := func(number int) (System, DB, error) {
		if number > 1 {
			if err := lab.Down(ctx, patroniLab); err != nil {
				return nil, DB{}, fmt.Errorf("lab down: %w", err)
			}
		}
		st := testenv.LabWith(t, patroniLab)
		sys, err := SetupPatroni(ctx, st, TightestPatroni(), version, say)
		if err != nil {
			return nil, DB{}, fmt.Errorf("patroni side: %w", err)
		}
		return sys, sys.DB(), nil
	}
	// the anchor's broken promises are reported, not failed on: the suite judges pigwf
	sums, settings, notes := runTrials(t, setup, faults, n, stopAt, false, artifacts)
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
	commit := "?"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return []string{
		"pigwf commit " + commit,
		fmt.Sprintf("%d cores (%s), %s RAM", runtime.NumCPU(), model, mem),
		"kernel " + read("/proc/sys/kernel/osrelease") + ", " + read("/etc/debian_version") + " (Debian)",
		"PostgreSQL: " + version("/usr/lib/postgresql/15/bin/postgres", "--version") + "; etcd: " + version("/usr/bin/etcd", "--version") + "; Go " + runtime.Version(),
	}
}

// swNext is where the service writer's ids stand (0 without one), so a rebuilt cluster's
// writers start past every id acknowledged before.
func swNext(r *Runner) int64 {
	if r.SW == nil {
		return 0
	}
	return r.SW.next.Load()
}
