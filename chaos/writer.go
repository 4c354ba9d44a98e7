package chaos

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Ack is one acknowledged write: the id, the node (1-based) that acknowledged it, when the
// connection it used was opened, when the attempt started and when the success came back.
type Ack struct {
	ID      int64
	Node    int
	Conn    time.Time
	Started time.Time
	At      time.Time
}

// WriterConfig tunes the writer. The zero value is not usable; see DefaultWriterConfig.
type WriterConfig struct {
	// CommitTimeout bounds one INSERT (connect included): past it the write is not acknowledged.
	CommitTimeout time.Duration
	// ConnectTimeout bounds dialling a node (a node whose link is down never answers).
	ConnectTimeout time.Duration
	// Hedge: when the preferred node has not answered after this long, the other idle nodes
	// are tried too, so a hung primary does not hide a new one (the RTO would otherwise
	// include the hung commit's timeout).
	Hedge time.Duration
	// Pace is the pause after an acknowledged write (bounds the load on a 2-core machine);
	// Retry the pause after a round in which no node acknowledged.
	Pace, Retry time.Duration
}

// DefaultWriterConfig: commits take ~1–3 ms in the lab, so a 5 ms pace gives ~150 writes/s and
// an RTO resolution of a few ms.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{CommitTimeout: 2 * time.Second, ConnectTimeout: 500 * time.Millisecond, Hedge: 50 * time.Millisecond, Pace: 5 * time.Millisecond, Retry: 10 * time.Millisecond}
}

// Writer inserts increasing ids into chaos_ack, trying the node that last acknowledged first,
// and records every acknowledged id with its node and time. Every attempt uses a fresh id, so
// an attempt whose outcome is unknown (timeout, broken connection) never shares an id with an
// acknowledged one.
type Writer struct {
	cfg   WriterConfig
	nodes []*writerNode
	// nodeOf maps a server address to its lab node (1-based) for a writer through a proxy:
	// its acknowledgements name the PostgreSQL node that took the write, not the proxy.
	nodeOf map[string]int
	next   atomic.Int64
	pref   atomic.Int32 // index into nodes of the node that last acknowledged

	mu   sync.Mutex
	acks []Ack
	// attempts and failures by kind, for the report
	attempts, timeouts, syncCancels atomic.Int64
	ackSignal                       chan struct{} // closed and replaced at every ack
}

type writerNode struct {
	index int // 1-based lab node
	conn  *nodeConn
	busy  atomic.Bool
}

// NewServiceWriter makes a writer through proxies (an HAProxy service port on each of proxies,
// like a client given several HAProxy addresses): it tries them as NewWriter tries nodes, and
// each acknowledgement names the lab node (nodeAddrs[i-1]) whose PostgreSQL took the write.
// db.Port is the service port. Its ids start after firstID; keep them apart from another
// writer's on the same table.
func NewServiceWriter(db DB, proxies, nodeAddrs []string, cfg WriterConfig, firstID int64) *Writer {
	w := &Writer{cfg: cfg, ackSignal: make(chan struct{}), nodeOf: map[string]int{}}
	for i, a := range proxies {
		c := newNodeConn(db, a, "chaos-service-writer", cfg.ConnectTimeout)
		c.resolve = true
		w.nodes = append(w.nodes, &writerNode{index: i + 1, conn: c})
	}
	for i, a := range nodeAddrs {
		w.nodeOf[a] = i + 1
	}
	w.next.Store(firstID)
	return w
}

// NewWriter makes a writer for nodes (lab node i at addrs[i-1]); ids start after firstID.
func NewWriter(db DB, addrs []string, cfg WriterConfig, firstID int64) *Writer {
	w := &Writer{cfg: cfg, ackSignal: make(chan struct{})}
	for i, a := range addrs {
		w.nodes = append(w.nodes, &writerNode{index: i + 1, conn: newNodeConn(db, a, "chaos-writer", cfg.ConnectTimeout)})
	}
	w.next.Store(firstID)
	return w
}

type attemptResult struct {
	node int // index into w.nodes
	ok   bool
}

// Run writes until ctx is done. It returns once no attempt is outstanding.
func (w *Writer) Run(ctx context.Context) {
	// Deferred calls run last-registered first: the connections are closed only after every
	// attempt has returned, because a pgx connection must never be closed while an attempt is
	// still using it (pgx panics on that).
	defer func() {
		for _, n := range w.nodes {
			n.conn.drop()
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		results := make(chan attemptResult, len(w.nodes)) // each node is launched at most once per round
		pending := 0                                      // attempts of this round not finished yet
		tried := make([]bool, len(w.nodes))               // each node at most once per round: a failing node is not hammered
		launch := func(i int) bool {
			n := w.nodes[i]
			if tried[i] || !n.busy.CompareAndSwap(false, true) {
				return false // its previous attempt is still out: never two at once on one connection
			}
			tried[i] = true
			pending++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer n.busy.Store(false)
				results <- attemptResult{node: i, ok: w.attempt(ctx, n)}
			}()
			return true
		}
		launchRest := func() {
			for i := range w.nodes {
				launch(i)
			}
		}
		pref := int(w.pref.Load())
		prefPending := launch(pref)
		hedge := time.NewTimer(w.cfg.Hedge)
		acked, hedged := false, false
	round:
		for {
			// The others are asked as soon as the preferred node failed or could not be asked
			// (still stuck in an earlier attempt), or after the hedge delay.
			if !hedged && !prefPending {
				launchRest()
				hedged = true
			}
			// Once the others were asked and all failed, the round is over: a preferred node
			// that hangs is not waited for (it stays busy, and is skipped until its attempt
			// times out), so a new primary is found at once.
			othersPending := pending
			if prefPending {
				othersPending--
			}
			if hedged && othersPending == 0 {
				break
			}
			select {
			case r := <-results:
				pending--
				if r.node == pref {
					prefPending = false
				}
				if r.ok {
					acked = true
					w.pref.Store(int32(r.node))
					break round
				}
				if hedged {
					// A failure once every idle connection was asked: start the next round
					// (after the retry pause) instead of waiting for attempts still hanging
					// elsewhere. Through a proxy, the connection that just failed (its
					// session cut when the proxy took the old primary out) is the one that
					// can reach the new primary; hung ones stay busy and are skipped.
					break round
				}
			case <-hedge.C:
				if !hedged {
					launchRest()
					hedged = true
				}
			case <-ctx.Done():
				break round
			}
		}
		hedge.Stop()
		pause := w.cfg.Retry
		if acked {
			pause = w.cfg.Pace
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// attempt inserts one fresh id on n and records it if acknowledged.
func (w *Writer) attempt(ctx context.Context, n *writerNode) bool {
	id := w.next.Add(1)
	w.attempts.Add(1)
	started := time.Now()
	// node: the lab node written to, or for a writer through proxies minus the proxy's index
	node := n.index
	if w.nodeOf != nil {
		node = -n.index
	}
	opened, err := n.conn.execOn(ctx, w.cfg.CommitTimeout, "INSERT INTO chaos_ack (id, node) VALUES ($1, $2)", id, node)
	if err != nil {
		switch {
		case errors.Is(err, errSyncCancelled):
			w.syncCancels.Add(1)
		case errors.Is(err, context.DeadlineExceeded) || time.Since(started) >= w.cfg.CommitTimeout:
			w.timeouts.Add(1)
		}
		return false
	}
	at := time.Now()
	acked := n.index
	if w.nodeOf != nil {
		acked = w.nodeOf[n.conn.serverAddr()] // 0: a server that is no lab node
	}
	w.mu.Lock()
	w.acks = append(w.acks, Ack{ID: id, Node: acked, Conn: opened, Started: started, At: at})
	close(w.ackSignal)
	w.ackSignal = make(chan struct{})
	w.mu.Unlock()
	return true
}

// Acks returns a copy of every acknowledged write so far, in acknowledgement order.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// LastAck returns the latest acknowledged write (ok false if none yet).
func (w *Writer) LastAck() (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acks) == 0 {
		return Ack{}, false
	}
	return w.acks[len(w.acks)-1], true
}

// FirstAckAfter waits until a write whose attempt STARTED at or after t0 is acknowledged and
// returns it: the first write the system accepted after a fault injected at t0. A commit that
// was already in flight at t0 does not count. On node freshOn (1-based; 0 for none) only
// writes on a connection opened at or after t0 count: after the primary's postmaster is killed,
// its orphaned backends may still finish commits on old connections for a few milliseconds,
// which is not the service being back (those writes are acknowledged all the same, and checked
// for loss). Other nodes' old connections count: a promoted standby keeps them.
// ok is false when none came within timeout.
func (w *Writer) FirstAckAfter(ctx context.Context, t0 time.Time, freshOn int, timeout time.Duration) (Ack, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		// acks are appended in completion order; scan back over those completed after t0
		var best Ack
		found := false
		for i := len(w.acks) - 1; i >= 0 && w.acks[i].At.After(t0); i-- {
			a := w.acks[i]
			if a.Started.Before(t0) || (a.Node == freshOn && a.Conn.Before(t0)) {
				continue
			}
			if !found || a.At.Before(best.At) {
				best, found = a, true
			}
		}
		signal := w.ackSignal
		w.mu.Unlock()
		if found {
			return best, true
		}
		select {
		case <-signal:
		case <-deadline.C:
			return Ack{}, false
		case <-ctx.Done():
			return Ack{}, false
		}
	}
}

// MaxGap returns the longest time in [from, to] without an acknowledged write (the stretch
// from `from` to the first ack counts, and so does the one from the last ack to `to`), and
// when it began.
func (w *Writer) MaxGap(from, to time.Time) (gap time.Duration, began time.Time) {
	w.mu.Lock()
	var times []time.Time
	for _, a := range w.acks {
		if !a.At.Before(from) && !a.At.After(to) {
			times = append(times, a.At)
		}
	}
	w.mu.Unlock()
	return maxGap(times, from, to)
}

func maxGap(times []time.Time, from, to time.Time) (time.Duration, time.Time) {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	prev := from
	var gap time.Duration
	began := from
	for _, t := range append(times, to) {
		if d := t.Sub(prev); d > gap {
			gap, began = d, prev
		}
		prev = t
	}
	return gap, began
}

// AckBefore returns the latest acknowledged write completed before t (ok false if none).
func (w *Writer) AckBefore(t time.Time) (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best Ack
	found := false
	for i := len(w.acks) - 1; i >= 0; i-- {
		a := w.acks[i]
		if a.At.Before(t) && (!found || a.At.After(best.At)) {
			best, found = a, true
		}
		if found && a.At.Before(best.At.Add(-w.cfg.CommitTimeout)) {
			break // completion order is nearly time order: nothing older can be later
		}
	}
	return best, found
}

// Stats returns the attempt counters.
func (w *Writer) Stats() (attempts, acked, timeouts, syncCancels int64) {
	w.mu.Lock()
	acked = int64(len(w.acks))
	w.mu.Unlock()
	return w.attempts.Load(), acked, w.timeouts.Load(), w.syncCancels.Load()
}

// ackIDs returns the ids of acks, sorted.
func ackIDs(acks []Ack) []int64 {
	ids := make([]int64, len(acks))
	for i, a := range acks {
		ids[i] = a.ID
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
