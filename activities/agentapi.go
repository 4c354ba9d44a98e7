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
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
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

// clusterView asks the members' agents (leader first) for the live view of the cluster.
func clusterView(ctx context.Context, members []MemberAPI, leader string) (haagent.ClusterStatus, error) {
	ordered := append([]MemberAPI(nil), members...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Name == leader && ordered[j].Name != leader })
	client := &http.Client{Timeout: 2 * time.Second}
	var errs []string
	for _, m := range ordered {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(m.APIURL, "/")+"/cluster", nil)
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
		parts = append(parts, fmt.Sprintf("%s %s/%s%s", m.Name, m.Role, m.State, lag))
	}
	return strings.Join(parts, "; ")
}

// isPrimaryNow asks a member's agent whether it takes writes (GET /primary answers 200).
func isPrimaryNow(url string) bool {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(url + "/primary")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// agentAnswers: the agent at url answers its REST API (/patroni always answers 200 while the
// agent runs, whatever PostgreSQL's state).
func agentAnswers(ctx context.Context, url string) bool {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimRight(url, "/")+"/patroni", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
