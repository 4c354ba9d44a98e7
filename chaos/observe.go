package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Monitor reads the cluster's state the way PostgreSQL reports it (pg_is_in_recovery,
// pg_stat_replication), never what an HA system believes. Its connections are its own.
type Monitor struct {
	addrs []string
	conns []*nodeConn
}

// NewMonitor makes a monitor for the nodes at addrs (lab node i at addrs[i-1]). The user
// needs pg_monitor to see pg_stat_replication's columns.
func NewMonitor(db DB, addrs []string) *Monitor {
	m := &Monitor{addrs: addrs}
	for _, a := range addrs {
		m.conns = append(m.conns, newNodeConn(db, a, "chaos-monitor", 500*time.Millisecond))
	}
	return m
}

// Reset drops the monitor's connections so the next look opens new ones: after a postmaster
// is killed, its orphaned backends keep answering on old connections for a moment.
func (m *Monitor) Reset() { m.Close() }

// Close drops the monitor's connections.
func (m *Monitor) Close() {
	for _, c := range m.conns {
		c.drop()
	}
}

// Role is what one node reports.
type Role struct {
	Reachable  bool
	InRecovery bool
	Err        error
}

// Roles asks every node concurrently whether it is in recovery.
func (m *Monitor) Roles(ctx context.Context) []Role {
	roles := make([]Role, len(m.conns))
	var wg sync.WaitGroup
	for i, c := range m.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec bool
			err := c.query(ctx, time.Second, func(r pgx.Rows) error { return r.Scan(&rec) }, "SELECT pg_is_in_recovery()")
			roles[i] = Role{Reachable: err == nil, InRecovery: rec, Err: err}
		}()
	}
	wg.Wait()
	return roles
}

// Replica is one row of a primary's pg_stat_replication.
type Replica struct {
	Addr      string // client_addr
	AppName   string // application_name: the member name for pigwf and Patroni
	State     string // streaming, catchup, ...
	SyncState string // sync, async, potential, quorum
}

// Replication reads node i's (1-based) pg_stat_replication.
func (m *Monitor) Replication(ctx context.Context, i int) ([]Replica, error) {
	var out []Replica
	err := m.conns[i-1].query(ctx, time.Second, func(r pgx.Rows) error {
		var rep Replica
		if err := r.Scan(&rep.Addr, &rep.AppName, &rep.State, &rep.SyncState); err != nil {
			return err
		}
		out = append(out, rep)
		return nil
	}, "SELECT coalesce(host(client_addr), ''), application_name, coalesce(state, ''), coalesce(sync_state, '') FROM pg_stat_replication ORDER BY application_name")
	return out, err
}

// Health is one look at the whole cluster.
type Health struct {
	Primary  int // 1-based node that is not in recovery; 0 when there is not exactly one
	Roles    []Role
	Replicas []Replica // the primary's pg_stat_replication
	Problem  string    // "" when healthy: one primary, every other node streaming, one sync standby
}

// SyncNames returns the application names the primary's pg_stat_replication lists as sync.
func (h Health) SyncNames() map[string]bool {
	names := map[string]bool{}
	for _, r := range h.Replicas {
		if r.SyncState == "sync" {
			names[r.AppName] = true
		}
	}
	return names
}

// SyncStandby returns the node (1-based) the primary lists as sync, or 0.
func (h Health) SyncStandby(addrs []string) int {
	for _, r := range h.Replicas {
		if r.SyncState == "sync" {
			for i, a := range addrs {
				if a == r.Addr {
					return i + 1
				}
			}
		}
	}
	return 0
}

// Check looks at the cluster once.
func (m *Monitor) Check(ctx context.Context) Health {
	h := Health{Roles: m.Roles(ctx)}
	var primaries []int
	var problems []string
	for i, r := range h.Roles {
		switch {
		case !r.Reachable:
			problems = append(problems, fmt.Sprintf("node %d unreachable (%v)", i+1, shortErr(r.Err)))
		case !r.InRecovery:
			primaries = append(primaries, i+1)
		}
	}
	if len(primaries) != 1 {
		problems = append(problems, fmt.Sprintf("%d nodes out of recovery %v", len(primaries), primaries))
		h.Problem = strings.Join(problems, "; ")
		return h
	}
	h.Primary = primaries[0]
	reps, err := m.Replication(ctx, h.Primary)
	if err != nil {
		problems = append(problems, fmt.Sprintf("pg_stat_replication on node %d: %v", h.Primary, shortErr(err)))
		h.Problem = strings.Join(problems, "; ")
		return h
	}
	h.Replicas = reps
	sync := 0
	for i, a := range m.addrs {
		if i+1 == h.Primary {
			continue
		}
		found := false
		for _, r := range reps {
			if r.Addr == a && r.State == "streaming" {
				found = true
				if r.SyncState == "sync" {
					sync++
				}
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("node %d not streaming from node %d", i+1, h.Primary))
		}
	}
	if sync == 0 {
		problems = append(problems, fmt.Sprintf("node %d has no sync standby", h.Primary))
	}
	h.Problem = strings.Join(problems, "; ")
	return h
}

// WaitHealthy polls until the cluster is healthy and extra (system-specific, may be nil)
// agrees, or timeout.
func (m *Monitor) WaitHealthy(ctx context.Context, timeout time.Duration, extra func(context.Context, Health) error) (Health, error) {
	deadline := time.Now().Add(timeout)
	var last Health
	var lastExtra error
	for {
		last = m.Check(ctx)
		if last.Problem == "" {
			if extra == nil {
				return last, nil
			}
			if lastExtra = extra(ctx, last); lastExtra == nil {
				return last, nil
			}
		}
		if time.Now().After(deadline) {
			why := last.Problem
			if why == "" && lastExtra != nil {
				why = lastExtra.Error()
			}
			return last, fmt.Errorf("cluster not healthy after %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitStreaming polls until the node at addr streams from whichever node is the primary then
// (the leader may have moved again since the first write after the fault), and returns when
// that was first seen and from which node.
func (m *Monitor) WaitStreaming(ctx context.Context, addr string, timeout time.Duration) (time.Time, int, error) {
	deadline := time.Now().Add(timeout)
	var last Health
	for {
		h := m.Check(ctx)
		now := time.Now()
		last = h
		if h.Primary != 0 {
			for _, r := range h.Replicas {
				if r.Addr == addr && r.State == "streaming" {
					return now, h.Primary, nil
				}
			}
		}
		if now.After(deadline) {
			return time.Time{}, 0, fmt.Errorf("%s not streaming from the primary after %s (last look: primary node %d, pg_stat_replication %v, problems: %s)",
				addr, timeout, last.Primary, last.Replicas, last.Problem)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Missing reads ids back from node i (1-based) and returns those not in chaos_ack, sorted.
func (m *Monitor) Missing(ctx context.Context, i int, ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var missing []int64
	err := m.conns[i-1].query(ctx, 60*time.Second, func(r pgx.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		missing = append(missing, id)
		return nil
	}, "SELECT id FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM chaos_ack c WHERE c.id = a.id)", ids)
	if err != nil {
		return nil, fmt.Errorf("while reading acknowledged ids back from node %d: %w", i, err)
	}
	sort.Slice(missing, func(a, b int) bool { return missing[a] < missing[b] })
	return missing, nil
}

// MaxID returns the largest id in chaos_ack on node i (0 for an empty table).
func (m *Monitor) MaxID(ctx context.Context, i int) (int64, error) {
	var max int64
	err := m.conns[i-1].query(ctx, 5*time.Second, func(r pgx.Rows) error { return r.Scan(&max) }, "SELECT coalesce(max(id), 0) FROM chaos_ack")
	return max, err
}

// Exec runs a statement on node i (1-based) as the monitor's user.
func (m *Monitor) Exec(ctx context.Context, i int, sql string) error {
	return m.conns[i-1].exec(ctx, 10*time.Second, sql)
}

// ChaosTables are the tables the writer and the probe write.
const ChaosTables = `CREATE TABLE IF NOT EXISTS chaos_ack (id bigint PRIMARY KEY, node int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS chaos_probe (round bigint NOT NULL, node int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`

// shortErr keeps error messages in one-line reports readable.
func shortErr(err error) string {
	if err == nil {
		return "no error"
	}
	s := err.Error()
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
