package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
)

// FaultKind names one of the faults of the suite.
type FaultKind string

// The faults, numbered as in the issue.
const (
	PGCrash    FaultKind = "pg-crash"   // (1) kill -9 of the primary's postmaster
	NodeCrash  FaultKind = "node-crash" // (2) the primary's node killed, link down; back after the measurement
	Isolation  FaultKind = "isolation"  // (3) the primary's link down while it runs; restored after the measurement
	AgentKill  FaultKind = "agent-kill" // (4) kill -9 of the primary's agent (not its supervisor): no failover expected
	EtcdKill   FaultKind = "etcd-kill"  // (5) kill -9 of one etcd member (the etcd leader): no failover expected
	Switchover FaultKind = "switchover" // (6) planned switchover through the DCS failover request
)

// FaultInfo describes a fault for the report.
type FaultInfo struct {
	Kind   FaultKind
	Number int
	Title  string
	// Failover says whether the leader is expected to move; false means the RTO column is the
	// write unavailability the fault caused.
	Failover bool
	// SubSecondGoal: pigwf's goal is a median RTO under 1 s for this fault.
	SubSecondGoal bool
}

// Faults lists every fault in issue order.
var Faults = []FaultInfo{
	{PGCrash, 1, "kill -9 of the primary's postmaster", true, true},
	{NodeCrash, 2, "primary node killed, link down", true, true},
	{Isolation, 3, "primary isolated (link down), keeps running", true, true},
	{AgentKill, 4, "kill -9 of the primary's agent (supervisor restarts it)", false, false},
	{EtcdKill, 5, "kill -9 of the etcd leader member (restarts itself)", false, false},
	{Switchover, 6, "planned switchover via the DCS failover request", true, true},
}

// FaultByKind returns the description of a fault.
func FaultByKind(k FaultKind) FaultInfo {
	for _, f := range Faults {
		if f.Kind == k {
			return f
		}
	}
	return FaultInfo{Kind: k, Title: string(k)}
}

// System is the HA system under test on its lab: pigwf's agents or Patroni.
type System interface {
	Name() string
	Lab() *lab.Status
	DataDir() string
	// Member is node i's (1-based) member name in the HA system.
	Member(i int) string
	// ExtraHealthy is the system's own view agreeing with PostgreSQL's (may return nil always).
	ExtraHealthy(ctx context.Context, h Health) error
	// Switchover asks the system for a planned switchover from node from to node to.
	Switchover(ctx context.Context, from, to int) error
	// Diagnostics returns the tails of the system's logs on the given nodes, for a failed trial.
	Diagnostics(nodes []int) string
	// LogFiles are the node paths (globs) of the logs worth keeping after the run.
	LogFiles() []string
	// Settings describe the system's HA configuration for the report.
	Settings() []string
	// ServicePort is the access layer's primary service port on every node (0: none).
	ServicePort() int
}

// Trial is the outcome of one fault injection.
type Trial struct {
	System     string
	Fault      FaultKind
	N          int
	OldPrimary int // 1-based node
	NewPrimary int // node of the first write acknowledged after the fault (0: none)
	T0         time.Time
	Detail     string // what exactly was hit (pid, etcd member, target)

	Acked bool          // a write was acknowledged after the fault
	RTO   time.Duration // fault injection → first write acknowledged that started after it
	// Client*: the same through the access layer (the service writer, through HAProxy's primary
	// port), measured before the fault is lifted; ClientRTO is the write unavailability for (4)/(5).
	ClientAcked bool
	ClientRTO   time.Duration
	ClientNode  int // the node whose PostgreSQL took the client's first write
	// Gap is the write unavailability: for failover faults, the first write after the fault
	// minus the last one before it (which may come after t0: a switchover's old primary keeps
	// writing until it demotes); for (4)/(5), the longest stretch without a write after t0.
	Gap     time.Duration
	LastOld time.Duration // when the last write before that gap was acknowledged, relative to t0

	LeaderChanged bool
	// MovedAgain: the primary after the trial is not the node of the first write after the
	// fault: a second, unplanned leader change happened during the trial.
	MovedAgain bool
	// Old primary back as a streaming replica of the new primary (only when the leader moved).
	Back        bool
	BackIn      time.Duration // from the fault being lifted (node started / link up; t0 otherwise)
	HealthyIn   time.Duration // from the fault being lifted until 1 primary + 2 streaming again
	Lost        []int64       // acknowledged ids missing on the current primary (new in this trial)
	LostDetail  []string
	SplitBrains []SplitBrain
	Errs        []string // anything that makes the trial count as failed
	Diag        string   // log tails, for failed trials
}

// Injected says whether the fault was injected (a trial can stop before: cluster not healthy,
// nothing to hit).
func (t *Trial) Injected() bool { return !t.T0.IsZero() }

// Failed says whether the trial breaks a promise: lost writes, two writable primaries, an old
// primary that did not come back, an outage with no write at all, or a cluster that did not heal.
func (t *Trial) Failed() bool {
	return len(t.Lost) > 0 || len(t.SplitBrains) > 0 || len(t.Errs) > 0
}

// Runner runs trials of one system under one writer and probe.
type Runner struct {
	Sys   System
	Addrs []string
	Mon   *Monitor
	W     *Writer
	// SW writes through the system's access layer (HAProxy's primary port on every node); nil
	// when the system has none.
	SW  *Writer
	P   *Probe
	Log func(format string, args ...any)

	lostSeen  map[int64]bool
	unhealthy bool // the last trial left the cluster unhealthy
}

// Timeouts of a trial.
const (
	healthyBefore = 120 * time.Second // cluster healthy before a trial
	ackAfterFault = 90 * time.Second  // a write acknowledged after the fault
	backTimeout   = 60 * time.Second  // old primary streaming again after the fault is lifted
	healAfter     = 90 * time.Second  // whole cluster healthy after the fault is lifted
	// noFailoverWindow is how long after a fault that should not cause a failover the writes
	// are watched for a stall (the agent fences at ~450 ms; a failover takes ~0.6 s).
	noFailoverWindow = 5 * time.Second
	// agentSettle is how long the agent must have run before an agent-kill trial: beyond the
	// supervisor's 10 s crash-loop window.
	agentSettle = 10500 * time.Millisecond
)

// RunTrial injects fault kind once and measures it.
func (r *Runner) RunTrial(ctx context.Context, kind FaultKind, n int) *Trial {
	tr := &Trial{System: r.Sys.Name(), Fault: kind, N: n}
	st := r.Sys.Lab()
	start := time.Now()
	defer func() {
		tr.SplitBrains = r.P.Incidents(start, time.Now())
		if tr.Failed() {
			tr.Diag = labFacts(st) + r.Sys.Diagnostics([]int{1, 2, 3})
		}
	}()
	wait := healthyBefore
	if r.unhealthy {
		wait = 30 * time.Second // the last trial already waited for it in vain
	}
	h, err := r.Mon.WaitHealthy(ctx, wait, r.Sys.ExtraHealthy)
	if err != nil {
		tr.Errs = append(tr.Errs, "before the fault: "+err.Error())
		return tr
	}
	p := h.Primary
	tr.OldPrimary = p
	if err := r.waitWriterOn(ctx, r.W, p, 15*time.Second); err != nil {
		tr.Errs = append(tr.Errs, "before the fault: "+err.Error())
		return tr
	}
	if r.SW != nil {
		// HAProxy's checks must have settled on p (with Pigsty's check settings a new primary
		// is in service ~10 s after it answers 200).
		if err := r.waitWriterOn(ctx, r.SW, p, 45*time.Second); err != nil {
			tr.Errs = append(tr.Errs, "before the fault, through the access layer: "+err.Error())
			return tr
		}
	}

	// Everything that takes time happens before t0: the injection itself is one call.
	var inject, restore func() error
	switch kind {
	case PGCrash:
		pid, err := postmasterPID(ctx, st, p, r.Sys.DataDir())
		if err != nil {
			tr.Errs = append(tr.Errs, err.Error())
			return tr
		}
		tr.Detail = fmt.Sprintf("postmaster host pid %d", pid)
		inject = func() error { return kill9(pid) }
	case NodeCrash:
		inject = func() error {
			if err := st.SetLink(p, false); err != nil {
				return err
			}
			return st.KillNode(p)
		}
		// a crashed host comes back with its network up: link first, then boot (a node booted
		// while cut off would start its etcd member campaigning alone, which then disrupts the
		// etcd cluster when the link comes up)
		restore = func() error {
			if err := st.SetLink(p, true); err != nil {
				return err
			}
			return st.StartNode(ctx, p)
		}
	case Isolation:
		inject = func() error { return st.SetLink(p, false) }
		restore = func() error { return st.SetLink(p, true) }
	case AgentKill:
		pid, args, err := agentChildPID(st, p)
		if err != nil {
			tr.Errs = append(tr.Errs, err.Error())
			return tr
		}
		// The supervisor doubles its restart delay (100 ms → 5 s) while the agent keeps dying
		// within 10 s of its start: kill an agent that has run longer, so each trial is one
		// crash, not a crash loop (whose growing delay soon exceeds the leader lease).
		if age, err := procAge(pid); err == nil && age < agentSettle {
			select {
			case <-ctx.Done():
			case <-time.After(agentSettle - age):
			}
		}
		tr.Detail = fmt.Sprintf("agent host pid %d (%s)", pid, args)
		inject = func() error { return kill9(pid) }
	case EtcdKill:
		m, err := etcdLeader(ctx, st)
		if err != nil {
			tr.Errs = append(tr.Errs, err.Error())
			return tr
		}
		tr.Detail = fmt.Sprintf("etcd leader member on node %d", m)
		inject = func() error { return st.KillEtcd(m) }
	case Switchover:
		to := h.SyncStandby(r.Addrs)
		if to == 0 {
			tr.Errs = append(tr.Errs, "no sync standby to switch over to")
			return tr
		}
		tr.Detail = fmt.Sprintf("%s → %s", r.Sys.Member(p), r.Sys.Member(to))
		inject = func() error { return r.Sys.Switchover(ctx, p, to) }
	default:
		tr.Errs = append(tr.Errs, "unknown fault "+string(kind))
		return tr
	}

	tr.T0 = time.Now()
	if err := inject(); err != nil {
		tr.Errs = append(tr.Errs, "injecting the fault: "+err.Error())
		if restore != nil {
			_ = restore()
		}
		return tr
	}
	info := FaultByKind(kind)
	freshOn := 0
	if info.Failover {
		freshOn = p // the killed postmaster's orphaned backends are not the service being back
	}
	ack, ok := r.W.FirstAckAfter(ctx, tr.T0, freshOn, ackAfterFault)
	if ok {
		tr.Acked, tr.RTO, tr.NewPrimary = true, ack.At.Sub(tr.T0), ack.Node
		tr.LeaderChanged = ack.Node != p
		if before, ok := r.W.AckBefore(ack.At); ok {
			tr.Gap, tr.LastOld = ack.At.Sub(before.At), before.At.Sub(tr.T0)
		}
	} else {
		tr.Errs = append(tr.Errs, fmt.Sprintf("no write acknowledged within %s of the fault", ackAfterFault))
	}
	if r.SW != nil && info.Failover {
		// Through the access layer, still under the fault: a client sees the failover once
		// HAProxy has marked the new primary up (and cut the old one's sessions).
		if sack, sok := r.SW.FirstAckAfter(ctx, tr.T0, freshOn, ackAfterFault); sok {
			tr.ClientAcked, tr.ClientRTO, tr.ClientNode = true, sack.At.Sub(tr.T0), sack.Node
		} else {
			tr.Errs = append(tr.Errs, fmt.Sprintf("no write acknowledged through the access layer within %s of the fault", ackAfterFault))
		}
	}
	if ok && !info.Failover {
		// No failover expected: what counts is the longest stretch without an acknowledged
		// write from the fault on, over a window long enough for a fence (or a failover) to
		// show, extended until writes flow again.
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(tr.T0.Add(noFailoverWindow))):
		}
		if err := r.waitFresh(ctx, r.W, ackAfterFault); err != nil {
			tr.Errs = append(tr.Errs, err.Error())
		}
		now := time.Now()
		gap, began := r.W.MaxGap(tr.T0, now)
		tr.RTO, tr.Gap, tr.LastOld = gap, gap, began.Sub(tr.T0)
		if r.SW != nil {
			if err := r.waitFresh(ctx, r.SW, ackAfterFault); err != nil {
				tr.Errs = append(tr.Errs, "through the access layer: "+err.Error())
			} else {
				tr.ClientAcked = true
				tr.ClientRTO, _ = r.SW.MaxGap(tr.T0, time.Now())
				if last, ok := r.SW.LastAck(); ok {
					tr.ClientNode = last.Node
				}
			}
		}
		if last, ok := r.W.LastAck(); ok {
			tr.NewPrimary = last.Node
			tr.LeaderChanged = last.Node != p
		}
	}
	// the killed postmaster's orphans may still answer the monitor's old connections
	r.Mon.Reset()
	lifted := tr.T0
	if restore != nil {
		lifted = time.Now()
		if err := restore(); err != nil {
			tr.Errs = append(tr.Errs, "lifting the fault: "+err.Error())
		}
	}

	if !ok {
		if last, found := r.W.LastAck(); found && last.Node == p && time.Since(last.At) < time.Second {
			tr.Errs = append(tr.Errs, fmt.Sprintf("node %d kept taking writes on connections opened before the fault: the leader never moved", p))
		}
	}
	if ok && tr.LeaderChanged {
		at, from, err := r.Mon.WaitStreaming(ctx, r.Addrs[p-1], backTimeout+time.Until(lifted))
		if err != nil {
			tr.Errs = append(tr.Errs, fmt.Sprintf("old primary node %d did not come back as a streaming replica within %s of the fault being lifted: %v", p, backTimeout, err))
		} else {
			tr.Back, tr.BackIn = true, at.Sub(lifted)
			if from != tr.NewPrimary {
				tr.Detail = joinDetail(tr.Detail, fmt.Sprintf("old primary streams from node %d, not from node %d", from, tr.NewPrimary))
			}
		}
	}
	h2, err := r.Mon.WaitHealthy(ctx, healAfter, r.Sys.ExtraHealthy)
	r.unhealthy = err != nil
	if err != nil {
		tr.Errs = append(tr.Errs, "after the fault: "+err.Error())
	} else if info.Failover || restore != nil {
		tr.HealthyIn = time.Since(lifted)
	}
	if ok && h2.Primary != 0 && h2.Primary != tr.NewPrimary {
		// The leader moved again after the first write the fault let through: an extra,
		// unplanned failover (or, for (4)/(5), the failover that should not have happened).
		tr.MovedAgain = true
		tr.LeaderChanged = tr.LeaderChanged || h2.Primary != p
		tr.Detail = joinDetail(tr.Detail, fmt.Sprintf("leader moved again, to node %d, after the first write on node %d", h2.Primary, tr.NewPrimary))
	}

	// Every write acknowledged so far must be on the current primary.
	cur := h2.Primary
	if cur == 0 {
		cur = tr.NewPrimary
	}
	if cur != 0 {
		// The read-back itself can be cut off (the primary fenced right after the cluster
		// looked healthy, e.g. on an etcd election): look again and retry on whichever node
		// is the primary then, and say so.
		var err error
		for attempt := 1; attempt <= 3; attempt++ {
			if err = r.checkLost(ctx, cur, tr); err == nil {
				break
			}
			tr.Detail = joinDetail(tr.Detail, fmt.Sprintf("read-back from node %d failed (%s), retried", cur, shortErr(err)))
			if h3, herr := r.Mon.WaitHealthy(ctx, 30*time.Second, r.Sys.ExtraHealthy); herr == nil {
				cur = h3.Primary
			}
		}
		if err != nil {
			tr.Errs = append(tr.Errs, err.Error())
		}
	}
	return tr
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// waitWriterOn waits until w's latest acknowledgement is fresh and from node p.
func (r *Runner) waitWriterOn(ctx context.Context, w *Writer, p int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		a, ok := w.LastAck()
		if ok && a.Node == p && time.Since(a.At) < 300*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the writer has no fresh acknowledgement from primary node %d after %s (last: %+v)", p, timeout, a)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitFresh waits until w's latest acknowledgement (on any node) is fresh.
func (r *Runner) waitFresh(ctx context.Context, w *Writer, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if a, ok := w.LastAck(); ok && time.Since(a.At) < 100*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("writes did not flow again within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkLost reads every acknowledged id back from node cur and records those missing.
func (r *Runner) checkLost(ctx context.Context, cur int, tr *Trial) error {
	if r.lostSeen == nil {
		r.lostSeen = map[int64]bool{}
	}
	acks := r.W.Acks()
	if r.SW != nil {
		acks = append(acks, r.SW.Acks()...)
	}
	missing, err := r.Mon.Missing(ctx, cur, ackIDs(acks))
	if err != nil {
		return err
	}
	byID := map[int64]Ack{}
	for _, a := range acks {
		byID[a.ID] = a
	}
	for _, id := range missing {
		if r.lostSeen[id] {
			continue
		}
		r.lostSeen[id] = true
		tr.Lost = append(tr.Lost, id)
		a := byID[id]
		if len(tr.LostDetail) < 10 {
			tr.LostDetail = append(tr.LostDetail, fmt.Sprintf("id %d acknowledged by node %d at %s (t0%+.3fs)", id, a.Node, a.At.Format("15:04:05.000"), a.At.Sub(tr.T0).Seconds()))
		}
	}
	return nil
}
