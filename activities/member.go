package activities

// The member steps of the day-2 runbooks (pg-reload, pg-restart, custom runbooks): each talks to
// one member's HA agent over its API (haagent.RestartRequest, haagent.ReloadResponse), never to
// PostgreSQL behind the agent's back (the agent owns the postmaster: a pg_ctl restart would look
// like a crash to it). This file holds the two that change a member (restart, reload) and the
// one way they call an agent's mutating endpoint; clusterstate.go the two that only look.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// Step names of the member steps, as their StepResults report them.
const (
	StepMemberRestart = "restart"
	StepMemberReload  = "reload"
	StepMemberWait    = "wait"
)

// Error types of the member steps: a workflow tells them apart by type, never by wording.
const (
	// ErrLeaderRestartRefused: the member leads the cluster, and its agent never restarts the
	// leader in place (it answered 409): switch over first, then restart it as a replica.
	ErrLeaderRestartRefused = "LeaderRestartRefused"
	// ErrMemberWaitTimeout: WaitMembers' condition did not hold on every target in time.
	ErrMemberWaitTimeout = "MemberWaitTimeout"
	// ErrAgentRefused: an agent refused the worker's request in a way a retry cannot change
	// (not authenticated, an agent without the endpoint, a request it cannot take).
	ErrAgentRefused = "AgentRefused"
)

// MemberRestartInput restarts one member's PostgreSQL through its agent (POST /restart).
type MemberRestartInput struct {
	DCS    DCSInput  `json:"dcs"`
	Member MemberAPI `json:"member"`
	// Pending: restart only when a setting waits for a restart.
	Pending bool `json:"pending,omitempty"`
	// StartedBefore: restart only a postmaster started before this (the workflow's time when
	// it first scheduled the step), so a retry never restarts the member twice.
	StartedBefore time.Time `json:"started_before"`
}

// restartAnswerWithin bounds one POST /restart: the agent answers once PostgreSQL runs again,
// after a shutdown checkpoint and, at worst, crash recovery. The step's own timeout is the
// tighter bound in practice; this only keeps a lost answer from holding the activity forever.
const restartAnswerWithin = 30 * time.Minute

// MemberRestart restarts a replica's PostgreSQL through its agent, which answers once
// PostgreSQL runs again; WaitMembers then waits for it to stream from the leader (a separate
// step, so a slow catch-up never retries the restart). Unchanged when the conditions say no
// restart is due: nothing pending (Pending), or a postmaster that started after StartedBefore
// (a retry of a step that already restarted it; or a switchover's demotion did). The leader is
// refused (non-retryable, ErrLeaderRestartRefused): switch over first.
func (a *Activities) MemberRestart(ctx context.Context, in MemberRestartInput) (StepResult, error) {
	res := StepResult{Node: in.Member.Name, Step: StepMemberRestart}
	if in.StartedBefore.IsZero() {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"restart of %s: started_before is not set; give the time the run first scheduled this step, so that a retried step never restarts the member twice", in.Member.Name),
			ErrConfig, nil)
	}
	client, err := a.agentClient(restartAnswerWithin)
	if err != nil {
		return res, err
	}
	stop := heartbeat(ctx, Node{Addr: in.Member.Name}, StepMemberRestart)
	var out haagent.RestartResponse
	err = postAgent(ctx, client, in.Member, "/restart", haagent.RestartRequest{RestartPending: in.Pending, StartedBefore: in.StartedBefore}, &out)
	stop()
	var refused *agentStatusError
	if errors.As(err, &refused) && refused.Status == http.StatusConflict {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s leads the cluster, and its agent never restarts the leader in place (%s): switch over first, then restart it as a replica (pigwf start pg-restart does both)",
			in.Member.Name, refused.Body), ErrLeaderRestartRefused, nil)
	}
	if err != nil {
		return res, agentFailure("restart", in.Member, err)
	}
	res.Facts = map[string]string{"postmaster_start": out.PostmasterStart.UTC().Format(time.RFC3339Nano)}
	started := ""
	if !out.PostmasterStart.IsZero() {
		started = " (postmaster started " + out.PostmasterStart.UTC().Format(time.RFC3339) + ")"
	}
	if out.Restarted {
		res.Changed = true
		res.Changes = []string{"restarted PostgreSQL: " + out.Reason + started}
	} else {
		res.Notes = []string{"not restarted: " + out.Reason + started}
	}
	a.logger().Info("step done", "member", in.Member.Name, "step", StepMemberRestart, "changed", res.Changed, "summary", res.Summary())
	return res, nil
}

// MemberReloadInput reloads one member's configuration through its agent (POST /reload).
type MemberReloadInput struct {
	Member MemberAPI `json:"member"`
}

// reloadAnswerWithin bounds one POST /reload: a file write and a SIGHUP.
const reloadAnswerWithin = time.Minute

// MemberReload asks the member's agent to write the cluster's dynamic parameters and reload
// PostgreSQL; the result notes the settings that now wait for a restart (Facts
// "pending_restart": comma-separated names, "" when none).
func (a *Activities) MemberReload(ctx context.Context, in MemberReloadInput) (StepResult, error) {
	res := StepResult{Node: in.Member.Name, Step: StepMemberReload}
	client, err := a.agentClient(reloadAnswerWithin)
	if err != nil {
		return res, err
	}
	var out haagent.ReloadResponse
	if err := postAgent(ctx, client, in.Member, "/reload", nil, &out); err != nil {
		return res, agentFailure("reload", in.Member, err)
	}
	if out.Changed {
		res.Changed = true
		res.Changes = []string{fmt.Sprintf("wrote the parameters of config revision %d and reloaded PostgreSQL", out.ConfigRevision)}
	} else {
		res.Notes = []string{fmt.Sprintf("the parameters of config revision %d were already in force", out.ConfigRevision)}
	}
	names := make([]string, 0, len(out.PendingRestart))
	for name := range out.PendingRestart {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := out.PendingRestart[name]
		res.Notes = append(res.Notes, fmt.Sprintf("%s waits for a restart (%s in force, %s configured)", name, c.OldValue, c.NewValue))
	}
	res.Facts = map[string]string{"pending_restart": strings.Join(names, ","), "config_revision": strconv.FormatInt(out.ConfigRevision, 10)}
	a.logger().Info("step done", "member", in.Member.Name, "step", StepMemberReload, "changed", res.Changed, "summary", res.Summary())
	return res, nil
}

// agentStatusError is an agent's answer other than 200 (and other than busy) to a mutating
// request: the status tells the caller what happened, the body is the agent's own words.
type agentStatusError struct {
	Member string
	Path   string
	Status int
	Body   string
}

func (e *agentStatusError) Error() string {
	return fmt.Sprintf("%s's agent answered POST %s with %d %s: %s", e.Member, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// agentBusyWait is how long postAgent waits before asking a busy agent again.
var agentBusyWait = 2 * time.Second

// maxAgentAnswer caps what is read of an agent's answer.
const maxAgentAnswer = 1 << 20

// postAgent POSTs body as JSON (nil: an empty body) to path on the member's agent and decodes a
// 200 answer into out. An agent busy with another action or not ready (503) is asked again
// every agentBusyWait, heartbeating, until it answers otherwise or ctx ends: it says so exactly
// when a retry is what is needed. Any other status is an *agentStatusError.
func postAgent(ctx context.Context, client *http.Client, m MemberAPI, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	url := strings.TrimRight(m.APIURL, "/") + path
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s's agent URL %q: %v; fix the member's address in the inventory", m.Name, m.APIURL, err), ErrConfig, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("while calling POST %s on %s's agent: %w", path, m.Name, err)
		}
		text, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAgentAnswer))
		resp.Body.Close()
		if rerr != nil {
			return fmt.Errorf("while reading %s's answer to POST %s: %w", m.Name, path, rerr)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if err := json.Unmarshal(text, out); err != nil {
				return fmt.Errorf("%s's agent answered POST %s with what is not its answer (%v): %.200q", m.Name, path, err, text)
			}
			return nil
		case http.StatusServiceUnavailable:
			why := fmt.Sprintf("%s's agent is busy or not ready (%s)", m.Name, strings.TrimSpace(string(text)))
			// Give up (retryably) while the attempt can still say why, rather than be cut by
			// its timeout with no word of the agent's.
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < agentBusyWait+time.Second {
				return errors.New(why)
			}
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, why+"; asking again")
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", why, ctx.Err())
			case <-time.After(agentBusyWait):
			}
		default:
			return &agentStatusError{Member: m.Name, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(text))}
		}
	}
}

// agentFailure turns postAgent's error into the step's: a refusal a retry cannot change is
// non-retryable and names the fix; anything else (no answer, a server error) is retried.
func agentFailure(what string, m MemberAPI, err error) error {
	var st *agentStatusError
	if !errors.As(err, &st) {
		return err
	}
	fix := ""
	switch st.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		fix = "the worker's client certificate must be of the deployment CA the node trusts ($PIGWF_HOME/ca), and the worker's address allowed by api.allowlist in /etc/pigwf/ha-agent.yml"
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		fix = "this pg-ha-agent predates POST /" + what + ": upgrade the agent on the member"
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		fix = "the agent cannot take this request; its log (/pg/log/ha-agent/ha-agent.log) says why"
	default:
		return err
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s of %s refused: %v; %s", what, m.Name, st, fix), ErrAgentRefused, nil)
}
