package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// MinWatchInterval is the shortest --interval: watch(1)'s floor. Each round is a linearizable
// etcd read and a request to an agent, so faster only loads the cluster.
const MinWatchInterval = 100 * time.Millisecond

// clearScreen moves the cursor home and erases the screen (ANSI), as watch(1) and
// `patronictl list -W` redraw.
const clearScreen = "\x1b[H\x1b[2J"

// HAListWatch redraws `pigwf ha list` every Interval until its context ends, like
// `patronictl list -W`.
type HAListWatch struct {
	// View reads one round (HAClient.View under a per-round timeout). A round that fails prints
	// its error and the next round tries again: the moments a cluster fails over are when
	// etcd or an agent may not answer, and the watch must outlive them.
	View     func(ctx context.Context) (HAView, error)
	Interval time.Duration
	// Terminal clears the screen before each round; otherwise (a pipe, a file, a log) each
	// round starts with a separator line so that the rounds stay apart.
	Terminal bool
	// JSON prints each round as one line of JSON (HAListRound), for scripts.
	JSON bool
	// Now and Ticker are the wall clock and time.NewTicker unless a test sets them.
	Now    func() time.Time
	Ticker func(time.Duration) (ticks <-chan time.Time, stop func())
}

// HAListRound is one round of `pigwf ha list --watch --json`: the view, or why there is none.
type HAListRound struct {
	At    time.Time `json:"at"`
	View  *HAView   `json:"view,omitempty"`
	Error string    `json:"error,omitempty"`
}

// Run prints a round at once and then one per tick, until ctx ends (Ctrl-C): then it returns
// nil, without printing the round that the cancellation interrupted.
func (w HAListWatch) Run(ctx context.Context, out io.Writer) error {
	if w.Interval < MinWatchInterval {
		return fmt.Errorf("--interval %s is too short: use at least %s (e.g. --interval 2s)", w.Interval, MinWatchInterval)
	}
	now, ticker := w.Now, w.Ticker
	if now == nil {
		now = time.Now
	}
	if ticker == nil {
		ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	ticks, stop := ticker(w.Interval)
	defer stop()
	for {
		at := now()
		v, err := w.View(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // stopped mid-round: the error is the cancellation's
		}
		if perr := w.print(out, at, v, err); perr != nil {
			return perr // stdout is gone (a closed pipe): nobody reads further rounds
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}

// print writes one round: a header with its time, then the list or the round's error.
func (w HAListWatch) print(out io.Writer, at time.Time, v HAView, err error) error {
	if w.JSON {
		r := HAListRound{At: at.UTC()}
		if err != nil {
			r.Error = err.Error()
		} else {
			r.View = &v
		}
		return json.NewEncoder(out).Encode(r) // compact: one line per round
	}
	header := "--- " + utcSeconds(at) + " ---"
	if w.Terminal {
		header = fmt.Sprintf("%s%s, every %s (Ctrl-C to stop)", clearScreen, utcSeconds(at), w.Interval)
	}
	if _, werr := fmt.Fprintln(out, header); werr != nil {
		return werr
	}
	if err != nil {
		_, werr := fmt.Fprintf(out, "error: %v (next try in %s)\n", err, w.Interval)
		return werr
	}
	PrintHAList(out, v)
	return nil
}
