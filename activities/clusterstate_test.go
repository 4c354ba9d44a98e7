package activities

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pkitest"
)

// fakeCluster is a cluster's agents: the leader answers GET /cluster with its live view and
// GET /primary 200; every other member answers /cluster with what the DCS last had (stale),
// and /primary 503.
type fakeCluster struct {
	mu     sync.Mutex
	leader string
	live   haagent.ClusterStatus // the leader's answer
	stale  haagent.ClusterStatus // any other member's answer
	asked  int                   // GET /cluster on the leader
	// next, when set, changes live before each of the leader's answers (n: how many so far).
	next func(n int, v *haagent.ClusterStatus)
}

func (f *fakeCluster) members(t *testing.T, a *Activities, names ...string) []MemberAPI {
	var out []MemberAPI
	for _, name := range names {
		out = append(out, fakeAgent(t, a.CA, name, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			isLeader := name == f.leader
			switch r.URL.Path {
			case "/primary":
				if !isLeader {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			case "/cluster":
				v := f.stale
				if isLeader {
					f.asked++
					if f.next != nil {
						f.next(f.asked, &f.live)
					}
					v = f.live
				}
				_ = json.NewEncoder(w).Encode(v)
			default:
				http.NotFound(w, r)
			}
		}))
	}
	return out
}

func lag(n uint64) *uint64 { return &n }

func threeMembers() haagent.ClusterStatus {
	return haagent.ClusterStatus{Cluster: "pg-test", Leader: "pg-test-1", Members: []haagent.ClusterMember{
		{Name: "pg-test-1", Role: haagent.ClusterRoleLeader, State: "running", LagBytes: lag(0)},
		{Name: "pg-test-3", Role: haagent.ClusterRoleReplica, State: "catchup", LagBytes: lag(9000), PendingRestart: true},
		{Name: "pg-test-2", Role: haagent.ClusterRoleSyncStandby, State: "streaming", LagBytes: lag(0), PendingRestart: true},
	}}
}

func TestReadClusterState(t *testing.T) {
	a := &Activities{CA: pkitest.CA(t)}
	f := &fakeCluster{leader: "pg-test-1", live: threeMembers()}
	f.stale = threeMembers()
	f.stale.Members[1].State = "streaming"
	// The replica is asked first: its stale view names the leader, whose live view is used.
	ms := f.members(t, a, "pg-test-3", "pg-test-1", "pg-test-2")
	st, err := a.ReadClusterState(context.Background(), ClusterStateInput{Members: ms})
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "pg-test-1" || !st.LeaderPrimary || st.Paused || st.Unhealthy() != "" ||
		strings.Join(st.Replicas, ",") != "pg-test-2,pg-test-3" || strings.Join(st.PendingRestart, ",") != "pg-test-2,pg-test-3" ||
		strings.Join(st.Streaming, ",") != "pg-test-2" || strings.Join(st.SyncStandbys, ",") != "pg-test-2" {
		t.Errorf("state %+v", st)
	}
	if !strings.Contains(st.View, "pg-test-3 replica/catchup, lag 9000 B, pending restart") {
		t.Errorf("view %q", st.View)
	}

	// Paused, and a leader whose agent does not answer as a primary: said, not hidden.
	f.mu.Lock()
	f.live.Paused, f.leader = true, "nobody"
	f.stale.Paused = true
	f.mu.Unlock()
	st, err = a.ReadClusterState(context.Background(), ClusterStateInput{Members: ms})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.LeaderPrimary || !strings.Contains(st.Unhealthy(), "pg-test-1 does not answer as a primary") || !strings.Contains(st.View, "as the DCS last had it") {
		t.Errorf("state %+v, unhealthy %q", st, st.Unhealthy())
	}

	f.mu.Lock()
	f.stale.Leader = ""
	f.mu.Unlock()
	st, err = a.ReadClusterState(context.Background(), ClusterStateInput{Members: ms})
	if err != nil || st.Unhealthy() != "the cluster has no leader" {
		t.Errorf("no leader: %+v %v", st, err)
	}
}

func TestWaitMembers(t *testing.T) {
	defer func(d time.Duration) { memberPoll = d }(memberPoll)
	memberPoll = 10 * time.Millisecond
	a := &Activities{CA: pkitest.CA(t)}

	t.Run("streaming, from the leader's view only", func(t *testing.T) {
		f := &fakeCluster{leader: "pg-test-1", live: threeMembers(), stale: threeMembers()}
		f.live.Members[2].State = "starting"
		f.stale.Members[2].State = "streaming" // what the DCS had before the restart
		f.next = func(n int, v *haagent.ClusterStatus) {
			if n >= 4 {
				v.Members[2].State = "streaming"
			}
		}
		ms := f.members(t, a, "pg-test-2", "pg-test-1", "pg-test-3")
		res, err := a.WaitMembers(context.Background(), WaitMembersInput{Members: ms, Targets: []string{"pg-test-2"}, Until: UntilStreaming, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if f.asked < 4 || !strings.Contains(res.Summary(), "pg-test-2 streams, lag 0 bytes") {
			t.Errorf("leader asked %d times, result %+v; want a wait until the leader saw it stream", f.asked, res)
		}
	})
	t.Run("lag", func(t *testing.T) {
		f := &fakeCluster{leader: "pg-test-1", live: threeMembers()}
		f.live.Members[1].State = "streaming"
		f.live.Members[1].LagBytes = lag(20 << 20)
		f.next = func(n int, v *haagent.ClusterStatus) {
			if n >= 3 {
				v.Members[1].LagBytes = lag(1 << 20)
			}
		}
		ms := f.members(t, a, "pg-test-1", "pg-test-3")
		res, err := a.WaitMembers(context.Background(), WaitMembersInput{Members: ms, Targets: []string{"pg-test-3"}, Until: UntilLag, Lag: 16 << 20, Timeout: 10 * time.Second})
		if err != nil || f.asked < 3 || res.Changed {
			t.Errorf("result %+v, err %v, asked %d", res, err, f.asked)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := &fakeCluster{leader: "pg-test-1", live: threeMembers()}
		f.live.Members[2].State = "starting"
		ms := f.members(t, a, "pg-test-1", "pg-test-2")
		_, err := a.WaitMembers(context.Background(), WaitMembersInput{Members: ms, Targets: []string{"pg-test-2"}, Until: UntilStreaming, Timeout: 200 * time.Millisecond})
		app := appErr(t, err)
		if app.Type() != ErrMemberWaitTimeout || !app.NonRetryable() ||
			!strings.Contains(app.Message(), "after 200ms, still waiting until streaming: pg-test-2 is starting, not streaming (members: pg-test-1 leader/running") {
			t.Errorf("error %q (type %s)", app.Message(), app.Type())
		}
	})
	t.Run("the leader streams from no one", func(t *testing.T) {
		f := &fakeCluster{leader: "pg-test-1", live: threeMembers()}
		ms := f.members(t, a, "pg-test-1")
		_, err := a.WaitMembers(context.Background(), WaitMembersInput{Members: ms, Targets: []string{"pg-test-1"}, Until: UntilStreaming, Timeout: time.Minute})
		if app := appErr(t, err); app.Type() != ErrConflict || !app.NonRetryable() || !strings.Contains(app.Message(), "pg-test-1 leads the cluster") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("an unknown condition", func(t *testing.T) {
		_, err := a.WaitMembers(context.Background(), WaitMembersInput{Targets: []string{"pg-test-2"}, Until: "healthy"})
		if app := appErr(t, err); app.Type() != ErrConfig || !strings.Contains(app.Message(), `until is "healthy"`) {
			t.Errorf("error %v", err)
		}
	})
}
