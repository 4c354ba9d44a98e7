package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A page that renders after a delay, from what localStorage holds, and shows Markdown in a frame
// of its own origin, as the Web UI does.
const asyncPage = `<!doctype html><html><body><p>loading</p><script>
setTimeout(function () {
  document.body.innerHTML = '<p>rendered ' + (localStorage.getItem('columns') || 'none') + '</p>' +
    '<iframe src="/render"></iframe>';
}, 700);
</script></body></html>`

const framePage = `<!doctype html><html><body><p>in a <b>frame</b></p></body></html>`

func TestWaitTextSetLocalStorageScreenshot(t *testing.T) {
	b := New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/render" {
			fmt.Fprint(w, framePage)
			return
		}
		fmt.Fprint(w, asyncPage)
	}))
	defer srv.Close()

	if err := b.Open(srv.URL + "/page"); err != nil {
		t.Fatal(err)
	}
	if text, err := b.WaitText(10*time.Second, "rendered none", "in a frame"); err != nil {
		t.Fatalf("%v; the page shows %q", err, text)
	}

	value := `{"default":[{"label":"Status"},{"label":"RunSummary"}]}`
	if err := b.SetLocalStorage(srv.URL, "columns", value); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(srv.URL + "/page"); err != nil {
		t.Fatal(err)
	}
	if text, err := b.WaitText(10*time.Second, "rendered "+value); err != nil {
		t.Fatalf("%v; the page shows %q", err, text)
	}

	// What never appears: the last text and an error naming what is missing.
	text, err := b.WaitText(time.Second, "rendered", "absent")
	if err == nil || !strings.Contains(err.Error(), `"absent"`) || strings.Contains(err.Error(), `"rendered"`) || !strings.Contains(text, "rendered") {
		t.Errorf("WaitText of a missing string: %q, %v", text, err)
	}

	png := filepath.Join(t.TempDir(), "page.png")
	if err := b.Screenshot(png); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(png); err != nil || !strings.HasPrefix(string(data), "\x89PNG") {
		t.Errorf("screenshot: %v, %d bytes", err, len(data))
	}
}
