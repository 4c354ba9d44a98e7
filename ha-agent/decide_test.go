package haagent

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// Fixture: cluster "pg-test" with n1 the leader (primary) and n2, n3
// replicas streaming from it, all on timeline 2 at WAL 0/3000060, seen
// 50 ms ago. Time is this agent's monotonic clock; now = 10 s.
const (
	now    = 10 * time.Second
	msec   = time.Millisecond
	walAt  = LSN(0x3000060)
	sysid  = "7289263672843878470"
	leader = "n1"
)

func member(name string, role Role) Member {
	m := Member{
		Name: name, Role: role, State: PGRunning, Timeline: 2,
		APIURL: "http://" + name + ":8008", ObservedAt: now - 50*msec,
	}
	if role == RolePrimary {
		m.FlushLSN = walAt
	} else {
		m.ReceivedLSN, m.ReplayedLSN = walAt, walAt
		m.Upstream, m.ReplicationState, m.SyncState = leader, "streaming", SyncAsync
	}
	return m
}

func view(mods ...func(*ClusterView)) ClusterView {
	v := ClusterView{
		Cluster: "pg-test",
		Config:  DefaultConfig(),
		Leader: &LeaderRecord{Holder: leader, ModRevision: 100, Term: 3, Timeline: 2, Optime: walAt,
			ObservedAt: now - 50*msec},
		Initialize: &InitializeRecord{ClaimedBy: leader, Sysid: sysid},
		Members: map[string]Member{
			"n1": member("n1", RolePrimary),
			"n2": member("n2", RoleReplica),
			"n3": member("n3", RoleReplica),
		},
	}
	for _, mod := range mods {
		mod(&v)
	}
	return v
}

// replica is n2 (or name) streaming from n1.
func replica(name string, mods ...func(*LocalState)) LocalState {
	l := LocalState{
		Name: name, DCSReachable: true, Postgres: PGRunning, InRecovery: true, Sysid: sysid, Timeline: 2,
		ReceivedLSN: walAt, ReplayedLSN: walAt, Upstream: leader,
		WallClock: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	for _, mod := range mods {
		mod(&l)
	}
	return l
}

// primary is n1 holding the lease renewed 50 ms ago.
func primary(mods ...func(*LocalState)) LocalState {
	l := replica(leader)
	l.InRecovery, l.ReceivedLSN, l.ReplayedLSN, l.FlushLSN, l.Upstream = false, 0, 0, walAt, ""
	l.Lease = &Lease{Revision: 100, SentAt: now - 50*msec}
	for _, mod := range mods {
		mod(&l)
	}
	return l
}

func stale(v *ClusterView) { v.Leader.ObservedAt = now - 530*msec }

func noLeader(v *ClusterView) {
	v.LastLeader, v.Leader = v.Leader, nil
}

func syncMode(standbys ...string) func(*ClusterView) {
	return func(v *ClusterView) {
		v.Config.SynchronousMode = true
		v.Sync = &SyncRecord{Leader: leader, Standbys: standbys}
	}
}

func withMember(name string, mod func(*Member)) func(*ClusterView) {
	return func(v *ClusterView) {
		m := v.Members[name]
		mod(&m)
		v.Members[name] = m
	}
}

func failover(from, to string) func(*ClusterView) {
	return func(v *ClusterView) { v.Failover = &FailoverRequest{From: from, To: to, ModRevision: 77} }
}

func pgState(s PGState) func(*LocalState) { return func(l *LocalState) { l.Postgres = s } }

type decideCase struct {
	n          int
	name       string
	view       ClusterView
	local      LocalState
	now        time.Duration
	want       Action
	wantReason string
}

// decideCases are TestDecide's numbered cases: the steady state and pause
// here, the others with the code they test (bootstrapCases, ...).
func decideCases() []decideCase {
	return slices.Concat(steadyCases(), bootstrapCases(), leadershipCases(), failsafeCases(), holderCases(),
		followCases(), raceCases(), switchoverCases(), syncCases())
}

// steadyCases: a leader and its replicas with nothing to change, and pause.
func steadyCases() []decideCase {
	return []decideCase{
		{n: 1, name: "leader renews its lock",
			view: view(), local: primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "no action: I am n1, the leader with the lock"},
		{n: 2, name: "replica follows the leader",
			view: view(), local: replica("n2"),
			want:       Action{},
			wantReason: "no action: I am n2, a replica following leader n1"},
		{n: 3, name: "paused holder renews only",
			view: view(func(v *ClusterView) { v.Paused = true }), local: primary(),
			want:       Action{Kind: ActionRenewLeader},
			wantReason: "paused: renewing my leader lock and changing nothing else"},
		{n: 4, name: "paused replica does not race for a stale leader",
			view: view(stale, func(v *ClusterView) { v.Paused = true }), local: replica("n2"),
			want:       Action{},
			wantReason: "paused: maintenance mode, changing nothing"},
		{n: 5, name: "paused holder whose PostgreSQL stopped releases the lock and changes nothing else",
			view: view(func(v *ClusterView) { v.Paused = true }), local: primary(pgState(PGStopped)),
			want:       Action{Kind: ActionReleaseLeader, ExpectedRevision: 100},
			wantReason: "paused: releasing the leader lock because PostgreSQL is not running as a primary; changing nothing else"},
		{n: 6, name: "pause does not suspend the fence",
			view:  view(func(v *ClusterView) { v.Paused = true }),
			local: primary(func(l *LocalState) { l.DCSReachable = false; l.Lease.SentAt = now - 450*msec }),
			want:  Action{Kind: ActionFenceWrites},
			wantReason: "fencing: could not renew the leader lock before my deadline (last successful renew sent 450 ms ago, deadline 449.5 ms after it); " +
				"fencing even though paused, because a resume I cannot see would let others take over"},
		{n: 7, name: "agent without a member name does nothing",
			view: view(), local: replica(""),
			want:       Action{},
			wantReason: "no action: this agent has no member name"},
	}
}

func TestDecide(t *testing.T) {
	seen := map[int]bool{}
	for _, tc := range decideCases() {
		if seen[tc.n] {
			t.Fatalf("case number %d used twice", tc.n)
		}
		seen[tc.n] = true
		at := tc.now
		if at == 0 {
			at = now
		}
		if err := tc.view.Config.Validate(); err != nil {
			t.Fatalf("case %d %s: fixture config invalid: %v", tc.n, tc.name, err)
		}
		view, local := deepCopy(tc.view), deepCopy(tc.local)
		got, reason := Decide(tc.view, tc.local, at)
		if !reflect.DeepEqual(tc.view, view) {
			t.Errorf("case %d %s: Decide modified its view:\n  after  %+v\n  before %+v", tc.n, tc.name, tc.view, view)
		}
		if !reflect.DeepEqual(tc.local, local) {
			t.Errorf("case %d %s: Decide modified its local state:\n  after  %+v\n  before %+v", tc.n, tc.name, tc.local, local)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("case %d %s:\n  action  %s %+v\n  want    %s %+v", tc.n, tc.name, got, got, tc.want, tc.want)
		}
		if reason != tc.wantReason {
			t.Errorf("case %d %s:\n  reason %q\n  want   %q", tc.n, tc.name, reason, tc.wantReason)
		}
	}
}

// deepCopy copies v and everything it points to (maps, slices, pointers),
// so that comparing the copy with v after a call shows whether the call
// wrote through any of them. Unexported struct fields (time.Time's) are
// copied as values.
func deepCopy[T any](v T) T {
	out := reflect.New(reflect.TypeOf(&v).Elem()).Elem()
	copyValue(out, reflect.ValueOf(&v).Elem())
	return out.Interface().(T)
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			val := reflect.New(src.Type().Elem()).Elem()
			copyValue(val, it.Value())
			m.SetMapIndex(it.Key(), val)
		}
		dst.Set(m)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		sl := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyValue(sl.Index(i), src.Index(i))
		}
		dst.Set(sl)
	case reflect.Struct:
		dst.Set(src)
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				copyValue(dst.Field(i), src.Field(i))
			}
		}
	default:
		dst.Set(src)
	}
}

func TestDeepCopySharesNothing(t *testing.T) {
	v := view(syncMode("n2"), func(v *ClusterView) { v.FailsafeMembers = []string{"n1"} })
	c := deepCopy(v)
	if !reflect.DeepEqual(v, c) {
		t.Fatalf("copy differs: %+v", c)
	}
	c.Leader.Holder, c.Sync.Standbys[0], c.FailsafeMembers[0] = "x", "x", "x"
	c.Members["n2"] = Member{}
	if v.Leader.Holder != leader || v.Sync.Standbys[0] != "n2" || v.FailsafeMembers[0] != "n1" || v.Members["n2"].Name != "n2" {
		t.Fatalf("the copy shares memory with the original: %+v", v)
	}
}

// Decide must not depend on anything but its inputs: same inputs, same output.
func TestDecideIsDeterministic(t *testing.T) {
	for _, tc := range decideCases() {
		a1, r1 := Decide(tc.view, tc.local, now)
		for range 20 {
			a2, r2 := Decide(tc.view, tc.local, now)
			if !reflect.DeepEqual(a1, a2) || r1 != r2 {
				t.Fatalf("case %d %s: not deterministic: %s / %s", tc.n, tc.name, r1, r2)
			}
		}
	}
}
