package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
)

// HAView is what `pigwf ha list` shows: an agent's GET /cluster answer
// (haagent.ClusterStatus, the agents' wire contract) or, when no agent
// answers, the DCS records in the same shape.
type HAView struct {
	haagent.ClusterStatus
	Sysid string `json:"-"`
	Note  string `json:"-"`
}

// HAClient talks to a cluster's DCS and agents.
type HAClient struct {
	cluster string
	cli     *clientv3.Client
	store   *dcs.Store
	// http reaches the agents' APIs (the CLI's client certificate, verified against the CA).
	http *http.Client
}

// ClientTLS are the CLI's TLS files for the clusters of inv: the deployment CA in caDir and the
// CLI's client certificate issued from it (pki.CLIClient; renewed when close to expiry), by
// which etcd and the agents' APIs authenticate the CLI. The CLI runs where the CA is, beside the
// worker. A plain-text lab (pigwf_insecure_plaintext) needs none: zero Files.
func ClientTLS(inv *inventory.Inventory, caDir string) (pki.Files, error) {
	if inv.Plaintext {
		return pki.Files{}, nil
	}
	files, _, err := pki.CA{Dir: caDir}.EnsureClient(pki.CLIClient, time.Now())
	if err != nil {
		return pki.Files{}, fmt.Errorf("the CLI's client certificate from the deployment CA in %s: %w (run pigwf where the worker's CA is: $PIGWF_HOME/ca)", caDir, err)
	}
	return files, nil
}

// DialHA connects to the cluster's etcd, read from the inventory's etcd group, with the CLI's
// TLS files from the CA in caDir (ClientTLS).
func DialHA(inv *inventory.Inventory, cluster *inventory.Cluster, caDir string) (*HAClient, error) {
	if len(inv.Etcd) == 0 {
		return nil, fmt.Errorf("%s has no etcd group: cannot find the cluster's DCS", inv.File)
	}
	files, err := ClientTLS(inv, caDir)
	if err != nil {
		return nil, err
	}
	tr, err := files.HTTPTransport()
	if err != nil {
		return nil, fmt.Errorf("the CLI's TLS client of the agents' APIs: %w", err)
	}
	var rt http.RoundTripper = tr
	if !inv.Plaintext {
		rt = pki.HTTPSOnly(tr) // an agent's record naming an http URL is not read
	}
	cli, err := dcs.Connect(dcs.ClientOptions{Endpoints: inv.Etcd, TLS: files, Plaintext: inv.Plaintext, DialTimeout: 3 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("while connecting to etcd %v: %w", inv.Etcd, err)
	}
	st, err := dcs.New(cli, cluster.PG.Namespace, cluster.Name, 30*time.Second)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &HAClient{cluster: cluster.Name, cli: cli, store: st, http: &http.Client{Transport: rt, Timeout: 2 * time.Second}}, nil
}

// Close closes the etcd connection and the agents' connections.
func (h *HAClient) Close() {
	h.cli.Close()
	h.http.CloseIdleConnections()
}

// View asks the leader's agent for the live view (roles and sync states from its
// pg_stat_replication); when no leader answers, it falls back to the DCS and says so.
func (h *HAClient) View(ctx context.Context) (HAView, error) {
	snap, err := h.store.Load(ctx)
	if err != nil {
		return HAView{}, fmt.Errorf("while reading the cluster from etcd: %w", err)
	}
	sysid := ""
	if snap.Initialize != nil {
		sysid = snap.Initialize.Value.Sysid
	}
	urls := []string{}
	if snap.Leader != nil {
		if m, ok := snap.Members[snap.Leader.Value.Holder]; ok {
			urls = append(urls, m.Value.APIURL)
		}
	}
	names := make([]string, 0, len(snap.Members))
	for n := range snap.Members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		urls = append(urls, snap.Members[n].Value.APIURL)
	}
	if v, ok := agentView(ctx, h.http, urls); ok {
		v.Sysid = sysid
		return v, nil
	}
	// No agent answered: show what the DCS believes, and say that it is only that.
	v := HAView{Sysid: sysid, Note: "no agent answered: roles below are the DCS's records, not PostgreSQL's"}
	v.Cluster = h.cluster
	v.Paused = snap.Pause != nil
	if snap.Leader != nil {
		v.Leader, v.Timeline = snap.Leader.Value.Holder, snap.Leader.Value.Timeline
	}
	for _, n := range names {
		m := snap.Members[n].Value
		role := haagent.ClusterRoleReplica
		if n == v.Leader {
			role = haagent.ClusterRoleLeader
		}
		v.Members = append(v.Members, haagent.ClusterMember{Name: n, Role: role, State: m.State + " (DCS)", Timeline: m.Timeline, APIURL: m.APIURL,
			Tags: haagent.ClusterTags(m.Tags), PendingRestart: len(m.PendingRestart) > 0, PendingRestartReason: m.PendingRestart, ConfigRevision: m.ConfigRevision})
	}
	return v, nil
}

// agentView is the first GET /cluster answer of the agents at urls, in order.
func agentView(ctx context.Context, client *http.Client, urls []string) (HAView, bool) {
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u, "/")+"/cluster", nil)
		if err != nil {
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v HAView
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &v) == nil {
			return v, true
		}
	}
	return HAView{}, false
}

// SetPause turns maintenance mode on or off: the agents then change nothing.
func (h *HAClient) SetPause(ctx context.Context, on bool, reason string) error {
	if !on {
		_, err := h.store.SetPause(ctx, nil)
		return err
	}
	_, err := h.store.SetPause(ctx, &dcs.PauseRecord{By: Requester(), Reason: reason, Since: time.Now().UTC()})
	return err
}

// leaderLookupTimeout bounds CurrentLeader: a run's summary is not worth a slow start.
const leaderLookupTimeout = 3 * time.Second

// CurrentLeader is the cluster's leader as its agents (or, when none answers, the DCS) say now,
// for a run's summary; "" when it cannot be learnt within leaderLookupTimeout. The run itself
// reads the cluster again in its precheck, so nothing depends on this answer.
func CurrentLeader(ctx context.Context, inv *inventory.Inventory, cluster *inventory.Cluster, caDir string) string {
	ctx, cancel := context.WithTimeout(ctx, leaderLookupTimeout)
	defer cancel()
	h, err := DialHA(inv, cluster, caDir)
	if err != nil {
		return ""
	}
	defer h.Close()
	v, err := h.View(ctx)
	if err != nil {
		return ""
	}
	return v.Leader
}

var roleNames = map[haagent.ClusterRole]string{haagent.ClusterRoleLeader: "Leader", haagent.ClusterRoleSyncStandby: "Sync Standby",
	haagent.ClusterRoleReplica: "Replica", "standby_leader": "Standby Leader"}

// PrintHAList renders the view in the shape of `patronictl list`. As there, the "Pending
// restart" column is shown only when a member waits for a restart ("*"): `pigwf config set`
// changed a setting that only a restart applies.
func PrintHAList(w io.Writer, v HAView) {
	header := []string{"Member", "Host", "Role", "State", "TL", "Lag in MB"}
	pending := slices.ContainsFunc(v.Members, func(m haagent.ClusterMember) bool { return m.PendingRestart })
	if pending {
		header = append(header, "Pending restart")
	}
	rows := [][]string{}
	for _, m := range v.Members {
		role := roleNames[m.Role]
		if role == "" {
			role = string(m.Role)
		}
		host := m.Host
		if m.Port != 0 && m.Port != 5432 {
			host = fmt.Sprintf("%s:%d", m.Host, m.Port)
		}
		lag := ""
		if m.Lag != nil && !m.Lag.Known { // the member reports no WAL position (agents that say so)
			lag = "unknown"
		} else if m.Role != haagent.ClusterRoleLeader && m.LagBytes != nil {
			lag = fmt.Sprintf("%d", *m.LagBytes/(1<<20))
		} else if m.Role != haagent.ClusterRoleLeader {
			lag = "unknown"
		}
		tl := ""
		if m.Timeline > 0 {
			tl = fmt.Sprint(m.Timeline)
		}
		row := []string{m.Name, host, role, m.State, tl, lag}
		if pending {
			mark := ""
			if m.PendingRestart {
				mark = "*"
			}
			row = append(row, mark)
		}
		rows = append(rows, row)
	}
	title := fmt.Sprintf(" Cluster: %s", v.Cluster)
	if v.Sysid != "" {
		title += fmt.Sprintf(" (%s)", v.Sysid)
	}
	printBoxTable(w, title+" ", header, rows, map[int]bool{4: true, 5: true})
	if v.Paused {
		fmt.Fprintln(w, " Maintenance mode: on")
	}
	if v.SyncSource != "" {
		fmt.Fprintf(w, " Sync roles from %s; synchronous_standby_names = %q\n", v.SyncSource, v.SynchronousStandbyNames)
	}
	if v.Note != "" {
		fmt.Fprintln(w, " Note: "+v.Note)
	}
	if pending {
		fmt.Fprintf(w, " Pending restart: `pigwf start pg-restart --cluster %s --pending` applies the settings that wait for it\n", v.Cluster)
	}
}
