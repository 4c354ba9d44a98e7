// Package httplimit holds the limits of pigwf's HTTP servers (the ChatOps bridge; the HA agent's
// REST API applies the same values): a request body is capped and a larger one answered 413, and
// reading, writing and idle connections have timeouts, so a slow or hostile client holds neither
// memory nor connections for long. Every request these servers take is a few fields.
package httplimit

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Limits. MaxBody: a JSON or form request of a few fields is far below it, and a decoder never
// allocates several times an unbounded body. The timeouts: headers and body of such a request
// arrive at once from any client that is not stalling on purpose.
const (
	MaxBody           = 64 << 10
	MaxHeaderBytes    = 16 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// Server is an HTTP server for h on addr with these limits. answerWithin is the longest a handler
// takes once it has the request (its own calls' timeouts): the write timeout, counted from the
// end of the request's headers, allows reading the body, that, and a margin to write the answer.
func Server(addr string, h http.Handler, answerWithin time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      ReadTimeout + answerWithin + 5*time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Body is r's body capped at MaxBody bytes: reading past the cap fails with an error for which
// TooLarge is true (answer 413), and the server closes the connection after the answer instead
// of reading the rest.
func Body(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	return http.MaxBytesReader(w, r.Body, MaxBody)
}

// TooLarge reports whether err comes from a body over the cap (Body).
func TooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}
