package starter

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/pigwf/pigwf/workflows"
)

// ProgressPrinter prints each step's state when it changes, like a playbook's task lines.
type ProgressPrinter struct {
	W    io.Writer
	seen map[string]string
}

// Print writes the lines that changed since the last call.
func (pp *ProgressPrinter) Print(p workflows.Progress) {
	if pp.seen == nil {
		pp.seen = map[string]string{}
	}
	for _, s := range p.Steps {
		key := s.Node + "|" + s.Step
		val := s.State + "|" + s.Detail
		if pp.seen[key] == val || s.State == workflows.StatePending {
			continue
		}
		pp.seen[key] = val
		fmt.Fprintln(pp.W, StepLine(s))
	}
}

// StepLine renders one step: "[changed]   pg-test-1 (10.213.0.11)  identity: hostname set ...".
func StepLine(s workflows.StepState) string {
	node := s.Node
	if node == "" {
		node = "control"
	}
	line := fmt.Sprintf("%-11s %-26s %-14s", "["+s.State+"]", node, s.Step)
	if s.Detail != "" {
		line += " " + s.Detail
	}
	return strings.TrimRight(line, " ")
}

// Recap summarises per node, like Ansible's PLAY RECAP.
func Recap(w io.Writer, p workflows.Progress) {
	type counts struct{ changed, unchanged, failed, skipped, pending int }
	per := map[string]*counts{}
	for _, s := range p.Steps {
		node := s.Node
		if node == "" {
			node = "control"
		}
		c := per[node]
		if c == nil {
			c = &counts{}
			per[node] = c
		}
		switch s.State {
		case workflows.StateChanged:
			c.changed++
		case workflows.StateUnchanged:
			c.unchanged++
		case workflows.StateFailed:
			c.failed++
		case workflows.StateSkipped:
			c.skipped++
		default:
			c.pending++
		}
	}
	nodes := make([]string, 0, len(per))
	for n := range per {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	fmt.Fprintf(w, "RECAP %s %s: %s\n", p.Runbook, p.Cluster, p.Phase)
	for _, n := range nodes {
		c := per[n]
		fmt.Fprintf(w, "  %-26s changed=%d unchanged=%d failed=%d skipped=%d", n, c.changed, c.unchanged, c.failed, c.skipped)
		if c.pending > 0 {
			fmt.Fprintf(w, " pending=%d", c.pending)
		}
		fmt.Fprintln(w)
	}
}

// PrintStatus renders `pigwf status`.
func PrintStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "%s  %s  %s\n", st.WorkflowID, st.Type, strings.ToUpper(st.State))
	fmt.Fprintf(w, "  run %s, started %s", st.RunID, st.Started.Local().Format(time.RFC3339))
	if !st.Closed.IsZero() {
		fmt.Fprintf(w, ", closed %s (%s)", st.Closed.Local().Format(time.RFC3339), st.Closed.Sub(st.Started).Round(10*time.Millisecond))
	}
	fmt.Fprintln(w)
	if st.WebURL != "" {
		fmt.Fprintf(w, "  %s\n", st.WebURL)
	}
	if st.Progress != nil {
		for _, s := range st.Progress.Steps {
			fmt.Fprintln(w, "  "+StepLine(s))
		}
		Recap(w, *st.Progress)
	} else {
		fmt.Fprintln(w, "  (step progress unavailable: no worker answered the query; start one with `pigwf worker`)")
	}
	if st.Failure != "" {
		fmt.Fprintf(w, "FAILED: %s\n", st.Failure)
	}
}

// PrintPending renders a run waiting for approval: what it will do, who may approve and by when,
// how to approve (the command line and the chat command), and its page. `pigwf pending` prints
// it for every waiting run, `pigwf start --wait` when its run starts to wait.
func PrintPending(w io.Writer, p Pending, now time.Time) {
	fmt.Fprintf(w, "%s (%s) is waiting for approval\n", p.WorkflowID, p.Runbook)
	fmt.Fprintf(w, "  plan:      %s\n", p.State.Plan)
	if pol := p.State.Policy; pol != nil {
		fmt.Fprintf(w, "  approvers: %s\n", pol.Describe())
		requester := p.State.RequestedBy + " (signed request)"
		if p.State.RequestedBy == "" {
			requester = "not proven (no signed request)"
		}
		fmt.Fprintf(w, "  requester: %s\n", requester)
		for _, v := range p.State.Votes {
			fmt.Fprintf(w, "  counted:   %s by %s (%s)\n", v.Decision, v.Approver, v.Via)
		}
	} else {
		fmt.Fprintf(w, "  approvers: %s\n", strings.Join(p.State.Approvers, ", "))
	}
	fmt.Fprintf(w, "  deadline:  %s (%s left)\n", p.State.Deadline.Local().Format(time.RFC3339), p.State.Deadline.Sub(now).Round(time.Second))
	for _, i := range p.State.Ignored {
		fmt.Fprintf(w, "  ignored:   %s by %s: %s\n", i.Decision, i.Approver, i.Reason)
	}
	fmt.Fprintf(w, "  approve:   %s   (reject: add --reject)\n", workflows.ApproveCommand(p.WorkflowID))
	fmt.Fprintf(w, "  in chat:   %s\n", workflows.ChatApproveCommand(p.WorkflowID))
	if p.WebURL != "" {
		fmt.Fprintf(w, "  web:       %s\n", p.WebURL)
	}
}
