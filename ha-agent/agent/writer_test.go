package agent

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
)

// writer inserts rows in a loop into whichever node accepts them and
// records every acknowledged commit.
type writer struct {
	nodes []*itNode
	mu    sync.Mutex
	acks  []ack
	stop  chan struct{}
	done  chan struct{}
}

type ack struct {
	id   int64
	node string
	at   time.Time
}

func startWriter(nodes []*itNode) *writer {
	w := &writer{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	conns := make([]*pgwire.Conn, len(w.nodes))
	target := 0
	id := time.Now().UnixNano() / 1000
	for {
		select {
		case <-w.stop:
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
			return
		default:
		}
		id++
		if conns[target] == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			c, err := conn(ctx, w.nodes[target].port)
			cancel()
			if err != nil {
				target = (target + 1) % len(w.nodes)
				time.Sleep(2 * time.Millisecond)
				continue
			}
			conns[target] = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := conns[target].Exec(ctx, fmt.Sprintf("INSERT INTO ha_test (id) VALUES (%d)", id))
		cancel()
		if err == nil {
			w.mu.Lock()
			w.acks = append(w.acks, ack{id: id, node: w.nodes[target].name, at: time.Now()})
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if pgwire.SQLState(err) == "" || pgwire.SQLState(err) != "25006" { // not just "read-only transaction"
			conns[target].Close()
			conns[target] = nil
		}
		target = (target + 1) % len(w.nodes)
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *writer) halt() []ack {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// firstAckAfter returns the first commit acknowledged after t (by a node other than except).
func (w *writer) firstAckAfter(t time.Time, except string) (ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if a.at.After(t) && a.node != except {
			return a, true
		}
	}
	return ack{}, false
}

func (w *writer) lastAckBy(node string, before time.Time) (ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found ack
	ok := false
	for _, a := range w.acks {
		if a.node == node && a.at.Before(before) {
			found, ok = a, true
		}
	}
	return found, ok
}

// longestGap finds the longest time between consecutive acknowledged
// commits in [from, to], where it began, and the node that ended it.
func (w *writer) longestGap(from, to time.Time) (time.Time, time.Duration, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var start time.Time
	var gap time.Duration
	node := ""
	prev := from
	for _, a := range w.acks {
		if a.at.Before(from) || a.at.After(to) {
			continue
		}
		if d := a.at.Sub(prev); d > gap {
			start, gap, node = prev, d, a.node
		}
		prev = a.at
	}
	return start, gap, node
}

func (w *writer) waitAckAfter(t *testing.T, after time.Time, except string, timeout time.Duration) ack {
	t.Helper()
	var got ack
	waitFor(t, timeout, "a write accepted after "+after.Format("15:04:05.000"), func() (bool, string) {
		a, ok := w.firstAckAfter(after, except)
		got = a
		return ok, ""
	})
	return got
}

// checkNoLoss fails the test for every acknowledged write missing on the leader (the first five
// named).
func (e *itEnv) checkNoLoss(acks []ack, leader *itNode) {
	t := e.t
	t.Helper()
	rows := query(t, leader.port, "SELECT id FROM ha_test")
	have := make(map[int64]bool, len(rows))
	for _, r := range rows {
		id, _ := strconv.ParseInt(*r[0], 10, 64)
		have[id] = true
	}
	lost := 0
	for _, a := range acks {
		if !have[a.id] {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged write %d (on %s at %s) is missing on the final primary", a.id, a.node, a.at.Format("15:04:05.000"))
			}
		}
	}
	t.Logf("%d acknowledged writes, %d lost", len(acks), lost)
}
