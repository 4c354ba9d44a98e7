package agent

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// fakeParamsPG records what the writer does to PostgreSQL.
type fakeParamsPG struct {
	mu       sync.Mutex
	file     string
	writes   int
	reloads  int
	settings []pgparams.Setting
	pending  map[string]pgparams.PendingChange
	// postmaster is the start of the running postmaster the pending settings are read from.
	postmaster time.Time
}

func (f *fakeParamsPG) WriteDynamicParams(content string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if content == f.file {
		return false, nil
	}
	f.file, f.writes = content, f.writes+1
	return true, nil
}
func (f *fakeParamsPG) Reload(context.Context) error {
	f.mu.Lock()
	f.reloads++
	f.mu.Unlock()
	return nil
}
func (f *fakeParamsPG) Settings(context.Context) ([]pgparams.Setting, error) {
	return f.settings, nil
}
func (f *fakeParamsPG) PendingRestart(context.Context) (map[string]pgparams.PendingChange, time.Time, error) {
	return maps.Clone(f.pending), f.postmaster, nil
}

func TestParamsWriter(t *testing.T) {
	ctx := context.Background()
	pg := &fakeParamsPG{postmaster: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), settings: []pgparams.Setting{
		{Name: "work_mem", Unit: "kB", Context: "user", Vartype: "integer", MinVal: "64", MaxVal: "2147483647"},
		{Name: "shared_buffers", Unit: "8kB", Context: "postmaster", Vartype: "integer", MinVal: "16", MaxVal: "1073741823"},
	}}
	w := newParamsWriter(pg, slog.New(slog.DiscardHandler))

	// 1. Nothing offered yet: nothing written.
	if _, err := w.apply(ctx, false); err != errNoConfigYet || pg.writes != 0 {
		t.Fatalf("1. apply before any offer: %v, %d writes", err, pg.writes)
	}
	// 2. Running: a valid config is written, reloaded, and its pending restarts read.
	w.running.Store(true)
	w.want = &paramsWant{rev: 7, params: map[string]string{"work_mem": "8MB", "shared_buffers": "256MB"}}
	pg.pending = map[string]pgparams.PendingChange{"shared_buffers": {OldValue: "128MB", NewValue: "256MB"}}
	if changed, err := w.apply(ctx, false); err != nil || !changed || pg.reloads != 1 {
		t.Fatalf("2. apply: changed %v err %v reloads %d", changed, err, pg.reloads)
	}
	if st := w.current(); st.Applied != 7 || st.Pending["shared_buffers"].NewValue != "256MB" || st.Refused != "" {
		t.Fatalf("2. state %+v", st)
	}
	// 2b. The pending settings hold for the postmaster they were read from, not a newer one
	// (a restart applied them).
	if st := w.current().forPostmaster(pg.postmaster); len(st.Pending) != 1 {
		t.Fatalf("2b. for the same postmaster: %+v", st)
	}
	if st := w.current().forPostmaster(pg.postmaster.Add(time.Second)); st.Pending != nil || st.Applied != 7 {
		t.Fatalf("2b. for a newer postmaster: %+v", st)
	}
	if !strings.Contains(pg.file, "shared_buffers = '256MB'\n") || !strings.Contains(pg.file, "config revision 7") {
		t.Fatalf("2. file:\n%s", pg.file)
	}
	// 3. The same config again: unchanged, no reload; force (POST /reload) reloads.
	if changed, _ := w.apply(ctx, false); changed || pg.reloads != 1 {
		t.Fatalf("3. a second apply changed %v, reloads %d", changed, pg.reloads)
	}
	if changed, _ := w.apply(ctx, true); changed || pg.reloads != 2 {
		t.Fatalf("3. a forced apply: changed %v, reloads %d", changed, pg.reloads)
	}
	// 4. A value PostgreSQL would refuse: the file keeps revision 7's, the state says why.
	w.want = &paramsWant{rev: 9, params: map[string]string{"work_mem": "8 parsecs"}}
	before := pg.file
	if changed, err := w.apply(ctx, false); err != nil || changed || pg.file != before {
		t.Fatalf("4. a refused value: changed %v err %v", changed, err)
	}
	if st := w.current(); st.Applied != 7 || !strings.Contains(st.Refused, "revision 9") || !strings.Contains(st.Refused, "work_mem") {
		t.Fatalf("4. state %+v", st)
	}
	// 5. Not running: written without a check (a start reads it), nothing pending, no reload.
	w.running.Store(false)
	w.want = &paramsWant{rev: 11, params: map[string]string{"work_mem": "16MB"}}
	if changed, err := w.apply(ctx, false); err != nil || !changed || pg.reloads != 2 {
		t.Fatalf("5. apply while stopped: changed %v err %v reloads %d", changed, err, pg.reloads)
	}
	if st := w.current(); st.Applied != 11 || st.Pending != nil || st.Refused != "" {
		t.Fatalf("5. state %+v", st)
	}
	// 6. offer never blocks and the newest offer wins.
	w.offer(12, map[string]string{"a": "1"})
	w.offer(13, map[string]string{"a": "2"})
	if got := <-w.offers; got.rev != 13 {
		t.Fatalf("6. the newest offer did not win: %d", got.rev)
	}
}
