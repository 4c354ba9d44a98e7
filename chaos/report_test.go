package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests need no lab: they pin down how the suite counts and summarises.

func TestMinMedMax(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		in          []time.Duration
		lo, med, hi time.Duration
	}{
		{nil, 0, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(300, 100, 200), 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
		{ms(400, 100, 200, 300), 100 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond}, // even: mean of the middle two
	} {
		lo, med, hi := minMedMax(c.in)
		if lo != c.lo || med != c.med || hi != c.hi {
			t.Errorf("minMedMax(%v) = %v %v %v, want %v %v %v", c.in, lo, med, hi, c.lo, c.med, c.hi)
		}
	}
}

func TestMaxGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// writes at +5, +10, then nothing until +610, then +615: the gap is 600 ms from +10
	gap, began := maxGap([]time.Time{at(615), at(5), at(610), at(10)}, t0, at(700))
	if gap != 600*time.Millisecond || !began.Equal(at(10)) {
		t.Errorf("gap %v from %v, want 600ms from +10ms", gap, began.Sub(t0))
	}
	// no write at all: the whole window
	if gap, _ := maxGap(nil, t0, at(5000)); gap != 5*time.Second {
		t.Errorf("empty window gap = %v, want 5s", gap)
	}
	// the stretch before the first write counts
	if gap, began := maxGap([]time.Time{at(900), at(950)}, t0, at(1000)); gap != 900*time.Millisecond || !began.Equal(t0) {
		t.Errorf("leading gap = %v from %v, want 900ms from t0", gap, began.Sub(t0))
	}
}

// The RTO's first write: started after t0, and on the faulted node only on a new connection
// (the killed postmaster's orphaned backends may still finish commits on old ones).
func TestFirstAckAfter(t *testing.T) {
	w := NewWriter(DB{}, []string{"a", "b", "c"}, DefaultWriterConfig(), 0)
	t0 := time.Now()
	old := t0.Add(-time.Hour)
	w.acks = []Ack{
		{ID: 1, Node: 1, Conn: old, Started: t0.Add(-time.Millisecond), At: t0.Add(time.Millisecond)},        // in flight at t0
		{ID: 2, Node: 1, Conn: old, Started: t0.Add(2 * time.Millisecond), At: t0.Add(3 * time.Millisecond)}, // orphaned backend
		{ID: 3, Node: 2, Conn: old, Started: t0.Add(400 * time.Millisecond), At: t0.Add(401 * time.Millisecond)},
		{ID: 4, Node: 1, Conn: t0.Add(time.Second), Started: t0.Add(time.Second), At: t0.Add(1001 * time.Millisecond)},
	}
	ctx := context.Background()
	if a, ok := w.FirstAckAfter(ctx, t0, 0, time.Millisecond); !ok || a.ID != 2 {
		t.Errorf("without freshOn: got %+v %v, want id 2", a, ok)
	}
	if a, ok := w.FirstAckAfter(ctx, t0, 1, time.Millisecond); !ok || a.ID != 3 {
		t.Errorf("freshOn node 1: got %+v %v, want id 3 (a promoted standby's old connection counts)", a, ok)
	}
	if _, ok := w.FirstAckAfter(ctx, t0.Add(2*time.Second), 0, 10*time.Millisecond); ok {
		t.Error("an ack was found after the last one")
	}
	if a, ok := w.AckBefore(t0.Add(401 * time.Millisecond)); !ok || a.ID != 2 {
		t.Errorf("AckBefore = %+v %v, want id 2", a, ok)
	}
}

func TestSummarizeAndFailed(t *testing.T) {
	t0 := time.Now()
	ok := &Trial{T0: t0, Acked: true, RTO: 300 * time.Millisecond, Gap: 300 * time.Millisecond, LeaderChanged: true, Back: true, BackIn: 2 * time.Second}
	lost := &Trial{T0: t0, Acked: true, RTO: 500 * time.Millisecond, LeaderChanged: true, Back: true, BackIn: time.Second, Lost: []int64{42}}
	split := &Trial{T0: t0, Acked: true, RTO: 100 * time.Millisecond, SplitBrains: []SplitBrain{{Round: 1, Nodes: []int{1, 2}}}}
	stuck := &Trial{Errs: []string{"before the fault: cluster not healthy"}} // never injected
	if ok.Failed() || !lost.Failed() || !split.Failed() || !stuck.Failed() {
		t.Fatalf("Failed: ok %v lost %v split %v stuck %v", ok.Failed(), lost.Failed(), split.Failed(), stuck.Failed())
	}
	s := Summarize("pigwf", FaultByKind(PGCrash), []*Trial{ok, lost, split, stuck})
	if s.Trials != 3 || s.NotRun != 1 || s.Acked != 3 || s.Failed != 3 || s.Lost != 1 || s.SplitBrains != 1 || s.LeaderChanged != 2 || s.Back != 2 {
		t.Errorf("summary %+v", s)
	}
	if s.RTOMin != 100*time.Millisecond || s.RTOMed != 300*time.Millisecond || s.RTOMax != 500*time.Millisecond {
		t.Errorf("RTO %v/%v/%v", s.RTOMin, s.RTOMed, s.RTOMax)
	}
	var b strings.Builder
	WriteTable(&b, []Summary{s})
	if !strings.Contains(b.String(), "0.100 / 0.300 / 0.500") {
		t.Errorf("table lacks the RTO cell:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "3 (+1 not run)") {
		t.Errorf("table lacks the not-run count:\n%s", b.String())
	}
	b.Reset()
	WriteGoals(&b, []Summary{s})
	if !strings.Contains(b.String(), "median RTO 0.300 s < 1 s: met") {
		t.Errorf("goals: %s", b.String())
	}
	b.Reset()
	anchor := s
	anchor.System, anchor.RTOMed = "patroni", 3*time.Second
	WriteComparison(&b, []Summary{s}, []Summary{anchor}, "Patroni")
	if !strings.Contains(b.String(), "10.0×") {
		t.Errorf("comparison lacks the 10.0× ratio:\n%s", b.String())
	}
}

func TestPatroniSettings(t *testing.T) {
	if err := TightestPatroni().Validate(); err != nil {
		t.Fatalf("the tightest settings must be valid: %v", err)
	}
	below := TightestPatroni()
	below.TTL = 19
	if err := below.Validate(); err == nil || !strings.Contains(err.Error(), "minimum is 20") {
		t.Errorf("ttl 19 accepted: %v", err)
	}
	rule := TightestPatroni()
	rule.RetryTimeout = 10 // 1 + 2×10 > 20
	if err := rule.Validate(); err == nil || !strings.Contains(err.Error(), "exceeds ttl") {
		t.Errorf("loop_wait + 2×retry_timeout > ttl accepted: %v", err)
	}
}

func TestTailFileDropsTheSuitesOwnNoise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	body := "keep 1\nERROR:  cannot execute INSERT in a read-only transaction\nSTATEMENT:  INSERT INTO chaos_probe (round, node) VALUES ($1, $2)\n" +
		"2026 INFO: no action. I am (pg-chaos-1), the leader with the lock\nkeep 2\nkeep 3\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := TailFile(path, 2); got != "keep 2\nkeep 3" {
		t.Errorf("TailFile = %q", got)
	}
	if got := grepTail(path, 5, "keep 1", "keep 3"); got != "keep 1\nkeep 3" {
		t.Errorf("grepTail = %q", got)
	}
}

func TestKeepsConn(t *testing.T) {
	if keepsConn(context.DeadlineExceeded) {
		t.Error("a timeout must drop the connection")
	}
}

func TestProcAge(t *testing.T) {
	age, err := procAge(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// this test process started moments ago (clock ticks are 10 ms)
	if age < -20*time.Millisecond || age > 2*time.Minute {
		t.Errorf("procAge(self) = %v", age)
	}
}

func TestTLSVerdicts(t *testing.T) {
	crash := FaultInfo{Number: 1, Kind: PGCrash}
	node := FaultInfo{Number: 2, Kind: NodeCrash}
	iso := FaultInfo{Number: 3, Kind: Isolation}
	tls := []Summary{
		{Fault: crash, Acked: 10, RTOMed: 180 * time.Millisecond},
		{Fault: node, Acked: 10, RTOMed: 800 * time.Millisecond},
		{Fault: iso, Acked: 0},
	}
	plain := []Summary{
		{Fault: crash, Acked: 10, RTOMed: 160 * time.Millisecond},
		{Fault: node, Acked: 10, RTOMed: 600 * time.Millisecond},
		{Fault: iso, Acked: 10, RTOMed: 600 * time.Millisecond},
	}
	got := TLSVerdicts(tls, plain, 1.2)
	want := []string{"TLS/plain 1.12, within budget", "TLS/plain 1.33, OVER BUDGET", "NOT MEASURED"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("verdict %d: %q lacks %q", i, got[i], want[i])
		}
	}
}
