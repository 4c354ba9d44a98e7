package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// ErrNoLease: a start as primary or a promotion was refused because the
// agent holds no unexpired lease.
var ErrNoLease = errors.New("refused: this agent holds no unexpired leader lease")

// fenceFunc makes PostgreSQL unable to acknowledge commits.
type fenceFunc func() (pgctl.FenceReport, error)

// fencer is the holder's deadline timer and the write gate. It fences at
// the deadline from its own goroutine, so a loop that is stuck (slow etcd,
// a blocked probe) cannot keep a primary writable past its deadline. The
// same mutex makes "start as primary"/"promote" and "fence" exclusive: a
// primary can only start while the lease is valid, and never after a
// fence began.
type fencer struct {
	clock Clock
	fence fenceFunc
	// onFence reports each timer-driven fence (for logs and metrics).
	onFence func(reason string, rep pgctl.FenceReport, err error)

	mu       sync.Mutex
	armed    bool
	deadline time.Duration
	kick     chan struct{}
	stop     chan struct{}
}

func newFencer(clock Clock, fence fenceFunc, onFence func(string, pgctl.FenceReport, error)) *fencer {
	f := &fencer{clock: clock, fence: fence, onFence: onFence, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	go f.run()
	return f
}

func (f *fencer) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Extend arms the timer at deadline (the holder deadline of the newest
// successful renewal, or of failsafe confirmations). It never moves an
// armed deadline earlier: both proofs stay valid until they expire.
func (f *fencer) Extend(deadline time.Duration) {
	f.mu.Lock()
	if !f.armed || deadline > f.deadline {
		f.deadline = deadline
	}
	f.armed = true
	f.mu.Unlock()
	f.poke()
}

// Disarm: the lease was released while PostgreSQL cannot take writes.
func (f *fencer) Disarm() {
	f.mu.Lock()
	f.armed = false
	f.mu.Unlock()
	f.poke()
}

// Writable: the lease is armed and before its deadline.
func (f *fencer) Writable() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed && f.clock.Now() < f.deadline
}

// Deadline returns the armed deadline.
func (f *fencer) Deadline() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deadline, f.armed
}

// WhileWritable runs fn only while the lease is valid; a fence waits for it.
func (f *fencer) WhileWritable(fn func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed || f.clock.Now() >= f.deadline {
		return ErrNoLease
	}
	return fn()
}

// FenceNow fences at once (a decision of the loop) and disarms.
func (f *fencer) FenceNow() (pgctl.FenceReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return f.fence()
}

// Close stops the timer goroutine (the agent is exiting).
func (f *fencer) Close() { close(f.stop) }

func (f *fencer) run() {
	for {
		f.mu.Lock()
		armed, deadline := f.armed, f.deadline
		f.mu.Unlock()
		if !armed {
			select {
			case <-f.kick:
				continue
			case <-f.stop:
				return
			}
		}
		reached := make(chan bool, 1)
		done := make(chan struct{})
		go func() { reached <- sleepUntil(f.clock, deadline, done) }()
		select {
		case <-f.kick: // re-read the deadline
			close(done)
			<-reached
			continue
		case <-f.stop:
			close(done)
			return
		case ok := <-reached:
			if !ok {
				continue
			}
		}
		f.mu.Lock()
		if f.armed && f.clock.Now() >= f.deadline {
			f.armed = false
			fired := f.clock.Now()
			rep, err := f.fence()
			late := fired - f.deadline
			f.mu.Unlock()
			if f.onFence != nil {
				f.onFence("the fence timer fired at the holder deadline ("+late.Round(10*time.Microsecond).String()+" after it)", rep, err)
			}
			continue
		}
		f.mu.Unlock()
	}
}

// timerFenced reports a fence done by the deadline timer.
func (a *Agent) timerFenced(reason string, rep pgctl.FenceReport, err error) {
	a.noteFence(rep)
	if err != nil {
		a.log.Error("FENCE FAILED: "+reason, "err", err, "elapsed", rep.Elapsed.String())
		return
	}
	a.log.Warn("fenced: "+reason, "killed_processes", rep.Killed, "fence_latency", rep.ChildrenSignalled.String(), "all_dead_after", rep.Elapsed.String())
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// noteFence records a fence for metrics and /probe.
func (a *Agent) noteFence(rep pgctl.FenceReport) {
	a.metrics.fences.Add(1)
	a.metrics.lastFenceNs.Store(int64(rep.ChildrenSignalled))
	a.metrics.lastFenceDeadNs.Store(int64(rep.Elapsed))
	a.lastFence.Store(int64(a.clock.Now()))
}
