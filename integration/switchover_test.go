package integration

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/internal/browser"
	"github.com/pigwf/pigwf/internal/testenv"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// leaderOf asks `pigwf ha list` who leads.
func leaderOf(t *testing.T, home string, st *lab.Status) string {
	t.Helper()
	out, err := pigwf(t, home, "ha", "list", "--cluster", "pg-test", "--inventory", st.Inventory, "--json")
	if err != nil {
		t.Fatalf("ha list: %v\n%s", err, out)
	}
	var v struct {
		Leader string `json:"leader"`
	}
	if err := jsonUnmarshal(out, &v); err != nil {
		t.Fatalf("ha list --json: %v\n%s", err, out)
	}
	return v.Leader
}

// waitPending waits until the switchover run is waiting for approval.
func waitPending(t *testing.T, c *starter.Client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := c.PendingApprovals(context.Background())
		if err == nil && len(runs) == 1 && runs[0].WorkflowID == "switchover/pg-test" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("switchover/pg-test never waited for approval")
}

// startSwitchover starts a switchover in the background, requested by carol unless args name
// another (--as), and returns a channel with its output.
func startSwitchover(t *testing.T, home string, st *lab.Status, args ...string) <-chan string {
	t.Helper()
	if !slices.Contains(args, "--as") {
		args = append(args, "--as", "carol")
	}
	done := make(chan string, 1)
	go func() {
		out, err := pigwf(t, home, append([]string{"start", "switchover", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"}, args...)...)
		done <- fmt.Sprintf("%s\nexit: %v", out, err)
	}()
	return done
}

func wait(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case out := <-ch:
		return out
	case <-time.After(3 * time.Minute):
		t.Fatal("the switchover run did not end")
		return ""
	}
}

func slackSigned(t *testing.T, endpoint, secret, user, text string, ts int64) (int, string, func() (int, string)) {
	t.Helper()
	body := url.Values{"command": {"/pigwf"}, "user_id": {user}, "text": {text}}.Encode()
	stamp := fmt.Sprint(ts)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	sig := "v0=" + hex.EncodeToString(mac.Sum(nil))
	send := func(signature string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, endpoint+"/slack/command", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", stamp)
		req.Header.Set("X-Slack-Signature", signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, text := send(sig)
	return code, text, func() (int, string) { return send(sig) }
}

// Switchover with human approval from the CLI and from ChatOps; what the Web UI shows of a run
// waiting for approval; refusals; a rejected and a timed-out run leave the cluster as it was; a
// worker killed while a run waits for approval.
func TestSwitchoverWithApprovals(t *testing.T) {
	requireIntegration(t)
	web := browser.New(t)
	st, home := clusterLab(t, "pwsw", "10.213.17")
	w := startWorker(t, home)
	if out, err := pigwf(t, home, "start", "pg-cluster-create", "--cluster", "pg-test", "--inventory", st.Inventory, "--wait"); err != nil {
		t.Fatalf("pg-cluster-create: %v\n%s", err, out)
	}
	c := dial(t)
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Fatalf("leader after create = %q", l)
	}

	// 1. Approved from the CLI: pg-test-1 -> pg-test-2. While it waits, the link `pigwf start`
	// printed opens the run in the Web UI, which shows the plan, the approvers and how to approve,
	// and the list of runs waiting for approval shows its summary.
	out, err := pigwf(t, home, "start", "switchover", "--cluster", "pg-test", "--inventory", st.Inventory, "--as", "carol",
		"--candidate", "pg-test-2", "--reason", "test: cli approval")
	if err != nil {
		t.Fatalf("start switchover: %v\n%s", err, out)
	}
	if !strings.Contains(out, "request signed by carol") {
		t.Errorf("the request was not signed:\n%s", out)
	}
	link := printedLink(t, out)
	waitPending(t, c)
	checkWaitingRunInWebUI(t, web, link, "pg-test-2", []string{"alice", "bob"}) // labPolicies
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "mallory"); err == nil || !strings.Contains(out, "mallory is not an approver") {
		t.Errorf("a non-approver was accepted: %v\n%s", err, out)
	}
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "alice", "--comment", "cli ok"); err != nil || !strings.Contains(out, "approved by alice") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.SwitchoverResult
	if err := c.C.GetWorkflow(ctx, "switchover/pg-test", "").Get(ctx, &res); err != nil || res.Report.NewLeader != "pg-test-2" {
		agentLogTails(t, st) // the agents say why a member did not take over
		t.Fatalf("cli-approved switchover: %v, %+v", err, res)
	}
	if l := leaderOf(t, home, st); l != "pg-test-2" {
		t.Errorf("leader after the switchover = %q", l)
	}

	// 2. Approved through ChatOps: back to pg-test-1, with refused requests first.
	port, _ := testenv.FreePort()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(home, "chatops.yml")
	// The bridge signs as chatops with its key; the workers' approvals file trusts it for alice and bob.
	os.WriteFile(cfg, []byte("users: { U0ALICE: alice, U0MALLORY: mallory }\nsigner: chatops\nkey: "+filepath.Join(home, "keys", "chatops")+"\n"), 0o600)
	secret := "test-signing-secret"
	bridge := exec.Command(env.PigwfBin, append(env.GlobalArgs(), "chatops", "serve", "--listen", endpoint[len("http://"):], "--config", cfg)...)
	bridge.Env = append(os.Environ(), "PIGWF_SLACK_SIGNING_SECRET="+secret, "PIGWF_CHATOPS_TOKEN=test-token")
	if err := bridge.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bridge.Process.Kill(); bridge.Wait() })
	for i := 0; i < 50; i++ {
		if resp, err := http.Get(endpoint + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	run := startSwitchover(t, home, st, "--candidate", "pg-test-1", "--reason", "test: chatops approval")
	waitPending(t, c)
	now := time.Now().Unix()
	if code, text, _ := slackSigned(t, endpoint, "wrong-secret", "U0ALICE", "approve switchover/pg-test", now); code != 401 {
		t.Errorf("badly signed: %d %s", code, text)
	}
	if code, text, _ := slackSigned(t, endpoint, secret, "U0ALICE", "approve switchover/pg-test", now-600); code != 401 {
		t.Errorf("expired: %d %s", code, text)
	}
	if code, text, _ := slackSigned(t, endpoint, secret, "U0EVE", "approve switchover/pg-test", now); code != 403 {
		t.Errorf("unknown user: %d %s", code, text)
	}
	if code, text, _ := slackSigned(t, endpoint, secret, "U0MALLORY", "approve switchover/pg-test", now); code != 403 {
		t.Errorf("non-approver: %d %s", code, text)
	}
	if l := leaderOf(t, home, st); l != "pg-test-2" {
		t.Fatalf("refused requests changed the leader to %q", l)
	}
	code, text, replay := slackSigned(t, endpoint, secret, "U0ALICE", "approve switchover/pg-test chat ok", now)
	if code != 200 || !strings.Contains(text, "approved by alice") {
		t.Fatalf("signed approval: %d %s", code, text)
	}
	if code, text := replay(); code != 401 || !strings.Contains(text, "replay") {
		t.Errorf("replayed: %d %s", code, text)
	}
	if out := wait(t, run); !strings.Contains(out, "exit: <nil>") {
		t.Fatalf("chatops-approved switchover:\n%s", out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Errorf("leader after the chatops switchover = %q", l)
	}

	// 3. Rejected: nothing changes.
	run = startSwitchover(t, home, st, "--candidate", "pg-test-3")
	waitPending(t, c)
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "bob", "--reject", "--comment", "not now"); err != nil {
		t.Fatalf("reject: %v\n%s", err, out)
	}
	if out := wait(t, run); !strings.Contains(out, "rejected by bob") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("rejected run:\n%s", out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Errorf("a rejected switchover changed the leader to %q", l)
	}

	// 4. Timed out: nothing changes.
	run = startSwitchover(t, home, st, "--candidate", "pg-test-3", "--approval-timeout", "3s")
	if out := wait(t, run); !strings.Contains(out, "the approval timed out") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("timed-out run:\n%s", out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-1" {
		t.Errorf("a timed-out switchover changed the leader to %q", l)
	}

	// 5. The worker dies while the run waits; the approval sent afterwards still completes it.
	run = startSwitchover(t, home, st, "--candidate", "pg-test-3", "--reason", "test: worker crash")
	waitPending(t, c)
	w.kill()
	if out, err := pigwf(t, home, "approve", "switchover/pg-test", "--by", "alice", "--signal"); err != nil {
		t.Fatalf("signal with no worker: %v\n%s", err, out)
	}
	startWorker(t, home)
	if out := wait(t, run); !strings.Contains(out, "exit: <nil>") || !strings.Contains(out, "pg-test-3 leads") {
		t.Fatalf("switchover after a worker crash:\n%s", out)
	}
	if l := leaderOf(t, home, st); l != "pg-test-3" {
		t.Errorf("leader = %q, want pg-test-3", l)
	}
	if os.Getenv("PIGWF_REFRESH_HISTORIES") == "1" {
		saveHistory(t, "switchover/pg-test")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
