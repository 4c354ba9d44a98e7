package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// ConfigRead is a cluster's config as `pigwf config show|set|edit` read it at the start: the
// values (defaults filled), the revision a write must still find, and the leader whose
// PostgreSQL judges new parameters, all from one etcd read.
type ConfigRead struct {
	Cluster string `json:"cluster"`
	// Revision is the config key's mod revision: a write is a compare-and-swap on it, and the
	// members report the revision they applied (dcs.MemberRecord.ConfigRevision).
	Revision int64          `json:"revision"`
	Config   haagent.Config `json:"config"`
	// Problems say why the stored config does not pass haagent.Config.Validate (someone wrote
	// it by hand): shown, so that an edit can fix it; nothing that does not pass is written.
	Problems []string `json:"problems,omitempty"`
	// Unknown are stored settings this pigwf has no field for (a newer pigwf wrote them): a write
	// would drop them, so nothing is written while there are any.
	Unknown []string `json:"unknown,omitempty"`
	// Leader and its agent's API URL (its member record's api_url); "" when there is none.
	Leader    string `json:"leader,omitempty"`
	LeaderAPI string `json:"-"`
}

var (
	// ErrNoConfig: the cluster has no config key (not created, or another pg_namespace).
	ErrNoConfig = errors.New("no config in the DCS")
	// ErrSettingsUnavailable: the leader's agent did not answer GET /settings, so new
	// parameters cannot be checked against its PostgreSQL.
	ErrSettingsUnavailable = errors.New("the leader's PostgreSQL settings could not be read")
)

// ReadConfig reads the cluster's config key and leader in one etcd read.
func (h *HAClient) ReadConfig(ctx context.Context) (ConfigRead, error) {
	snap, err := h.store.Load(ctx)
	if err != nil {
		return ConfigRead{}, fmt.Errorf("while reading %s's config from etcd: %w", h.cluster, err)
	}
	for _, p := range snap.Problems {
		if ke, ok := errors.AsType[*dcs.KeyError](p); ok && ke.Kind == dcs.KindConfig {
			return ConfigRead{}, fmt.Errorf("the config key %s is not JSON (%v): pigwf changes only a config it can read; repair it with etcdctl", ke.Key, ke.Err)
		}
	}
	if snap.Config == nil {
		return ConfigRead{}, fmt.Errorf("%w: cluster %s has no config key under %s in etcd: `pigwf start pg-cluster-create --cluster %s` registers it (or the inventory's pg_namespace is not the one the cluster was created with)",
			ErrNoConfig, h.cluster, h.store.Prefix(), h.cluster)
	}
	cfg, err := haagent.DecodeConfig(snap.Config.Value)
	if err != nil {
		return ConfigRead{}, fmt.Errorf("cluster %s's config at revision %d: %w; repair it with etcdctl", h.cluster, snap.Config.ModRevision, err)
	}
	read := ConfigRead{Cluster: h.cluster, Revision: snap.Config.ModRevision, Config: cfg, Unknown: haagent.UnknownKeys(snap.Config.Value)}
	for _, p := range joined(cfg.Validate()) {
		read.Problems = append(read.Problems, p.Error())
	}
	if snap.Leader != nil {
		read.Leader = snap.Leader.Value.Holder
		if m, ok := snap.Members[read.Leader]; ok {
			read.LeaderAPI = m.Value.APIURL
		}
	}
	return read, nil
}

// maxSettingsBody bounds an agent's GET /settings answer (a server's ~350 rows are ~100 KiB).
const maxSettingsBody = 8 << 20

// leaderCatalog is the leader's pg_settings, from its agent's GET /settings: the server new
// parameters are checked against. Every failure wraps ErrSettingsUnavailable.
func (h *HAClient) leaderCatalog(ctx context.Context, read ConfigRead) (pgparams.Catalog, error) {
	switch {
	case read.Leader == "":
		return nil, fmt.Errorf("%w: cluster %s has no leader now", ErrSettingsUnavailable, read.Cluster)
	case read.LeaderAPI == "":
		return nil, fmt.Errorf("%w: the leader %s has no member record naming its agent's API", ErrSettingsUnavailable, read.Leader)
	}
	rows, err := fetchSettings(ctx, h.http, read.LeaderAPI)
	if err != nil {
		return nil, fmt.Errorf("%w: the leader %s: %v", ErrSettingsUnavailable, read.Leader, err)
	}
	return pgparams.NewCatalog(rows), nil
}

// fetchSettings is GET <apiURL>/settings: the agent's PostgreSQL's pg_settings rows (503 when its
// PostgreSQL does not answer).
func fetchSettings(ctx context.Context, client *http.Client, apiURL string) ([]pgparams.Setting, error) {
	url := strings.TrimRight(apiURL, "/") + "/settings"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSettingsBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return nil, fmt.Errorf("its agent answers that PostgreSQL does not answer (GET %s: 503)", url)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s answered %s", url, resp.Status)
	}
	var rows []pgparams.Setting
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("GET %s: not a list of pg_settings rows: %w", url, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("GET %s answered no settings", url)
	}
	return rows, nil
}
