package starter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// fakeWatch is a view source and a clock for HAListWatch: round i returns rounds[i]; the
// ticker has one tick ready per round after the first, so the loop never waits on real time;
// the clock moves one interval per round.
type fakeWatch struct {
	t        *testing.T
	rounds   []func(ctx context.Context) (HAView, error)
	calls    int
	asked    time.Duration // the interval the ticker was made with
	stopped  bool
	now      time.Time
	interval time.Duration
	ctx      context.Context // Run's; the script may cancel it
}

func (f *fakeWatch) watch(terminal, asJSON bool) HAListWatch {
	return HAListWatch{
		View: func(ctx context.Context) (HAView, error) {
			if f.calls >= len(f.rounds) {
				f.t.Fatalf("round %d: the loop went on past the script", f.calls+1)
			}
			f.calls++
			return f.rounds[f.calls-1](ctx)
		},
		Interval: f.interval, Terminal: terminal, JSON: asJSON,
		Now: func() time.Time {
			at := f.now
			f.now = f.now.Add(f.interval)
			return at
		},
		Ticker: func(d time.Duration) (<-chan time.Time, func()) {
			f.asked = d
			ticks := make(chan time.Time, len(f.rounds))
			for range len(f.rounds) - 1 {
				ticks <- time.Time{}
			}
			return ticks, func() { f.stopped = true }
		},
	}
}

func view(leader string) HAView {
	return HAView{ClusterStatus: haagent.ClusterStatus{Cluster: "pg-test", Leader: leader, Members: []haagent.ClusterMember{
		{Name: leader, Host: "10.0.0.1", Port: 5432, Role: haagent.ClusterRoleLeader, State: "running", Timeline: 2}}}}
}

// Three rounds: a view, a round whose read fails (printed, and the loop goes on), a view
// during which Ctrl-C arrives (printed: it was read whole; then the loop stops).
func threeRounds(t *testing.T) *fakeWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fakeWatch{t: t, now: time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC), interval: 2 * time.Second, ctx: ctx}
	f.rounds = []func(context.Context) (HAView, error){
		func(context.Context) (HAView, error) { return view("n1"), nil },
		func(context.Context) (HAView, error) {
			return HAView{}, errors.New("while reading the cluster from etcd: context deadline exceeded")
		},
		func(context.Context) (HAView, error) { cancel(); return view("n2"), nil },
	}
	return f
}

func runWatch(t *testing.T, f *fakeWatch, terminal, asJSON bool) string {
	t.Helper()
	var out strings.Builder
	if err := f.watch(terminal, asJSON).Run(f.ctx, &out); err != nil {
		t.Fatalf("Run: %v, want nil after Ctrl-C", err)
	}
	if f.calls != 3 || f.asked != 2*time.Second || !f.stopped {
		t.Errorf("rounds %d (want 3), ticker every %s (want 2s), stopped %v", f.calls, f.asked, f.stopped)
	}
	return out.String()
}

// Not a terminal (a pipe, a log): every round is kept, after a separator with its time.
func TestHAListWatchRoundsNotATerminal(t *testing.T) {
	out := runWatch(t, threeRounds(t), false, false)
	if strings.Contains(out, clearScreen) {
		t.Errorf("cleared a screen that is not a terminal:\n%q", out)
	}
	var heads []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "+ Cluster: pg-test "):
			heads = append(heads, "(the list)")
		case strings.HasPrefix(line, "---") || strings.HasPrefix(line, "error:"):
			heads = append(heads, line)
		}
	}
	want := []string{
		"--- 2026-11-30 09:15:00 UTC ---",
		"(the list)",
		"--- 2026-11-30 09:15:02 UTC ---",
		"error: while reading the cluster from etcd: context deadline exceeded (next try in 2s)",
		"--- 2026-11-30 09:15:04 UTC ---",
		"(the list)",
	}
	if strings.Join(heads, "\n") != strings.Join(want, "\n") {
		t.Errorf("rounds:\n%s\nwant:\n%s\nwhole output:\n%s", strings.Join(heads, "\n"), strings.Join(want, "\n"), out)
	}
	if !strings.Contains(out, "| n1     | 10.0.0.1 | Leader") || !strings.Contains(out, "| n2     | 10.0.0.1 | Leader") {
		t.Errorf("the rounds' lists are missing:\n%s", out)
	}
}

// A terminal: each round clears the screen first and says how often it redraws.
func TestHAListWatchRoundsOnATerminal(t *testing.T) {
	out := runWatch(t, threeRounds(t), true, false)
	rounds := strings.Split(out, clearScreen)
	if len(rounds) != 4 || rounds[0] != "" {
		t.Fatalf("want 3 rounds each after a clear screen, got %d parts:\n%q", len(rounds)-1, out)
	}
	for i, at := range []string{"09:15:00", "09:15:02", "09:15:04"} {
		head := "2026-11-30 " + at + " UTC, every 2s (Ctrl-C to stop)\n"
		if !strings.HasPrefix(rounds[i+1], head) {
			t.Errorf("round %d starts %q, want %q", i+1, strings.SplitN(rounds[i+1], "\n", 2)[0], head)
		}
	}
	if strings.Contains(out, "---- ") || !strings.Contains(rounds[2], "error: ") {
		t.Errorf("separators on a terminal, or the error round lost:\n%s", out)
	}
}

// --json: one line of JSON per round, the failed round carrying its error and no view.
func TestHAListWatchJSONLines(t *testing.T) {
	out := runWatch(t, threeRounds(t), true, true)
	if strings.Contains(out, clearScreen) {
		t.Errorf("--json cleared the screen:\n%q", out)
	}
	var got []HAListRound
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r HAListRound
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != 3 {
		t.Fatalf("%d lines, want one per round:\n%s", len(got), out)
	}
	for i, c := range []struct {
		leader, err string
	}{{"n1", ""}, {"", "while reading the cluster from etcd: context deadline exceeded"}, {"n2", ""}} {
		r := got[i]
		leader := ""
		if r.View != nil {
			leader = r.View.Leader
		}
		if leader != c.leader || r.Error != c.err || !r.At.Equal(time.Date(2026, 11, 30, 9, 15, 2*i, 0, time.UTC)) {
			t.Errorf("round %d: %+v, want leader %q error %q", i+1, r, c.leader, c.err)
		}
	}
}

// Ctrl-C during a round's read (the read then fails with the cancellation): the loop stops
// and returns nil, printing neither that round nor the cancellation as an error.
func TestHAListWatchCancelledMidRound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeWatch{t: t, now: time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC), interval: time.Second, ctx: ctx}
	f.rounds = []func(context.Context) (HAView, error){
		func(context.Context) (HAView, error) { return view("n1"), nil },
		func(ctx context.Context) (HAView, error) {
			go cancel()
			<-ctx.Done() // as an etcd read or an agent's request does
			return HAView{}, ctx.Err()
		},
	}
	var out strings.Builder
	if err := f.watch(false, false).Run(f.ctx, &out); err != nil {
		t.Fatalf("Run: %v, want nil", err)
	}
	if n := strings.Count(out.String(), "--- "); n != 1 || strings.Contains(out.String(), "canceled") {
		t.Errorf("want the first round only, no error:\n%s", out.String())
	}
}

// An interval below the floor is refused before the first round, naming a good one.
func TestHAListWatchIntervalFloor(t *testing.T) {
	f := &fakeWatch{t: t, interval: 10 * time.Millisecond, ctx: context.Background()}
	err := f.watch(false, false).Run(context.Background(), &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "--interval 2s") || f.calls != 0 {
		t.Errorf("Run: %v after %d rounds, want a refusal naming --interval 2s", err, f.calls)
	}
}
