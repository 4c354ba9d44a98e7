package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/dsl"
)

// each runs a loop's steps for each member it selects, in the cluster's state read once at the
// loop's start: one member after the other (the first that fails stops the loop, the members
// after it are not touched), or all at once on workflow coroutines (every member finishes, then
// the failures are reported together). The loop changed something when any member's steps did.
func (r *runbookRun) each(ctx workflow.Context, s dsl.Step, sc *scope, row step) (bool, error) {
	r.track.set(row, StateRunning, "reading the cluster's members and leader")
	st, err := r.readState(ctx, s.Name)
	var members []string
	if err == nil {
		members, err = r.selectKnown(s.Each.Of, st)
	} else {
		err = fmt.Errorf("the cluster's state: %s", failureMessage(err))
	}
	if err != nil {
		r.end(row, s, StateFailed, err.Error())
		return false, r.stop(s, "", err)
	}
	how := "one at a time"
	if s.Each.Parallel {
		how = "all at once"
	}
	r.track.set(row, StateRunning, fmt.Sprintf("%s, %s (leader %s)", strings.Join(members, ", "), how, st.Leader))
	prev := row
	for _, m := range members {
		for _, n := range s.Each.Steps {
			nr := r.row(m, n)
			r.track.add(prev, nr)
			prev = nr
		}
	}
	scopes := make([]*scope, len(members))
	errs := make([]error, len(members))
	iterate := func(ctx workflow.Context, i int) {
		scopes[i] = newScope(sc, members[i], &st)
		errs[i] = r.steps(ctx, s.Each.Steps, scopes[i])
	}
	if s.Each.Parallel {
		if err := parallel(ctx, len(members), iterate); err != nil {
			return false, err
		}
	} else {
		for i := range members {
			iterate(ctx, i)
			if errs[i] != nil {
				for _, m := range members[i+1:] {
					r.skip(s.Each.Steps, m, "not run: the loop stopped at "+members[i])
				}
				break
			}
		}
	}
	var changedOn, failedOn, msgs []string
	var first *stopped
	for i, m := range members {
		if scopes[i] == nil {
			continue
		}
		if scopes[i].any {
			changedOn = append(changedOn, m)
		}
		if errs[i] == nil {
			continue
		}
		var st *stopped
		if !errors.As(errs[i], &st) { // cancelled
			return false, errs[i]
		}
		if first == nil {
			first = st
		}
		failedOn, msgs = append(failedOn, m), append(msgs, st.msg)
	}
	changed := len(changedOn) > 0
	if first != nil {
		r.end(row, s, StateFailed, "failed on "+strings.Join(failedOn, ", "))
		return changed, &stopped{msg: strings.Join(msgs, "; "), errType: first.errType, outcome: first.outcome}
	}
	state := map[bool]string{true: StateChanged, false: StateUnchanged}[changed]
	r.end(row, s, state, changedWhere(changedOn, members))
	return changed, nil
}
