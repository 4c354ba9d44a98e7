package sshrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
)

// TestBenchRoundTrip (make bench) compares a trivial command over the runner's pooled
// connection with a new `ssh` process per command, which is what Ansible does without
// ControlPersist. Both run against the same lab node's sshd, interleaved, in one run.
func TestBenchRoundTrip(t *testing.T) {
	if os.Getenv("PIGWF_BENCH") != "1" {
		t.Skip("benchmark: run with `make bench`")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the OpenSSH client")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for the lab")
	}
	ctx := context.Background()
	cfg := lab.Config{Name: "pwbench", Subnet: "10.213.31", Nodes: 1}.WithDefaults()
	_ = lab.Down(ctx, cfg)
	st, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Down(ctx, cfg)
	r := New(Options{})
	defer r.Close()
	tg := Target{Host: st.Nodes[0].Addr, Port: 22, User: "root", KeyFile: st.SSHKey, KnownHosts: st.KnownHosts}
	if _, err := r.Run(ctx, tg, Command{Script: "true"}); err != nil { // warm the pool
		t.Fatal(err)
	}
	sshArgs := []string{"-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + st.KnownHosts,
		"-o", "ControlMaster=no", "-o", "ControlPath=none", "-i", st.SSHKey, "root@" + tg.Host, "true"}
	n := 200
	if v, err := strconv.Atoi(os.Getenv("PIGWF_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	var pooled, process []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		res, err := r.Run(ctx, tg, Command{Script: "true"})
		if err != nil || res.ExitStatus != 0 {
			t.Fatalf("pooled run: %v %+v", err, res)
		}
		pooled = append(pooled, time.Since(start))

		start = time.Now()
		if out, err := exec.Command("ssh", sshArgs...).CombinedOutput(); err != nil {
			t.Fatalf("ssh process: %v: %s", err, out)
		}
		process = append(process, time.Since(start))
	}
	p, q := summarize(pooled), summarize(process)
	fmt.Printf("BENCH ssh round trip of `true`, %d runs each, interleaved, same lab node\n", n)
	fmt.Printf("BENCH   pigwf pooled runner : min %8s  median %8s  p95 %8s\n", p.min, p.median, p.p95)
	fmt.Printf("BENCH   new ssh per command : min %8s  median %8s  p95 %8s\n", q.min, q.median, q.p95)
	fmt.Printf("BENCH   ratio of medians (ssh process / pooled): %.1fx\n", float64(q.median)/float64(p.median))
	if r.Dials() != 1 {
		t.Errorf("the runner dialled %d times; the pool should hold one connection", r.Dials())
	}
}

type stats struct{ min, median, p95 time.Duration }

func summarize(d []time.Duration) stats {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	round := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
	return stats{min: round(s[0]), median: round(s[len(s)/2]), p95: round(s[len(s)*95/100])}
}
