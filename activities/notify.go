package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/pigwf/pigwf/internal/webui"
)

// Notifier posts run events to a chat webhook. The URL is worker configuration (--notify-url):
// webhook URLs often embed a secret, so it never travels in workflow history.
type Notifier struct {
	URL   string // "" disables notifications
	WebUI string // Temporal Web UI base, for links
}

// Notification is what a run tells the chat.
type Notification struct {
	Event     string   `json:"event"` // approval-requested | run-ended
	Runbook   string   `json:"runbook"`
	Cluster   string   `json:"cluster"`
	Text      string   `json:"text"` // human summary: the plan, or the outcome
	Approvers []string `json:"approvers,omitempty"`
	Deadline  string   `json:"deadline,omitempty"`
	// Filled by the activity:
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	WebURL     string `json:"web_url"`
}

// Notify posts n (Slack-compatible: a "text" field) to the configured webhook.
func (a *Activities) Notify(ctx context.Context, n Notification) (string, error) {
	if a.Notifier.URL == "" {
		return "notifications are off (no --notify-url)", nil
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		n.WorkflowID, n.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
		if a.Notifier.WebUI != "" {
			n.WebURL = webui.RunURL(a.Notifier.WebUI, info.Namespace, n.WorkflowID, n.RunID)
		}
		n.Text = fmt.Sprintf("[%s %s] %s %s", n.Runbook, n.Cluster, n.Text, n.WebURL)
	}
	body, _ := json.Marshal(n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Notifier.URL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("bad --notify-url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("while notifying: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("the notification webhook answered %s", resp.Status)
	}
	return "notified: " + n.Event, nil
}
