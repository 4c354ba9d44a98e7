package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/internal/browser"
	"github.com/pigwf/pigwf/internal/webui"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The Web UI checks: what a person sees in the Temporal Web UI, in a real headless Chromium.

// EnvScreenshots names a directory for the screenshots of the Web UI the tests take (the README's
// pictures); unset, none are taken.
const EnvScreenshots = "PIGWF_SCREENSHOTS"

// webUIDebugDir keeps what a page showed when a Web UI check failed: its text and a screenshot.
const webUIDebugDir = "/tmp/webui-debug"

// pageTimeout bounds the wait for the UI to render what a check expects; it renders asynchronously
// after the document loaded (history long-polls, visibility queries).
const pageTimeout = 30 * time.Second

// uiTableColumnsKey is the localStorage key under which the Web UI keeps the columns chosen in the
// workflow list's column chooser, per namespace; the list shows a search attribute only as such a
// column.
const uiTableColumnsKey = "namespace-workflow-table-columns"

// uiDefaultColumns are the workflow list's columns before anyone chose others (the Web UI's
// defaults, v2.54.1).
var uiDefaultColumns = []string{"Status", "Workflow ID", "Run ID", "Type", "Start", "End"}

// listColumns are the list's default columns with column added after "Workflow ID", where it
// shows without scrolling the table, in the form the UI keeps under uiTableColumnsKey:
// {"<namespace>":[{"label":"<column>"},...]}.
func listColumns(namespace, column string) (string, error) {
	var cols []map[string]string
	for _, c := range uiDefaultColumns {
		cols = append(cols, map[string]string{"label": c})
		if c == "Workflow ID" {
			cols = append(cols, map[string]string{"label": column})
		}
	}
	v, err := json.Marshal(map[string]any{namespace: cols})
	return string(v), err
}

// printedLink is the Web UI link in `pigwf start`'s output: the line containing "/workflows/".
func printedLink(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "http"); i >= 0 && strings.Contains(line, "/workflows/") {
			return strings.TrimSpace(line[i:])
		}
	}
	t.Fatalf("pigwf start printed no Web UI link:\n%s", out)
	return ""
}

// checkWebUIPage opens url in the browser and waits until the page shows every one of want;
// when it does not, it keeps the page's text and a screenshot in webUIDebugDir as name.txt and
// name.png and fails the test. It returns the page's text.
func checkWebUIPage(t *testing.T, web *browser.Browser, name, url string, want ...string) string {
	t.Helper()
	if err := web.Open(url); err != nil {
		t.Fatalf("Web UI %s: %v", name, err)
	}
	text, err := web.WaitText(pageTimeout, want...)
	if err != nil {
		os.MkdirAll(webUIDebugDir, 0o755)
		txt, png := filepath.Join(webUIDebugDir, name+".txt"), filepath.Join(webUIDebugDir, name+".png")
		os.WriteFile(txt, []byte(url+"\n\n"+text), 0o644)
		if serr := web.Screenshot(png); serr != nil {
			t.Logf("screenshot of the failed page: %v", serr)
		}
		t.Fatalf("Web UI %s (%s): %v\nthe page's text and a screenshot: %s, %s\n--- the page shows:\n%s", name, url, err, txt, png, text)
	}
	return text
}

// screenshot saves the page the browser shows as dir/name.png when PIGWF_SCREENSHOTS=dir is set.
func screenshot(t *testing.T, web *browser.Browser, name string) {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := web.Screenshot(path); err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// checkWaitingRunInWebUI is what a person sees of switchover/pg-test waiting for approval, opening
// the link `pigwf start` printed: the plan (the candidate), who may approve and how (the pigwf and
// the chat command); and the run's summary in the list filtered by the waiting-for-approval state.
func checkWaitingRunInWebUI(t *testing.T, web *browser.Browser, link, candidate string, approvers []string) {
	t.Helper()
	if len(approvers) == 0 {
		t.Fatal("no approvers to look for")
	}
	const id = "switchover/pg-test"
	want := append([]string{candidate, workflows.ApproveCommand(id), workflows.ChatApproveCommand(id)}, approvers...)
	checkWebUIPage(t, web, "run-page", link, want...)
	screenshot(t, web, "webui-run-waiting-for-approval")

	// The list shows search attributes only as the columns chosen in its column chooser, kept in
	// the browser's localStorage. Set the RunSummary column the way the chooser does: clicking
	// "Add RunSummary column" in "Configure Columns" on a fresh browser writes
	// {"default":[{"label":"Status"},...,{"label":"End"},{"label":"RunSummary"}]} (checked against
	// UI v2.54.1), and dragging it up in the same dialog rewrites that list in the new order.
	value, err := listColumns("default", workflows.SearchAttrSummary.GetName())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(env.UIURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := web.SetLocalStorage(u.Scheme+"://"+u.Host, uiTableColumnsKey, value); err != nil {
		t.Fatal(err)
	}
	checkWebUIPage(t, web, "list-waiting-for-approval", webui.ListURL(env.UIURL, "default", starter.WaitingForApprovalQuery),
		"switchover pg-test", candidate)
	screenshot(t, web, "webui-list-waiting-for-approval")
}
