package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// The cluster's dynamic parameters (the DCS config's postgresql.parameters) are kept in force on
// this member by a writer of their own, off the HA loop: a slow disk or a PostgreSQL that is
// slow to answer pg_settings must never delay a renewal or a failover. The loop hands it the
// latest config (offer); the writer renders the file, checks the values against this server's
// pg_settings while it runs, writes the file when it differs, reloads PostgreSQL, and reads
// which settings now wait for a restart. It re-checks every paramsRecheck, which also heals a
// file a clone or a person changed.

// paramsPG is what the writer needs of PostgreSQL (pgctl.Controller).
type paramsPG interface {
	WriteDynamicParams(content string) (bool, error)
	Reload(ctx context.Context) error
	Settings(ctx context.Context) ([]pgparams.Setting, error)
	PendingRestart(ctx context.Context) (map[string]pgparams.PendingChange, time.Time, error)
}

// paramsRecheck is how often the writer re-checks the file and the pending restarts.
const paramsRecheck = 2 * time.Second

// paramsWant is a config the loop offers: the config key's revision and its parameters.
type paramsWant struct {
	rev    int64
	params map[string]string
}

// paramsState is what the writer last achieved, for the member record, /patroni and metrics.
type paramsState struct {
	// Applied is the config revision whose parameters are written and reloaded (0: none).
	Applied int64
	Pending map[string]pgparams.PendingChange
	// PendingFor is the start of the postmaster Pending was read from: a restart applies every
	// pending setting, so for a newer postmaster Pending says nothing (see forPostmaster).
	PendingFor time.Time
	// Refused says why the last offered parameters were not written ("" when they were).
	Refused string
}

type paramsWriter struct {
	pg  paramsPG
	log *slog.Logger
	// running: PostgreSQL answers queries now (set by the loop each cycle).
	running atomic.Bool

	offers chan paramsWant
	mu     sync.Mutex // one apply at a time (the writer and POST /reload)
	want   *paramsWant
	state  atomic.Pointer[paramsState]
}

func newParamsWriter(pg paramsPG, log *slog.Logger) *paramsWriter {
	w := &paramsWriter{pg: pg, log: log, offers: make(chan paramsWant, 1)}
	w.state.Store(&paramsState{})
	return w
}

// offer hands the writer the config in force; the newest offer wins. It never blocks.
func (w *paramsWriter) offer(rev int64, params map[string]string) {
	want := paramsWant{rev: rev, params: maps.Clone(params)}
	select {
	case w.offers <- want:
	default:
		select {
		case <-w.offers:
		default:
		}
		select {
		case w.offers <- want:
		default:
		}
	}
}

// current is the writer's last state.
func (w *paramsWriter) current() paramsState { return *w.state.Load() }

// forPostmaster is the state as it holds for the postmaster that started at start: the pending
// settings read from an earlier postmaster were applied when this one started (it read the files
// then), so none are pending until the writer reads them again. Without it a member restarted by
// a switchover's demotion would still look pending for up to paramsRecheck, and be restarted again.
func (s paramsState) forPostmaster(start time.Time) paramsState {
	if !s.PendingFor.Equal(start) {
		s.Pending = nil
	}
	return s
}

// run applies offers and re-checks until ctx ends.
func (w *paramsWriter) run(ctx context.Context) {
	tick := time.NewTicker(paramsRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case want := <-w.offers:
			w.mu.Lock()
			same := w.want != nil && w.want.rev == want.rev && maps.Equal(w.want.params, want.params)
			w.want = &want
			w.mu.Unlock()
			if same {
				continue
			}
		case <-tick.C:
		}
		if _, err := w.apply(ctx, false); err != nil && !errors.Is(err, errNoConfigYet) {
			w.log.Warn("dynamic parameters", "err", err)
		}
	}
}

// errNoConfigYet: the loop has not offered a config yet.
var errNoConfigYet = errors.New("no config offered yet")

// apply makes the file hold the offered parameters, reloads PostgreSQL when the file changed
// (or always, when force: POST /reload), and refreshes the pending restarts. It reports
// whether the file changed.
func (w *paramsWriter) apply(ctx context.Context, force bool) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.want == nil {
		return false, errNoConfigYet
	}
	want := *w.want
	prev := w.current()
	next := prev
	running := w.running.Load()
	if running {
		// PostgreSQL refuses to start with a value it cannot parse: never write one.
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		rows, err := w.pg.Settings(qctx)
		cancel()
		if err != nil {
			return false, fmt.Errorf("read pg_settings to check the parameters: %w", err)
		}
		cat := pgparams.NewCatalog(rows)
		var bad []error
		for _, name := range slices.Sorted(maps.Keys(want.params)) {
			if _, err := cat.Check(name, want.params[name]); err != nil {
				bad = append(bad, err)
			}
		}
		if len(bad) > 0 {
			refused := fmt.Sprintf("refusing config revision %d's parameters (the file keeps revision %d's): %v", want.rev, prev.Applied, errors.Join(bad...))
			if refused != prev.Refused {
				w.log.Error(refused)
			}
			next.Refused = refused
			w.state.Store(&next)
			return false, nil
		}
	}
	content := pgparams.Render([]string{
		"managed by the pigwf HA agent from the cluster's dynamic configuration (pigwf config show);",
		fmt.Sprintf("config revision %d. Changes here are overwritten: use pigwf config set|edit.", want.rev),
	}, want.params)
	changed, err := w.pg.WriteDynamicParams(content)
	if err != nil {
		return false, err
	}
	if changed {
		w.log.Info("wrote the dynamic parameters", "config_revision", want.rev, "parameters", len(want.params))
	}
	if running && (changed || force) {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := w.pg.Reload(rctx)
		cancel()
		if err != nil {
			return changed, err
		}
		// The postmaster re-reads the files on SIGHUP, asynchronously: give it a moment before
		// asking what waits for a restart (the periodic re-check corrects a early read).
		select {
		case <-time.After(150 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	next.Applied, next.Refused = want.rev, ""
	if running {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		pending, postmaster, err := w.pg.PendingRestart(pctx)
		cancel()
		if err != nil {
			return changed, err
		}
		next.PendingFor = postmaster
		if !maps.Equal(pending, prev.Pending) && len(pending) > 0 {
			w.log.Info("settings wait for a restart", "pending_restart", slices.Sorted(maps.Keys(pending)))
		}
		next.Pending = pending
	} else {
		next.Pending, next.PendingFor = nil, time.Time{} // a start reads the file: nothing waits
	}
	w.state.Store(&next)
	return changed, nil
}
