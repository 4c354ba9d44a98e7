package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Request bodies are capped: a 10 MiB body is refused with 413 after reading at most the cap,
// bad JSON with 400, a small body decodes.
func TestDecodeBodyCapsRequests(t *testing.T) {
	big := `{"leader": "` + strings.Repeat("x", 10<<20) + `"}`
	for i, c := range []struct {
		body string
		code int // 0: decoded
	}{
		{`{"leader": "pg-test-1"}`, 0},                                            // 1
		{big, http.StatusRequestEntityTooLarge},                                   // 2
		{`{"leader": `, http.StatusBadRequest},                                    // 3
		{strings.Repeat(" ", maxRequestBody+1), http.StatusRequestEntityTooLarge}, // 4: padding counts too
	} {
		var v struct {
			Leader string `json:"leader"`
		}
		rec := httptest.NewRecorder()
		body := bytes.NewReader([]byte(c.body))
		ok := decodeBody(rec, httptest.NewRequest(http.MethodPost, "/switchover", body), &v)
		switch {
		case c.code == 0 && (!ok || v.Leader != "pg-test-1"):
			t.Errorf("case %d: not decoded: %d %s", i+1, rec.Code, rec.Body)
		case c.code != 0 && (ok || rec.Code != c.code):
			t.Errorf("case %d: ok=%v code %d, want %d", i+1, ok, rec.Code, c.code)
		}
		if read := int64(len(c.body)) - int64(body.Len()); read > maxRequestBody+4096 {
			t.Errorf("case %d: read %d bytes of the body, past the %d cap", i+1, read, maxRequestBody)
		}
	}
}
