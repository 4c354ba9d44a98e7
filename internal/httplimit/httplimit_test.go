package httplimit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve runs h on a real HTTP server configured by Server.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = Server("", h, time.Second)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// A body over MaxBody is answered 413 after reading at most the cap; one at the cap is read
// whole; headers over MaxHeaderBytes are answered 431 before any handler runs.
func TestServerLimits(t *testing.T) {
	var read int
	ts := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(Body(w, r))
		read = len(b)
		if TooLarge(err) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	for _, c := range []struct {
		size, code int
	}{{0, http.StatusNoContent}, {MaxBody, http.StatusNoContent}, {MaxBody + 1, http.StatusRequestEntityTooLarge}, {10 << 20, http.StatusRequestEntityTooLarge}} {
		read = -1
		resp, err := http.Post(ts.URL, "application/json", strings.NewReader(strings.Repeat(" ", c.size)))
		if err != nil {
			t.Fatalf("%d bytes: %v", c.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code || read > MaxBody {
			t.Errorf("%d bytes: %s after reading %d bytes, want %d (at most %d read)", c.size, resp.Status, read, c.code, MaxBody)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 2*MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of %d bytes: %s, want 431", 2*MaxHeaderBytes, resp.Status)
	}
}

// The write timeout leaves a handler its announced time to answer.
func TestServerLetsHandlerAnswer(t *testing.T) {
	srv := Server("", http.NotFoundHandler(), 20*time.Second)
	if srv.WriteTimeout < ReadTimeout+20*time.Second || srv.ReadHeaderTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes != MaxHeaderBytes {
		t.Errorf("limits: %+v", srv)
	}
}
