package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// The endpoint list follows the members' answers: a member that stops
// answering leaves it, comes back when it answers, and when none answers
// the client keeps all of them.
func TestEndpointHealthKeepsOnlyAnsweringMembers(t *testing.T) {
	var mu sync.Mutex
	down := map[string]bool{}
	sets := make(chan []string, 16)
	h := &endpointHealth{
		all: []string{"e1", "e2", "e3"}, interval: 2 * time.Millisecond, timeout: 50 * time.Millisecond,
		log: slog.New(slog.DiscardHandler),
		status: func(ctx context.Context, ep string) endpointProbe {
			mu.Lock()
			d := down[ep]
			mu.Unlock()
			if d {
				<-ctx.Done() // a dead member: the request hangs until its timeout
				return endpointProbe{endpoint: ep, why: ctx.Err().Error()}
			}
			return endpointProbe{endpoint: ep, ok: true}
		},
		set: func(eps ...string) { sets <- slices.Clone(eps) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)
	setDown := func(eps ...string) {
		mu.Lock()
		defer mu.Unlock()
		clear(down)
		for _, ep := range eps {
			down[ep] = true
		}
	}
	expect := func(step string, want ...string) {
		t.Helper()
		select {
		case got := <-sets:
			if !slices.Equal(got, want) {
				t.Fatalf("%s: endpoints set to %v, want %v", step, got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: endpoints not set to %v", step, want)
		}
	}
	select {
	case got := <-sets:
		t.Fatalf("all members answer, but the endpoints were set to %v", got)
	case <-time.After(50 * time.Millisecond):
	}
	setDown("e2")
	expect("e2 dead", "e1", "e3")
	setDown()
	expect("e2 back", "e1", "e2", "e3")
	// All members die at once: they leave one by one (2, then 1 left) in
	// whatever order their probes time out, and once none answers the
	// client keeps all of them.
	setDown("e1", "e2", "e3")
	for _, n := range []int{2, 1} {
		select {
		case got := <-sets:
			if len(got) != n {
				t.Fatalf("members dying: endpoints %v, want %d of them", got, n)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("members dying: no change to %d endpoints", n)
		}
	}
	expect("none answers", "e1", "e2", "e3")
}
