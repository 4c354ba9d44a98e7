package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/pki"
)

// AgentAPIURL is where a member's agent API answers: the member's SSH host (the address the
// control side and the other members reach it at) and the cluster's API port, over TLS with the
// node's certificate unless the cluster is a plain-text lab. An IPv6 address is bracketed
// ("https://[fd00::11]:8008"), or the URL would not parse.
func AgentAPIURL(host string, port int, plaintext bool) string {
	scheme := "https"
	if plaintext {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// agentClient is the worker's one HTTP client of the agents' APIs, calls bounded by timeout:
// https verified against the deployment CA, presenting the worker's client certificate (what
// authenticates it to the mutating endpoints), over one transport shared by the worker's
// activities so connections to the agents stay alive between polls. Plain http only when this
// worker allows plain text (AllowPlaintext): an agent URL in a run's input cannot turn TLS off.
func (a *Activities) agentClient(timeout time.Duration) (*http.Client, error) {
	files, err := a.ClientTLS()
	if err != nil {
		return nil, err
	}
	tr, err := a.agentHTTP.transport(files)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the worker's TLS client of the agents' APIs: %v", err), ErrConfig, err)
	}
	var rt http.RoundTripper = tr
	if !a.AllowPlaintext {
		rt = pki.HTTPSOnly(tr)
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}

// agentTransport holds the transport agentClient hands out; a new one only if the worker's
// files change (the certificate itself is re-read on renewal by pki's reloading config).
type agentTransport struct {
	mu    sync.Mutex
	files pki.Files
	tr    *http.Transport
}

func (t *agentTransport) transport(files pki.Files) (*http.Transport, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tr != nil && t.files == files {
		return t.tr, nil
	}
	tr, err := files.HTTPTransport()
	if err != nil {
		return nil, err
	}
	if t.tr != nil {
		t.tr.CloseIdleConnections()
	}
	t.files, t.tr = files, tr
	return tr, nil
}

// clusterView asks the members' agents (leader first) for the live view of the cluster.
func clusterView(ctx context.Context, client *http.Client, members []MemberAPI, leader string) (haagent.ClusterStatus, error) {
	ordered := append([]MemberAPI(nil), members...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Name == leader && ordered[j].Name != leader })
	var errs []string
	for _, m := range ordered {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(m.APIURL, "/")+"/cluster", nil)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v haagent.ClusterStatus
		if err := json.Unmarshal(body, &v); err != nil {
			errs = append(errs, fmt.Sprintf("%s/cluster: %v", m.APIURL, err))
			continue
		}
		return v, nil
	}
	return haagent.ClusterStatus{}, fmt.Errorf("no agent answered /cluster: %s", strings.Join(errs, "; "))
}

// describeCluster is the one-line view shown in plans and failures: "pg-test-1 leader/running; ...".
func describeCluster(v haagent.ClusterStatus) string {
	var parts []string
	for _, m := range v.Members {
		lag := ""
		if m.LagBytes != nil && m.Role != haagent.ClusterRoleLeader {
			lag = fmt.Sprintf(", lag %d B", *m.LagBytes)
		}
		pending := ""
		if m.PendingRestart {
			pending = ", pending restart"
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s%s%s", m.Name, m.Role, m.State, lag, pending))
	}
	return strings.Join(parts, "; ")
}

// isPrimaryNow asks a member's agent whether it takes writes (GET /primary answers 200).
func isPrimaryNow(ctx context.Context, client *http.Client, url string) bool {
	return getStatus(ctx, client, url, "/primary") == http.StatusOK
}

// agentAnswers: the agent at url answers its REST API (/patroni always answers 200 while the
// agent runs, whatever PostgreSQL's state).
func agentAnswers(ctx context.Context, client *http.Client, url string) bool {
	return getStatus(ctx, client, url, "/patroni") == http.StatusOK
}

// getStatus is the status code of GET url+path, 0 when there is no answer.
func getStatus(ctx context.Context, client *http.Client, url, path string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+path, nil)
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
