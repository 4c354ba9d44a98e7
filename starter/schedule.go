package starter

// Runbooks on Temporal Schedules (`pigwf schedule`): a schedule per runbook and cluster, ID
// workflows.ScheduleID, whose runs Temporal's scheduler starts with the input the CLI builds for
// a run by hand (PgBackupInput), IDs workflows.ScheduledWorkflowID plus the scheduled time, and
// pigwf's search attributes, so that `pigwf list`, the Web UI's filters and the per-cluster check
// of every later `pigwf start` see them as any run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/workflows"
)

// ScheduledRunbooks are the runbooks a schedule may run: the ones that need no person (no
// approval gate) and change nothing a later run could regret.
var ScheduledRunbooks = []string{workflows.PgBackupRunbook}

// MinScheduleInterval is the shortest --every Temporal's scheduler takes.
const MinScheduleInterval = time.Second

// scheduleCatchup: after the server was down, a run missed less than this ago is still started
// (once: the overlap policy skips the rest); older ones are left to the next scheduled time.
const scheduleCatchup = time.Hour

// Memo keys of a pigwf schedule: how its times were asked for, and by whom.
const (
	memoScheduleSpec = "pigwf-spec"
	memoCreatedBy    = "pigwf-created-by"
)

// ScheduleSpecOf reads --cron and --every: exactly one of them, checked before anything is
// created (Temporal checks again, and would say less about which flag).
func ScheduleSpecOf(cron string, every time.Duration) (client.ScheduleSpec, string, error) {
	switch {
	case cron != "" && every != 0:
		return client.ScheduleSpec{}, "", errors.New("--cron and --every both given: give one of them")
	case cron == "" && every == 0:
		return client.ScheduleSpec{}, "", errors.New("no time given: give --cron '0 2 * * *' (daily at 02:00 UTC) or --every 6h")
	case every != 0:
		if every < MinScheduleInterval || every%time.Second != 0 {
			return client.ScheduleSpec{}, "", fmt.Errorf("--every %s: give whole seconds, at least %s (Temporal's shortest interval), e.g. --every 6h", every, MinScheduleInterval)
		}
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}, "every " + every.String(), nil
	}
	if err := CheckCron(cron); err != nil {
		return client.ScheduleSpec{}, "", fmt.Errorf("--cron %q: %w", cron, err)
	}
	return client.ScheduleSpec{CronExpressions: []string{cron}}, "cron " + cron, nil
}

// cronFields are the five fields of a cron expression: name, range, and whether names count.
var cronFields = []struct {
	name     string
	lo, hi   int
	names    []string // JAN.. or SUN..: the first three letters (Temporal takes any prefix of 3+)
	nameBase int
}{
	{"minute", 0, 59, nil, 0},
	{"hour", 0, 23, nil, 0},
	{"day of month", 1, 31, nil, 0},
	{"month", 1, 12, strings.Fields("jan feb mar apr may jun jul aug sep oct nov dec"), 1},
	{"day of week", 0, 7, strings.Fields("sun mon tue wed thu fri sat"), 0},
}

// cronMacros are the predefined expressions Temporal takes.
var cronMacros = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// CheckCron checks a cron expression as Temporal's scheduler reads it: five fields (minute hour
// day-of-month month day-of-week; times in UTC unless a CRON_TZ=Zone prefix says otherwise) of
// *, values, ranges, /steps and comma lists, or a predefined @daily-like name.
func CheckCron(expr string) error {
	const form = "write five fields, minute hour day-of-month month day-of-week, e.g. '0 2 * * *' (02:00 UTC daily) or '30 1 * * sun', or @daily"
	c := strings.TrimSpace(expr)
	if tz, rest, ok := strings.Cut(c, " "); ok && (strings.HasPrefix(tz, "CRON_TZ=") || strings.HasPrefix(tz, "TZ=")) {
		_, zone, _ := strings.Cut(tz, "=")
		if _, err := time.LoadLocation(zone); err != nil || zone == "" {
			return fmt.Errorf("time zone %q is not known: give an IANA name, e.g. CRON_TZ=Europe/Berlin", zone)
		}
		c = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(c, "@every") {
		return errors.New("@every is an interval: give it as --every (e.g. --every 6h)")
	}
	if strings.HasPrefix(c, "@") {
		if !slices.Contains(cronMacros, c) {
			return fmt.Errorf("%s is not one of %s", c, strings.Join(cronMacros, ", "))
		}
		return nil
	}
	fields := strings.Fields(c)
	if len(fields) != len(cronFields) {
		return fmt.Errorf("%d fields; %s", len(fields), form)
	}
	for i, f := range fields {
		if err := checkCronField(f, i); err != nil {
			return fmt.Errorf("%s field %q: %w; %s", cronFields[i].name, f, err, form)
		}
	}
	return nil
}

func checkCronField(f string, i int) error {
	spec := cronFields[i]
	value := func(s string) (int, error) {
		if len(s) >= 3 && spec.names != nil {
			for j, n := range spec.names {
				if strings.HasPrefix(strings.ToLower(s), n) {
					return j + spec.nameBase, nil
				}
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < spec.lo || n > spec.hi {
			return 0, fmt.Errorf("%q is not a value from %d to %d", s, spec.lo, spec.hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(f, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			if n, err := strconv.Atoi(step); err != nil || n < 1 {
				return fmt.Errorf("step %q is not a positive integer", step)
			}
		}
		if rng == "*" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := value(lo)
		if err != nil {
			return err
		}
		if isRange {
			b, err := value(hi)
			if err != nil {
				return err
			}
			if b < a {
				return fmt.Errorf("range %s ends before it starts", rng)
			}
		}
	}
	return nil
}

// Schedule is a runbook on a schedule: the run it starts and when.
type Schedule struct {
	Runbook, Workflow, Cluster string
	Input                      any
	Meta                       RunMeta
	Spec                       client.ScheduleSpec
	SpecText                   string // how the times were asked for ("every 6h0m0s", "cron 0 2 * * *")
	CreatedBy                  string
	Paused                     bool
}

// Options are the Temporal schedule of s: ID workflows.ScheduleID; its runs' IDs
// workflows.ScheduledWorkflowID (Temporal appends the scheduled time), their input, summary and
// details, and the search attributes every pigwf run starts with; a run still open at the next
// time is not joined by another (overlap: skip); the schedule itself carries PgCluster and
// Runbook, which `pigwf schedule list --cluster` reads.
func (s Schedule) Options(taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   workflows.ScheduleID(s.Runbook, s.Cluster),
		Spec: s.Spec,
		Action: &client.ScheduleWorkflowAction{
			ID:                    workflows.ScheduledWorkflowID(s.Runbook, s.Cluster),
			Workflow:              s.Workflow,
			Args:                  []any{s.Input},
			TaskQueue:             taskQueue,
			StaticSummary:         s.Meta.Summary,
			StaticDetails:         s.Meta.Details,
			TypedSearchAttributes: s.Meta.searchAttributes(s.Runbook, s.Cluster),
		},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: scheduleCatchup,
		Paused:        s.Paused,
		Note:          "created by " + s.CreatedBy,
		Memo:          map[string]any{memoScheduleSpec: s.SpecText, memoCreatedBy: s.CreatedBy},
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchAttrCluster.ValueSet(s.Cluster),
			workflows.SearchAttrRunbook.ValueSet(s.Runbook)),
	}
}

// ScheduleExistsError: the cluster has this runbook's schedule already.
type ScheduleExistsError struct{ ID, Runbook, Cluster string }

func (e *ScheduleExistsError) Error() string {
	return fmt.Sprintf("schedule %s exists: delete it first (`pigwf schedule delete --cluster %s --runbook %s`), then create it anew", e.ID, e.Cluster, e.Runbook)
}

// CreateSchedule creates s.
func (c *Client) CreateSchedule(ctx context.Context, s Schedule) (string, error) {
	opts := s.Options(c.TaskQueue)
	_, err := c.C.ScheduleClient().Create(ctx, opts)
	var exists *serviceerror.AlreadyExists
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) || errors.As(err, &exists) {
		return "", &ScheduleExistsError{ID: opts.ID, Runbook: s.Runbook, Cluster: s.Cluster}
	}
	if err != nil {
		return "", fmt.Errorf("while creating schedule %s: %w", opts.ID, err)
	}
	return opts.ID, nil
}

// ScheduleNotFoundError: no such schedule in the namespace.
type ScheduleNotFoundError struct{ ID string }

func (e *ScheduleNotFoundError) Error() string {
	return fmt.Sprintf("no schedule %s in this namespace: `pigwf schedule list` shows them", e.ID)
}

// scheduleHandle is the handle of the runbook's schedule on cluster, refusing a runbook no
// schedule takes.
func (c *Client) scheduleHandle(ctx context.Context, runbook, cluster string) (client.ScheduleHandle, string, error) {
	if !slices.Contains(ScheduledRunbooks, runbook) {
		return nil, "", fmt.Errorf("--runbook %s: schedules run %s", runbook, strings.Join(ScheduledRunbooks, ", "))
	}
	id := workflows.ScheduleID(runbook, cluster)
	return c.C.ScheduleClient().GetHandle(ctx, id), id, nil
}

// notFound turns the server's not-found into a ScheduleNotFoundError.
func notFound(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &ScheduleNotFoundError{ID: id}
	}
	return err
}

// DeleteSchedule deletes the runbook's schedule on cluster; runs it started go on.
func (c *Client) DeleteSchedule(ctx context.Context, runbook, cluster string) (string, error) {
	h, id, err := c.scheduleHandle(ctx, runbook, cluster)
	if err != nil {
		return "", err
	}
	if err := h.Delete(ctx); err != nil {
		return "", fmt.Errorf("while deleting schedule %s: %w", id, notFound(id, err))
	}
	return id, nil
}

// PauseSchedule pauses (or, with pause false, resumes) the runbook's schedule on cluster.
func (c *Client) PauseSchedule(ctx context.Context, runbook, cluster string, pause bool, note string) (string, error) {
	h, id, err := c.scheduleHandle(ctx, runbook, cluster)
	if err != nil {
		return "", err
	}
	if pause {
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
	} else {
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	}
	if err != nil {
		return "", fmt.Errorf("while changing schedule %s: %w", id, notFound(id, err))
	}
	return id, nil
}

// ScheduleRow is a schedule as `pigwf schedule list` shows it.
type ScheduleRow struct {
	ID      string      `json:"id"`
	Runbook string      `json:"runbook"`
	Cluster string      `json:"cluster"`
	When    string      `json:"when"` // how its times were asked for
	Paused  bool        `json:"paused"`
	Note    string      `json:"note,omitempty"`
	Next    []time.Time `json:"next,omitempty"`
	// The last run it started, and how that ended (running, completed, failed, ...).
	LastRun     string    `json:"last_run,omitempty"`
	LastRunID   string    `json:"last_run_id,omitempty"`
	LastStarted time.Time `json:"last_started,omitzero"`
	LastResult  string    `json:"last_result,omitempty"`
}

// ListSchedules lists pigwf's schedules (those with a Runbook search attribute), those of
// cluster only when it is not "", each with its next times and its last run's result.
func (c *Client) ListSchedules(ctx context.Context, cluster string) ([]ScheduleRow, error) {
	it, err := c.C.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("while listing schedules: %w", err)
	}
	var rows []ScheduleRow
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("while listing schedules: %w", err)
		}
		r := ScheduleRow{ID: e.ID, Runbook: keyword(e.SearchAttributes, workflows.SearchAttrRunbook.GetName()),
			Cluster: keyword(e.SearchAttributes, workflows.SearchAttrCluster.GetName()), Paused: e.Paused, Note: e.Note, When: memoText(e.Memo, memoScheduleSpec)}
		if r.Runbook == "" || (cluster != "" && r.Cluster != cluster) {
			continue
		}
		r.Next = e.NextActionTimes[:min(3, len(e.NextActionTimes))]
		if n := len(e.RecentActions); n > 0 && e.RecentActions[n-1].StartWorkflowResult != nil {
			last := e.RecentActions[n-1]
			r.LastRun, r.LastRunID, r.LastStarted = last.StartWorkflowResult.WorkflowID, last.StartWorkflowResult.FirstExecutionRunID, last.ActualTime
			r.LastResult = c.runResult(ctx, r.LastRun, r.LastRunID)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ScheduleRow) int { return strings.Compare(a.ID, b.ID) })
	return rows, nil
}

// runResult is how a run ended (stateName), with its failure's message when it failed.
func (c *Client) runResult(ctx context.Context, id, runID string) string {
	st, err := c.Describe(ctx, id, runID)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if st.Failure != "" {
		return st.State + ": " + st.Failure
	}
	return st.State
}

// memoText is a memo field written as a string, "" when absent or not a string.
func memoText(m *commonpb.Memo, key string) string {
	var v string
	if p := m.GetFields()[key]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}

// PrintSchedules writes the schedules as a table, with each one's last run below it.
func PrintSchedules(w io.Writer, rows []ScheduleRow) {
	header := []string{"Schedule", "When", "Paused", "Next runs (UTC)", "Last run"}
	var cells [][]string
	for _, r := range rows {
		var next []string
		for _, t := range r.Next {
			next = append(next, t.UTC().Format(time.DateTime))
		}
		last := "none yet"
		if r.LastRun != "" {
			last = r.LastStarted.UTC().Format(time.DateTime) + " " + firstLine(r.LastResult)
		}
		cells = append(cells, []string{r.ID, r.When, strconv.FormatBool(r.Paused), strings.Join(next, ", "), last})
	}
	printBoxTable(w, " Schedules ", header, cells, nil)
	for _, r := range rows {
		if r.LastRun != "" {
			fmt.Fprintf(w, " %s: last run %s: %s\n", r.ID, r.LastRun, r.LastResult)
		}
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, " No schedules.")
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, ":")
	return s
}
