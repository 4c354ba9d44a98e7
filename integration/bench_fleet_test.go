package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// TestBenchNodeInitFleet (make bench, issue #15): NodeInit on a fleet of bare lab nodes, pigwf
// (the CLI, a real Temporal server and worker: one run, every node its own branch of steps over
// one pooled SSH connection) beside Ansible running the same steps as Pigsty's node.yml would
// (testdata/ansible/node.yml, bench_ansible_test.go) with and without ControlPersist, at
// Ansible's default forks and at forks = the node count. Every first run is on fresh nodes: the
// lab is taken down and brought up again before it (same names, addresses and CA), so each side
// does the whole job; a second run on the same nodes measures the "nothing to change" case.
// Sizes: PIGWF_FLEET_SIZES (default 10,30). It fails when a run fails, when a node is not what
// NodeInit promises afterwards, when a second run changes something, or when pigwf ran the
// nodes' steps one at a time; never on timing.
func TestBenchNodeInitFleet(t *testing.T) {
	if os.Getenv("PIGWF_BENCH") != "1" {
		t.Skip("benchmark: run with `make bench`")
	}
	requireIntegration(t)
	sizes := fleetSizes(t)
	playbook, err := filepath.Abs(nodePlaybook)
	if err != nil {
		t.Fatal(err)
	}
	ensureAnsible(t)
	largest := slices.Max(sizes)
	// bare nodes only, no etcd: NodeInit needs neither a cluster nor the DCS
	cfg := lab.Config{Name: "pwfleet", Subnet: "10.213.50", Nodes: largest, Bare: largest, Etcd: lab.NoEtcd, CADir: filepath.Join(t.TempDir(), "ca")}
	upStart := time.Now()
	st := testenv.LabWith(t, cfg)
	f := &fleetBench{t: t, cfg: cfg, st: st, firstUp: time.Since(upStart), playbook: playbook}
	f.pss = labPSS(t, st)
	f.home = labHome(t, st)
	// the deployment CA before either side runs: both use it, neither makes it in its time
	if _, err := (pki.CA{Dir: cfg.CADir}).Ensure(); err != nil {
		t.Fatal(err)
	}
	endOpenRuns(t)

	inv, err := inventory.LoadInventory(st.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := inv.Cluster(lab.BareGroup)
	if err != nil {
		t.Fatal(err)
	}
	var results []fleetSize
	for _, n := range sizes {
		var addrs []string
		for _, nd := range st.Nodes[:n] {
			addrs = append(addrs, nd.Addr)
		}
		in, err := starter.NodeInitInput(bare, addrs)
		if err != nil {
			t.Fatal(err)
		}
		r := fleetSize{nodes: n}
		t.Logf("%d nodes: pigwf node-init", n)
		r.pigwf = f.pigwfRound(in)
		for _, v := range []ansibleVariant{{persist: false, forks: n}, {persist: true, forks: n}, {persist: false}, {persist: true}} {
			t.Logf("%d nodes: %s", n, v)
			// the second run, for the variant closest to Pigsty's settings (ControlPersist, every
			// node at once)
			r.ansible = append(r.ansible, f.ansibleRound(in, v, v.persist && v.forks == n))
		}
		results = append(results, r)
		fmt.Print(fleetSizeReport(r))
	}
	fmt.Print(fleetSummary(f, results))
}

// fleetSizes reads PIGWF_FLEET_SIZES ("10,30" by default): node counts, each at least 1 and
// at most what a lab holds besides nothing else.
func fleetSizes(t *testing.T) []int {
	t.Helper()
	text := os.Getenv("PIGWF_FLEET_SIZES")
	if text == "" {
		text = "10,30"
	}
	var sizes []int
	for _, f := range strings.Split(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 40 {
			t.Fatalf("PIGWF_FLEET_SIZES=%q: want node counts from 1 to 40, comma separated (e.g. 10,30)", text)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

type fleetBench struct {
	t        *testing.T
	cfg      lab.Config
	st       *lab.Status
	home     string
	playbook string
	firstUp  time.Duration
	ups      []time.Duration // each recreation: down, then up
	pss      int64           // KiB, the lab's processes right after the first up
}

// fleetRun is one tool's run on one size.
type fleetRun struct {
	name                   string
	first, again           time.Duration // again: 0 when no second run was made
	connsFirst, connsAgain float64       // SSH connections each node accepted, on average
	maxAtOnce              int           // pigwf: the most node steps running at one moment
	spread                 time.Duration // pigwf: first to last node's first step starting
}

type fleetSize struct {
	nodes   int
	pigwf   fleetRun
	ansible []fleetRun
}

// fresh takes the lab down and up again: every node new, as a host that nothing prepared yet.
func (f *fleetBench) fresh() {
	f.t.Helper()
	start := time.Now()
	if err := lab.Down(context.Background(), f.cfg); err != nil {
		f.t.Fatalf("lab down: %v", err)
	}
	st, err := lab.Up(context.Background(), f.cfg)
	if err != nil {
		f.t.Fatalf("lab up: %v", err)
	}
	f.ups = append(f.ups, time.Since(start))
	f.st = st
}

// sshConns counts the SSH connections each of the first n nodes has accepted so far.
func (f *fleetBench) sshConns(n int) []int {
	out := make([]int, n)
	for i := range n {
		data, err := os.ReadFile(f.st.SSHDLog(i + 1))
		if err != nil {
			f.t.Fatal(err)
		}
		out[i] = bytes.Count(data, []byte("Accepted publickey for "))
	}
	return out
}

func meanGrowth(before, after []int) float64 {
	sum := 0
	for i := range before {
		sum += after[i] - before[i]
	}
	return float64(sum) / float64(len(before))
}

// pigwfRound: fresh nodes, a worker, node-init twice.
func (f *fleetBench) pigwfRound(in workflows.NodeInitInput) fleetRun {
	t := f.t
	f.fresh()
	n := len(in.Nodes)
	w := startWorker(t, f.home) // a new worker: the old one's connections went with the old nodes
	defer w.kill()
	run := fleetRun{name: "pigwf node-init"}
	var addrs []string
	for _, s := range in.Nodes {
		addrs = append(addrs, s.Node.Addr)
	}
	args := []string{"start", "node-init", "--cluster", in.Cluster, "--inventory", f.st.Inventory, "--nodes", strings.Join(addrs, ","), "--wait"}
	before := f.sshConns(n)
	start := time.Now()
	out, err := pigwf(t, f.home, args...)
	run.first = time.Since(start)
	if err != nil {
		t.Fatalf("pigwf node-init on %d nodes: %v\n%s", n, err, out)
	}
	mid := f.sshConns(n)
	run.connsFirst = meanGrowth(before, mid)
	checkRecap(t, out, n, true)
	hist, err := historyOf(dial(t), starter.WorkflowID(workflows.NodeInitRunbook, in.Cluster))
	if err != nil {
		t.Fatal(err)
	}
	run.maxAtOnce, run.spread = nodeStepConcurrency(hist)
	// not one node after the other: with n nodes, steps of different nodes overlap
	if n > 1 && run.maxAtOnce < 2 {
		t.Errorf("pigwf ran at most %d node step at a time on %d nodes: the nodes were prepared one after the other", run.maxAtOnce, n)
	}
	f.checkPrepared(in, "pigwf")

	start = time.Now()
	out, err = pigwf(t, f.home, args...)
	run.again = time.Since(start)
	if err != nil {
		t.Fatalf("second pigwf node-init on %d nodes: %v\n%s", n, err, out)
	}
	run.connsAgain = meanGrowth(mid, f.sshConns(n))
	checkRecap(t, out, n, false)
	return run
}

// checkRecap reads the CLI's recap: a line per node (and control), each node changed on a first
// run and unchanged on a second, none failed.
func checkRecap(t *testing.T, out string, nodes int, first bool) {
	t.Helper()
	recap := recapRE.FindAllStringSubmatch(out, -1)
	if len(recap) != nodes+1 {
		t.Fatalf("recap has %d lines, want %d nodes and control:\n%s", len(recap), nodes, tailLines(out, 40))
	}
	for _, r := range recap {
		if r[4] != "0" || !first && r[2] != "0" || first && r[1] != "control" && r[2] == "0" {
			t.Errorf("run (first: %v) on %s: changed=%s failed=%s", first, r[1], r[2], r[4])
		}
	}
}

// ansibleRound: fresh nodes and the playbook as v says; a second run when again.
func (f *fleetBench) ansibleRound(in workflows.NodeInitInput, v ansibleVariant, again bool) fleetRun {
	t := f.t
	f.fresh()
	n := len(in.Nodes)
	dir := t.TempDir()
	inv, err := newAnsibleInventory(in, f.cfg.CADir, filepath.Join(dir, "certs"))
	if err != nil {
		t.Fatal(err)
	}
	run := fleetRun{name: v.String()}
	before := f.sshConns(n)
	r := runAnsible(t, f.playbook, dir, inv, v)
	run.first = r.wall
	mid := f.sshConns(n)
	run.connsFirst = meanGrowth(before, mid)
	for h, c := range r.recap {
		if c.changed == 0 {
			t.Errorf("%s: first run changed nothing on %s", v, h)
		}
	}
	f.checkPrepared(in, v.String())
	if again {
		r := runAnsible(t, f.playbook, dir, inv, v)
		run.again = r.wall
		run.connsAgain = meanGrowth(mid, f.sshConns(n))
		for h, c := range r.recap {
			if c.changed != 0 {
				t.Errorf("%s: second run changed %d things on %s", v, c.changed, h)
			}
		}
	}
	return run
}

// checkPrepared asserts on the first and the last node what NodeInit promises, whoever ran it:
// the nodename, the CA marker, a node certificate of the deployment CA for its name and address
// with its key root:postgres 0640, PostgreSQL's data directory.
func (f *fleetBench) checkPrepared(in workflows.NodeInitInput, who string) {
	t := f.t
	for _, k := range []int{0, len(in.Nodes) - 1} {
		node := in.Nodes[k].Node
		i := slices.IndexFunc(f.st.Nodes, func(n lab.Node) bool { return n.Addr == node.Addr }) + 1
		got := nodeRun(t, f.st, i, fmt.Sprintf("hostname; cat /etc/hostname; openssl verify -CAfile %[1]s -verify_ip %[2]s -verify_hostname %[3]s -purpose sslserver %[4]s; stat -c '%%U:%%G %%a' %[5]s /pg/data",
			pki.NodeCAPath, node.Addr, node.Name, pki.NodeCertPath, pki.NodeKeyPath))
		want := fmt.Sprintf("%[1]s\n%[1]s\n%[2]s: OK\nroot:postgres 640\npostgres:postgres 700\n", node.Name, pki.NodeCertPath)
		if got != want {
			t.Errorf("%s: node %s after the first run:\n%s\nwant:\n%s", who, node, got, want)
		}
	}
}

// nodeStepConcurrency reads a run's history: the most node steps running at one moment (each
// from its start, the time the worker took it, to its completion), and how far apart the nodes'
// first steps started.
func nodeStepConcurrency(hist *historypb.History) (int, time.Duration) {
	type span struct{ start, end time.Time }
	spans := map[int64]*span{} // by scheduled event
	ids := map[int64]string{}
	for _, ev := range hist.Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			ids[ev.EventId] = a.ActivityId
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && strings.Contains(ids[a.ScheduledEventId], "/") {
			spans[a.ScheduledEventId] = &span{start: ev.EventTime.AsTime()}
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && spans[a.ScheduledEventId] != nil {
			spans[a.ScheduledEventId].end = ev.EventTime.AsTime()
		}
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	var firstSteps []time.Time
	for id, s := range spans {
		if s.end.IsZero() {
			continue
		}
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
		if strings.HasSuffix(ids[id], "/connect") {
			firstSteps = append(firstSteps, s.start)
		}
	}
	// ends before starts at the same instant: touching spans do not overlap
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	cur, most := 0, 0
	for _, e := range edges {
		cur += e.delta
		most = max(most, cur)
	}
	var spread time.Duration
	if len(firstSteps) > 0 {
		spread = slices.MaxFunc(firstSteps, time.Time.Compare).Sub(slices.MinFunc(firstSteps, time.Time.Compare))
	}
	return most, spread
}

func fleetSizeReport(r fleetSize) string {
	var b strings.Builder
	fmt.Fprintf(&b, "BENCH node-init on %d fresh lab nodes (second run: the same nodes again, nothing to change)\n", r.nodes)
	fmt.Fprintf(&b, "BENCH   %-44s %9s %7s %9s %7s %12s\n", "", "first", "ratio", "again", "ratio", "ssh conn/node")
	row := func(x fleetRun) {
		again, againRatio := "-", "-"
		if x.again > 0 {
			again = fmt.Sprintf("%.2fs", x.again.Seconds())
			againRatio = fmt.Sprintf("%.1fx", x.again.Seconds()/r.pigwf.again.Seconds())
		}
		conns := fmt.Sprintf("%.1f", x.connsFirst)
		if x.again > 0 {
			conns += fmt.Sprintf(" / %.1f", x.connsAgain)
		}
		fmt.Fprintf(&b, "BENCH   %-44s %8.2fs %6.1fx %9s %7s %12s\n", x.name, x.first.Seconds(), x.first.Seconds()/r.pigwf.first.Seconds(), again, againRatio, conns)
	}
	row(r.pigwf)
	for _, a := range r.ansible {
		row(a)
	}
	fmt.Fprintf(&b, "BENCH   pigwf: at most %d node steps at once; the %d nodes' first steps started within %s\n",
		r.pigwf.maxAtOnce, r.nodes, r.pigwf.spread.Round(time.Millisecond))
	return b.String()
}

func fleetSummary(f *fleetBench, rs []fleetSize) string {
	var b strings.Builder
	fmt.Fprintf(&b, "BENCH node-init fleet: ratios are time / pigwf's time on the same size (ansible slower when > 1)\n")
	fmt.Fprintf(&b, "BENCH   Pigsty's own ansible.cfg: forks = 10, pipelining = True, Ansible's default ssh_args (ControlPersist=60s); pipelining is on in every run here, host key checking too\n")
	if len(rs) >= 2 {
		lo, hi := rs[0], rs[len(rs)-1]
		fmt.Fprintf(&b, "BENCH   growth %d -> %d nodes (%.1fx the nodes), first run:\n", lo.nodes, hi.nodes, float64(hi.nodes)/float64(lo.nodes))
		fmt.Fprintf(&b, "BENCH     %-44s %.2fx\n", lo.pigwf.name, hi.pigwf.first.Seconds()/lo.pigwf.first.Seconds())
		for i := range lo.ansible {
			name := lo.ansible[i].name
			if strings.Contains(name, "forks "+strconv.Itoa(lo.nodes)) {
				name = strings.Replace(name, "forks "+strconv.Itoa(lo.nodes), "forks = nodes", 1)
			}
			fmt.Fprintf(&b, "BENCH     %-44s %.2fx\n", name, hi.ansible[i].first.Seconds()/lo.ansible[i].first.Seconds())
		}
	}
	var sum time.Duration
	for _, u := range f.ups {
		sum += u
	}
	fmt.Fprintf(&b, "BENCH   lab of %d nodes: first up %s, processes %d MiB PSS; each fresh start (down + up) %s on average over %d\n",
		f.cfg.Nodes, f.firstUp.Round(10*time.Millisecond), f.pss/1024, (sum / time.Duration(max(len(f.ups), 1))).Round(10*time.Millisecond), len(f.ups))
	return b.String()
}

// labPSS sums the proportional set size (KiB) of every process in the lab's nodes' network
// namespaces.
func labPSS(t *testing.T, st *lab.Status) int64 {
	t.Helper()
	nsIno := map[string]bool{}
	for _, n := range st.Nodes {
		if fi, err := os.Stat("/run/netns/" + n.NetNS); err == nil {
			nsIno[inodeOf(fi)] = true
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var total int64
	for _, p := range procs {
		fi, err := os.Stat(p + "/ns/net")
		if err != nil || !nsIno[inodeOf(fi)] {
			continue
		}
		data, err := os.ReadFile(p + "/smaps_rollup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kib
			}
		}
	}
	return total
}

// inodeOf identifies a file (a namespace) by device and inode.
func inodeOf(fi os.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
