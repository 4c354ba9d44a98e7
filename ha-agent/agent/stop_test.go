package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
)

// stopProbePG records what GET /primary answers at each step of a planned stop; the other
// methods of Postgres are not called (nil: they would panic).
type stopProbePG struct {
	Postgres
	primary  func() int
	seen     map[string]int
	stopFail error
}

func (p *stopProbePG) Checkpoint(context.Context) error {
	p.seen["checkpoint"] = p.primary()
	return nil
}

func (p *stopProbePG) Stop(context.Context, pgctl.StopMode) error {
	p.seen["stop"] = p.primary()
	return p.stopFail
}

// A switchover's demotion: /primary answers 503 before PostgreSQL's checkpoint and stop begin,
// so HAProxy drains the member first; after a failed stop the member, still the leader with a
// running primary, answers 200 again.
func TestPrimaryAnswers503BeforeThePlannedStop(t *testing.T) {
	for _, stopFail := range []error{nil, errors.New("pg_ctl stop: timed out")} {
		a := healthAgent(TagsConfig{})
		a.asyncDone = make(chan asyncResult, 1)
		a.mu.Lock()
		a.snap = leaderSnap()
		a.mu.Unlock()
		primary := func() int {
			w := httptest.NewRecorder()
			a.routes().ServeHTTP(w, httptest.NewRequest(http.MethodOptions, "/primary", nil))
			return w.Code
		}
		pg := &stopProbePG{primary: primary, seen: map[string]int{}, stopFail: stopFail}
		a.pg = pg
		if code := primary(); code != http.StatusOK {
			t.Fatalf("/primary before the demotion: %d, want 200", code)
		}
		if err := a.demote(haagent.Action{Kind: haagent.ActionDemote, Clean: true, KeepLock: true}); err != nil {
			t.Fatal(err)
		}
		a.finishAsync(<-a.asyncDone) // as the loop does
		for _, step := range []string{"checkpoint", "stop"} {
			if pg.seen[step] != http.StatusServiceUnavailable {
				t.Errorf("stop error %v: /primary during the %s: %d, want 503", stopFail, step, pg.seen[step])
			}
		}
		want := http.StatusServiceUnavailable // until the loop sees PostgreSQL down
		if stopFail != nil {
			// the next cycle's snapshot carries the flag, cleared after the failed stop
			a.mu.Lock()
			a.snap.stopping = a.stopping
			a.mu.Unlock()
			want = http.StatusOK
		}
		if code := primary(); code != want {
			t.Errorf("stop error %v: /primary after the stop: %d, want %d", stopFail, code, want)
		}
	}
}
