package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/pgctl"
	"github.com/pigwf/pigwf/internal/httplimit"
)

// A planned restart of a replica's PostgreSQL (POST /restart, Patroni's): the agent owns the
// postmaster, so a restart goes through it; a pg_ctl restart behind its back would look like a
// crash. The handler checks the conditions, asks the loop (restartAsk), and answers once
// PostgreSQL runs again. The loop marks the member "restarting" (so the leader stops naming it
// a synchronous standby when another can take that place), waits a moment for that, and stops
// PostgreSQL fast off the loop; the next cycle starts it again as a replica of the leader, with
// the configuration files as they are now. The leader is never restarted in place: its
// restart would be a write outage; a switchover first makes it a replica (pg-restart does so).

// restartAsk is POST /restart's request to the loop; reply carries the loop's answer (nil: the
// stop has begun).
type restartAsk struct{ reply chan error }

var (
	// errRestartLeader: this member leads; it is restarted only after a switchover.
	errRestartLeader = errors.New("this member is the leader: the leader is not restarted in place (that would stop writes); switch over first, then restart it as a replica (pigwf start pg-restart does both)")
	// errRestartBusy: a long action runs; try again.
	errRestartBusy = errors.New("the agent is busy")
)

const (
	// restartWait bounds how long POST /restart waits for PostgreSQL to run again.
	restartWait = 90 * time.Second
	// syncMoveWait bounds how long a synchronous standby waits, before it stops, for the
	// leader to name another synchronous standby.
	syncMoveWait = 3 * time.Second
)

// showRestarting is the member record's state during a planned restart.
const showRestarting recordState = "restarting"

// beginRestart runs on the loop: refuse a leader or a busy agent, else start the stop off the
// loop.
func (a *Agent) beginRestart(ask restartAsk) {
	switch {
	case a.lease != nil || (a.cache.leader != nil && a.cache.leader.rec.Holder == a.cfg.Name):
		ask.reply <- errRestartLeader
		return
	case a.busy != haagent.BusyNone:
		ask.reply <- fmt.Errorf("%w: %s is running", errRestartBusy, a.busy)
		return
	}
	a.log.Info("restarting PostgreSQL on request (POST /restart): stopping it fast; the loop starts it again as a replica")
	a.runAsync(haagent.BusyRestarting, showRestarting, "restarting PostgreSQL on request", func(ctx context.Context) error {
		a.awaitSyncMoved(ctx)
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return a.pg.Stop(sctx, pgctl.StopFast)
	}, func(err error) {
		if err != nil {
			a.log.Error("planned restart: stopping PostgreSQL failed", "err", err)
		}
		a.kickSoon()
	})
	ask.reply <- nil
}

// awaitSyncMoved waits (bounded) until the sync key names another standby instead of this
// member: the member record now says "restarting", which no leader counts as a synchronous
// standby candidate, so a leader with another streaming standby moves synchronous replication
// there first and commits never wait for a standby that is shutting down. A key naming nobody is
// the leader's first step of that move (it removes before it adds), so it is waited past too;
// a cluster with no other candidate waits out syncMoveWait.
func (a *Agent) awaitSyncMoved(ctx context.Context) {
	deadline := time.After(syncMoveWait)
	for {
		s, changed := a.snapshotAndChange()
		if s.sync == nil || (len(s.sync.Standbys) > 0 && !slices.Contains(s.sync.Standbys, a.cfg.Name)) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			if slices.Contains(s.sync.Standbys, a.cfg.Name) {
				a.log.Warn("planned restart: the leader still names this member a synchronous standby; stopping anyway (commits wait until it names another or this one is back)",
					"waited", syncMoveWait)
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// handleRestart is POST /restart.
func (a *Agent) handleRestart(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req haagent.RestartRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	s := a.snapshot()
	if s.local.Lease != nil || (s.view.Leader != nil && s.view.Leader.Holder == a.cfg.Name) {
		http.Error(w, errRestartLeader.Error(), http.StatusConflict)
		return
	}
	if s.obs.State != haagent.PGRunning || s.obs.Stale {
		http.Error(w, fmt.Sprintf("PostgreSQL is %s, not running: the agent starts it itself; try again once it runs", s.obs.State), http.StatusServiceUnavailable)
		return
	}
	if req.RestartPending && len(s.params.Pending) == 0 {
		a.writeJSON(w, r, http.StatusOK, haagent.RestartResponse{Reason: "no setting waits for a restart", PostmasterStart: s.obs.PostmasterAt})
		return
	}
	if !req.StartedBefore.IsZero() && !s.obs.PostmasterAt.IsZero() && !s.obs.PostmasterAt.Before(req.StartedBefore) {
		a.writeJSON(w, r, http.StatusOK, haagent.RestartResponse{PostmasterStart: s.obs.PostmasterAt, Reason: fmt.Sprintf(
			"PostgreSQL started at %s, not before %s: already restarted", s.obs.PostmasterAt.UTC().Format(time.RFC3339Nano), req.StartedBefore.UTC().Format(time.RFC3339Nano))})
		return
	}
	before := s.obs.PostmasterAt
	// The answer comes once PostgreSQL runs again, which may outlast the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(restartWait + 5*time.Second))
	ask := restartAsk{reply: make(chan error, 1)}
	select {
	case a.restarts <- ask:
	default:
		http.Error(w, "a restart request is already waiting for the loop; try again", http.StatusServiceUnavailable)
		return
	}
	select {
	case err := <-ask.reply:
		switch {
		case errors.Is(err, errRestartLeader):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error()+"; try again", http.StatusServiceUnavailable)
			return
		}
	case <-r.Context().Done():
		return
	}
	deadline := time.After(restartWait)
	for {
		s, changed := a.snapshotAndChange()
		if s.obs.State == haagent.PGRunning && !s.obs.Stale && s.obs.PostmasterAt.After(before) && s.local.Busy == haagent.BusyNone {
			a.writeJSON(w, r, http.StatusOK, haagent.RestartResponse{Restarted: true, PostmasterStart: s.obs.PostmasterAt,
				Reason: "restarted: PostgreSQL runs again as a replica"})
			return
		}
		select {
		case <-changed:
		case <-deadline:
			http.Error(w, fmt.Sprintf("the restart began but PostgreSQL does not run again after %s (state %s, %s)", restartWait, s.obs.State, s.reason), http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// decodeOptionalBody is decodeBody where an empty body means the zero request (Patroni's
// POST /restart and /reload take one or none).
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = httplimit.Body(w, r)
	b, err := io.ReadAll(r.Body)
	switch {
	case httplimit.TooLarge(err):
		http.Error(w, fmt.Sprintf("request body over %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
		return false
	case err != nil:
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return false
	case len(b) == 0:
		return true
	}
	if err := jsonUnmarshalStrict(b, v); err != nil {
		http.Error(w, "bad JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}
