// Package browser drives a real headless Chromium over the DevTools protocol (chromedp), for the
// end-to-end tests that check what a person sees in the Temporal Web UI. Test support only.
//
// The Web UI renders asynchronously and long-polls a run's history, so a page never "finishes
// loading": read it by polling its text until what the test expects is there (WaitText), never
// by a fixed sleep or `chromium --dump-dom`, which hangs on a run's page.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pigwf/pigwf/internal/testenv"
)

// ExecPath is Debian's Chromium, which deploy/deps.sh installs.
const ExecPath = "/usr/bin/chromium"

// The window size: large enough for a run's page to show its details side by side.
const viewportWidth, viewportHeight = 1400, 1000

// actionTimeout bounds one action (a navigation, one read of the page, a screenshot).
const actionTimeout = 30 * time.Second

// Missing returns why headless Chromium cannot run here, or "" when it can.
func Missing() string {
	if _, err := os.Stat(ExecPath); err != nil {
		return ExecPath + " missing (run make deps)"
	}
	return ""
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	ctx context.Context // the tab's; it has run once, so actions may derive timeouts from it
}

// New starts headless Chromium for one test and closes it when the test ends. Without Chromium
// the test skips, or fails when PIGWF_REQUIRE_INTEGRATION=1 (the convention of internal/testenv).
func New(t testing.TB) *Browser {
	t.Helper()
	if reason := Missing(); reason != "" {
		if testenv.RequireIntegration() {
			t.Fatalf("headless Chromium: %s", reason)
		}
		t.Skipf("headless Chromium: %s", reason)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no background networking, sync or extensions
		chromedp.ExecPath(ExecPath),
		chromedp.NoSandbox,                  // the tests run as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-quic", true), // the UI server is plain HTTP on loopback
		chromedp.Flag("disable-gpu", true),  // no GPU on a test machine
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(viewportWidth, viewportHeight),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first action starts the browser; it must not run under a timeout, which would stop the
	// whole browser when it expires (chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting headless Chromium: %v", err)
	}
	return &Browser{ctx: ctx}
}

// Open navigates the tab to url and waits for the document to load (not for the page to render).
func (b *Browser) Open(url string) error {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("while opening %s: %w", url, err)
	}
	return nil
}

// pageText is the visible text of a document followed by that of each of its same-origin frames,
// recursively: the Web UI renders Markdown (a run's summary, details and current details) in
// iframes of its own origin, whose text the page's innerText leaves out.
const pageText = `(function text(doc) {
	let t = doc.body ? doc.body.innerText : "";
	for (const f of doc.querySelectorAll("iframe")) {
		let d = null;
		try { d = f.contentDocument; } catch (e) {} // another origin's frame: not readable
		if (d) t += "\n" + text(d);
	}
	return t;
})(document)`

// Text is the page's visible text (innerText), with that of its same-origin frames.
func (b *Browser) Text() (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](pageText))
	if err != nil {
		return "", fmt.Errorf("while reading the page's text: %w", err)
	}
	return text, nil
}

// WaitText polls the page's visible text until it contains every one of want, and returns that
// text. After timeout it returns the last text read and an error naming what was missing.
func (b *Browser) WaitText(timeout time.Duration, want ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		text, err := b.Text() // fails while a navigation replaces the document: read again
		missing := missingFrom(text, want)
		if err == nil && len(missing) == 0 {
			return text, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("the page does not show %s after %v", quoteAll(missing), timeout)
			}
			return text, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func missingFrom(text string, want []string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(text, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// Screenshot saves the tab's viewport as a PNG file.
func (b *Browser) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("while taking a screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("while saving a screenshot: %w", err)
	}
	return nil
}

// SetLocalStorage sets key to value in origin's localStorage (origin is scheme://host:port), as
// the site's own script would: it opens origin in the tab and sets the item there, so the pages
// of origin opened next read it when they start.
func (b *Browser) SetLocalStorage(origin, key, value string) error {
	if err := b.Open(origin); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	k, err := json.Marshal(key) // a JavaScript string literal
	if err != nil {
		return err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return err
	}
	js := fmt.Sprintf(`localStorage.setItem(%s, %s); localStorage.getItem(%s)`, k, v, k)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		return fmt.Errorf("while setting %s in the localStorage of %s: %w", key, origin, err)
	}
	if got != value {
		return errors.New("localStorage of " + origin + " does not keep " + key)
	}
	return nil
}
