package chaos

import (
	"context"
	"sync"
	"time"
)

// SplitBrain is one probe round in which two or more nodes acknowledged a write: an instant
// with two writable primaries.
type SplitBrain struct {
	Round int64
	At    time.Time
	Nodes []int // 1-based lab nodes that acknowledged
}

// ProbeConfig tunes the split-brain probe.
type ProbeConfig struct {
	Interval       time.Duration // between round starts
	Timeout        time.Duration // per write (connect included)
	ConnectTimeout time.Duration
}

// DefaultProbeConfig: a round every 20 ms, each write given 250 ms.
func DefaultProbeConfig() ProbeConfig {
	return ProbeConfig{Interval: 20 * time.Millisecond, Timeout: 250 * time.Millisecond, ConnectTimeout: 200 * time.Millisecond}
}

// Probe writes a tiny row on every node concurrently, round after round; a round where two or
// more nodes acknowledge is recorded. It has its own connections, separate from the writer's.
type Probe struct {
	cfg   ProbeConfig
	conns []*nodeConn

	mu        sync.Mutex
	rounds    int64
	incidents []SplitBrain
	// perNode counts acknowledged probe writes per node (index 0 = node 1)
	perNode []int64
}

// NewProbe makes a probe for the nodes at addrs (lab node i at addrs[i-1]).
func NewProbe(db DB, addrs []string, cfg ProbeConfig) *Probe {
	p := &Probe{cfg: cfg, perNode: make([]int64, len(addrs))}
	for _, a := range addrs {
		p.conns = append(p.conns, newNodeConn(db, a, "chaos-probe", cfg.ConnectTimeout))
	}
	return p
}

// Run probes until ctx is done.
func (p *Probe) Run(ctx context.Context) {
	defer func() {
		for _, c := range p.conns {
			c.drop()
		}
	}()
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for round := int64(1); ctx.Err() == nil; round++ {
		at := time.Now()
		acked := make([]bool, len(p.conns))
		var wg sync.WaitGroup
		for i, c := range p.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acked[i] = c.exec(ctx, p.cfg.Timeout, "INSERT INTO chaos_probe (round, node) VALUES ($1, $2)", round, i+1) == nil
			}()
		}
		wg.Wait()
		p.record(round, at, acked)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (p *Probe) record(round int64, at time.Time, acked []bool) {
	var nodes []int
	for i, ok := range acked {
		if ok {
			nodes = append(nodes, i+1)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rounds++
	for _, n := range nodes {
		p.perNode[n-1]++
	}
	if len(nodes) >= 2 {
		p.incidents = append(p.incidents, SplitBrain{Round: round, At: at, Nodes: nodes})
	}
}

// Incidents returns the split-brain rounds that started in [from, to).
func (p *Probe) Incidents(from, to time.Time) []SplitBrain {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []SplitBrain
	for _, in := range p.incidents {
		if !in.At.Before(from) && in.At.Before(to) {
			out = append(out, in)
		}
	}
	return out
}

// Rounds returns how many rounds ran and the acknowledged probe writes per node.
func (p *Probe) Rounds() (int64, []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rounds, append([]int64(nil), p.perNode...)
}
