package activities

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// A notification links to the run's page with the workflow ID's "/" escaped: the Web UI does
// not find "switchover/pg-test" unescaped.
func TestNotifyLinksToTheRun(t *testing.T) {
	got := make(chan Notification, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Error(err)
		}
		got <- n
	}))
	defer hook.Close()

	a := &Activities{Notifier: Notifier{URL: hook.URL, WebUI: "http://127.0.0.1:8233/"}}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "switchover/pg-test"})
	env.ExecuteWorkflow(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteActivity(ctx, a.Notify, Notification{Event: "approval-requested", Runbook: "switchover", Cluster: "pg-test", Text: "waiting for approval"}).Get(ctx, nil)
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	n := <-got
	want := "http://127.0.0.1:8233/namespaces/default-test-namespace/workflows/switchover%2Fpg-test/" + n.RunID + "/user-metadata"
	if n.WorkflowID != "switchover/pg-test" || n.WebURL != want || !strings.HasSuffix(n.Text, " "+want) {
		t.Errorf("notification %+v\nwant the link %s", n, want)
	}
}
