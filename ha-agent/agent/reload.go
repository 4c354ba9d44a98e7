package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// handleReload is POST /reload (Patroni's): write the cluster's dynamic parameters when they
// differ, reload PostgreSQL's configuration files in any case (pg_hba.conf too), and say what
// now waits for a restart.
func (a *Agent) handleReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var none struct{}
	if !decodeOptionalBody(w, r, &none) {
		return
	}
	if s := a.snapshot(); s.obs.State != haagent.PGRunning || s.obs.Stale {
		http.Error(w, "PostgreSQL is "+string(s.obs.State)+", not running: nothing to reload (a start reads the files)", http.StatusServiceUnavailable)
		return
	}
	changed, err := a.params.apply(r.Context(), true)
	if err != nil {
		http.Error(w, "reload: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	st := a.params.current().forPostmaster(a.snapshot().obs.PostmasterAt)
	if st.Refused != "" {
		http.Error(w, st.Refused, http.StatusConflict)
		return
	}
	a.writeJSON(w, r, http.StatusOK, haagent.ReloadResponse{Changed: changed, ConfigRevision: st.Applied, PendingRestart: st.Pending})
}

// handleSettings is GET /settings: the server's pg_settings rows (pgparams.Setting), which
// `pigwf config set` checks new values against before it writes them.
func (a *Agent) handleSettings(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	rows, err := a.settings.get(r.Context(), a.pg.Settings)
	if err != nil {
		http.Error(w, "PostgreSQL does not answer: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	a.writeJSON(w, r, http.StatusOK, rows)
}

// settingsCache answers GET /settings from one read of pg_settings for settingsFresh: the
// endpoint is open to anyone (as Patroni's GET /config), and a connection per request would let
// a busy client fork backends on the member at will.
type settingsCache struct {
	mu   sync.Mutex
	at   time.Time
	rows []pgparams.Setting
}

const settingsFresh = time.Second

func (c *settingsCache) get(ctx context.Context, read func(context.Context) ([]pgparams.Setting, error)) ([]pgparams.Setting, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows != nil && time.Since(c.at) < settingsFresh {
		return c.rows, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rows, err := read(rctx)
	if err != nil {
		return nil, err
	}
	c.rows, c.at = rows, time.Now()
	return rows, nil
}

// jsonUnmarshalStrict decodes b into v, refusing fields v does not have.
func jsonUnmarshalStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
