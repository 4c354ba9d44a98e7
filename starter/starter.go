// Package starter holds typed client helpers (start, wait, status) used by the CLI and, later,
// the ChatOps bridge. It turns inventory entries into workflow inputs and enforces one runbook at
// a time per cluster.
package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/internal/webui"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/workflows"
)

// Client is a Temporal client with pigwf's typed helpers.
type Client struct {
	C         client.Client
	TaskQueue string
	Namespace string // the namespace it is connected to
	WebUI     string // the Temporal Web UI's base URL, for links to runs; "" gives no links
}

// Dial connects to Temporal through conn; the SDK's own logging goes to log (quiet by default in
// the CLI). A server that refuses the TLS handshake (no client certificate, one from another
// CA) fails here, since the SDK checks the server's health while dialing.
func Dial(ctx context.Context, conn Connection, log *slog.Logger, dopts ...DialOption) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := conn.ClientOptions(log)
	if err != nil {
		return nil, err
	}
	for _, o := range dopts {
		o(&opts)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("while connecting to Temporal at %s (%s): %w (is it running? `pigwf dev` starts one; a server with mutual TLS needs --%s, --%s and --%s, or pigwf's files from `pigwf dev`)",
			conn.Address, conn.describe(), err, SettingTLSCert.Flag, SettingTLSKey.Flag, SettingTLSCA.Flag)
	}
	return &Client{C: c, TaskQueue: workflows.TaskQueue, Namespace: conn.Namespace}, nil
}

// DialOption sets what a client has besides its connection.
type DialOption func(*client.Options)

// WithMetrics gives the client (and the workers made from it) a metrics handler: the SDK's
// metrics and those workflow and activity code emit go to h.
func WithMetrics(h client.MetricsHandler) DialOption {
	return func(o *client.Options) { o.MetricsHandler = h }
}

// Close closes the connection.
func (c *Client) Close() { c.C.Close() }

// WorkflowID is the ID scheme "<runbook>/<cluster>" (workflows.WorkflowID, which child runs use
// too).
func WorkflowID(runbook, cluster string) string { return workflows.WorkflowID(runbook, cluster) }

// RunURL is a run's page in the client's Web UI, "" when it has none configured: every link to a
// run that the starter hands out (status, pending approvals, decisions) is made here.
func (c *Client) RunURL(workflowID, runID string) string {
	if c.WebUI == "" {
		return ""
	}
	return webui.RunURL(c.WebUI, c.Namespace, workflowID, runID)
}

// ListURL is the Web UI's list of the runs a visibility query finds, "" when the client has no Web
// UI configured.
func (c *Client) ListURL(query string) string {
	if c.WebUI == "" {
		return ""
	}
	return webui.ListURL(c.WebUI, c.Namespace, query)
}

// NodeInitInput resolves a NodeInit input from the inventory; nodes selects a subset.
func NodeInitInput(cluster *inventory.Cluster, nodes []string) (workflows.NodeInitInput, error) {
	hosts, err := cluster.SelectHosts(nodes)
	if err != nil {
		return workflows.NodeInitInput{}, err
	}
	name := cluster.Name
	if name == "" {
		name = cluster.Group
	}
	in := workflows.NodeInitInput{Cluster: name}
	for _, h := range cluster.Hosts {
		if h.Node.Nodename != "" {
			in.Hosts = append(in.Hosts, activities.HostEntry{Addr: h.Addr, Name: h.Node.Nodename})
		}
	}
	for _, h := range hosts {
		in.Nodes = append(in.Nodes, workflows.NodeSpec{
			Node:     NodeOf(h),
			Packages: h.Node.Packages,
			Sysctl:   h.Node.Sysctl,
			Limits:   h.Node.Limits,
		})
	}
	return in, nil
}

// NodeOf is how activities reach an inventory host.
func NodeOf(h inventory.Host) activities.Node {
	return activities.Node{
		Addr: h.Addr, Name: h.Node.Nodename,
		SSHHost: h.Node.SSHHost, SSHPort: h.Node.SSHPort, SSHUser: h.Node.SSHUser,
		SSHKeyFile: h.Node.SSHKeyFile, KnownHosts: h.Node.KnownHosts,
	}
}

// BusyError says a cluster already has a runbook running.
type BusyError struct {
	Cluster, WorkflowID, RunID, Runbook string
	Started                             time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("cluster %s is busy: %s is running (run %s, started %s); one runbook at a time per cluster: watch it with `pigwf status %s` or wait for it to end",
		e.Cluster, e.WorkflowID, e.RunID, e.Started.Local().Format(time.RFC3339), e.WorkflowID)
}

// Start starts a runbook on a cluster, refusing when any pigwf runbook is already running there.
// The run carries meta from its start: its static summary and details in the Web UI, and the
// search attributes the Web UI's list filters and shows (cluster, runbook, RunState = running,
// RunSummary).
func (c *Client) Start(ctx context.Context, runbook, workflowName, cluster string, input any, meta RunMeta) (client.WorkflowRun, error) {
	if busy, err := c.runningOn(ctx, cluster); err != nil {
		return nil, err
	} else if busy != nil {
		return nil, busy
	}
	id := WorkflowID(runbook, cluster)
	run, err := c.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                c.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            meta.Summary,
		StaticDetails:                            meta.Details,
		TypedSearchAttributes:                    meta.searchAttributes(runbook, cluster),
	}, workflowName, input)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		b := &BusyError{Cluster: cluster, WorkflowID: id, RunID: already.RunId, Runbook: runbook}
		if d, derr := c.C.DescribeWorkflowExecution(ctx, id, ""); derr == nil {
			b.Started = d.WorkflowExecutionInfo.GetStartTime().AsTime()
		}
		return nil, b
	}
	if err != nil {
		return nil, fmt.Errorf("while starting %s: %w", id, err)
	}
	return run, nil
}

// searchAttributes are the ones a run starts with: its cluster and runbook, RunState running
// (the run keeps it up to date from then on) and, when there is one, RunSummary.
func (m RunMeta) searchAttributes(runbook, cluster string) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{
		workflows.SearchAttrCluster.ValueSet(cluster), workflows.SearchAttrRunbook.ValueSet(runbook),
		workflows.SearchAttrState.ValueSet(workflows.PhaseRunning),
	}
	if m.Summary != "" {
		updates = append(updates, workflows.SummaryAttr(m.Summary))
	}
	return temporal.NewSearchAttributes(updates...)
}

// runningOn finds an open pigwf run on the cluster through visibility (any runbook).
func (c *Client) runningOn(ctx context.Context, cluster string) (*BusyError, error) {
	runs, err := c.OpenRunsOn(ctx, cluster)
	if err != nil {
		return nil, fmt.Errorf("while checking for runbooks running on %s: %w", cluster, err)
	}
	if len(runs) == 0 {
		return nil, nil
	}
	r := runs[0]
	return &BusyError{Cluster: cluster, WorkflowID: r.WorkflowID, RunID: r.RunID, Started: r.Started}, nil
}

// OpenRunsOn lists the pigwf runs open on cluster (by its PgCluster search attribute, through
// Temporal's visibility): the start's early per-cluster check here (the run's lock is the atomic
// one), and on the worker the check runs from before the lock made themselves
// (activities.ClusterExclusive).
func (c *Client) OpenRunsOn(ctx context.Context, cluster string) ([]activities.ClusterRun, error) {
	resp, err := c.C.ListWorkflow(ctx, workflowListRequest{cluster: cluster}.proto())
	if err != nil {
		return nil, err
	}
	out := make([]activities.ClusterRun, 0, len(resp.Executions))
	for _, e := range resp.Executions {
		out = append(out, activities.ClusterRun{WorkflowID: e.Execution.WorkflowId, RunID: e.Execution.RunId, Started: e.StartTime.AsTime()})
	}
	return out, nil
}

// Progress asks a run for its live progress (needs a worker to answer).
func (c *Client) Progress(ctx context.Context, id, runID string) (workflows.Progress, error) {
	var p workflows.Progress
	val, err := c.C.QueryWorkflow(ctx, id, runID, workflows.ProgressQuery)
	if err != nil {
		return p, err
	}
	return p, val.Get(&p)
}

// Status is what `pigwf status` shows.
type Status struct {
	WorkflowID string              `json:"workflow_id"`
	RunID      string              `json:"run_id"`
	Type       string              `json:"type"`
	State      string              `json:"state"`
	Started    time.Time           `json:"started"`
	Closed     time.Time           `json:"closed,omitzero"`
	Progress   *workflows.Progress `json:"progress,omitempty"`
	Failure    string              `json:"failure,omitempty"`
	WebURL     string              `json:"web_url,omitempty"`
}

// RunNotFoundError says the namespace has no run with this workflow ID.
type RunNotFoundError struct{ WorkflowID string }

func (e *RunNotFoundError) Error() string {
	return fmt.Sprintf("no run %s in this namespace: `pigwf list` shows recent runs", e.WorkflowID)
}

// Describe gathers a run's state and, when a worker answers, its step progress.
func (c *Client) Describe(ctx context.Context, id, runID string) (Status, error) {
	d, err := c.C.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return Status{}, &RunNotFoundError{WorkflowID: id}
		}
		return Status{}, fmt.Errorf("while describing %s: %w", id, err)
	}
	info := d.WorkflowExecutionInfo
	st := Status{
		WorkflowID: id, RunID: info.Execution.RunId, Type: info.Type.Name,
		State:   stateName(info.Status),
		Started: info.GetStartTime().AsTime(),
		WebURL:  c.RunURL(id, info.Execution.RunId),
	}
	if info.CloseTime != nil {
		st.Closed = info.CloseTime.AsTime()
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if p, err := c.Progress(qctx, id, st.RunID); err == nil {
		st.Progress = &p
	}
	if info.Status == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
		if err := c.C.GetWorkflow(ctx, id, st.RunID).Get(ctx, nil); err != nil {
			st.Failure = rootMessage(err)
		}
	}
	return st, nil
}

func stateName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	default:
		return s.String()
	}
}

// rootMessage strips Temporal's wrapping ("workflow execution error (type: ...)") to the
// runbook's own message.
func rootMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// RunFailedError is a run's failure as Wait returns it: the message is the workflow's own (what
// people read, without Temporal's wrapping), and errors.As/Is still reach the failure's types
// (its temporal.ApplicationError with the runbook's error type) through Unwrap.
type RunFailedError struct {
	Message string
	Err     error
}

func (e *RunFailedError) Error() string { return e.Message }
func (e *RunFailedError) Unwrap() error { return e.Err }

// Wait follows a run until it closes, calling onProgress whenever its progress changes, and
// decodes its result into result. A failed run returns a *RunFailedError (result may still be
// filled from the failure's details).
func (c *Client) Wait(ctx context.Context, id, runID string, result any, onProgress func(workflows.Progress)) error {
	done := make(chan error, 1)
	go func() { done <- c.C.GetWorkflow(ctx, id, runID).Get(ctx, result) }()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	var last string
	poll := func() {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if p, err := c.Progress(qctx, id, runID); err == nil && onProgress != nil {
			if key := progressKey(p); key != last {
				last = key
				onProgress(p)
			}
		}
	}
	for {
		select {
		case err := <-done:
			poll()
			if err != nil {
				var app *temporal.ApplicationError
				if errors.As(err, &app) && app.HasDetails() && result != nil {
					_ = app.Details(result)
				}
				return &RunFailedError{Message: rootMessage(err), Err: err}
			}
			return nil
		case <-tick.C:
			poll()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func progressKey(p workflows.Progress) string {
	s := p.Phase
	for _, st := range p.Steps {
		s += "|" + st.Node + st.Step + st.State + st.Detail
	}
	return s
}

// Recent lists recent pigwf runs, newest first.
func (c *Client) Recent(ctx context.Context, cluster string, limit int) ([]Status, error) {
	req := workflowListRequest{cluster: cluster, all: true, limit: limit}.proto()
	resp, err := c.C.ListWorkflow(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("while listing runs: %w", err)
	}
	var out []Status
	for _, e := range resp.Executions {
		s := Status{WorkflowID: e.Execution.WorkflowId, RunID: e.Execution.RunId, Type: e.Type.Name, State: stateName(e.Status), Started: e.StartTime.AsTime(),
			WebURL: c.RunURL(e.Execution.WorkflowId, e.Execution.RunId)}
		if e.CloseTime != nil {
			s.Closed = e.CloseTime.AsTime()
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}
