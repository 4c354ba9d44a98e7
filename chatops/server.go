package chatops

import (
	"fmt"
	"net/http"
	"time"

	"github.com/pigwf/pigwf/internal/httplimit"
)

// actTimeout bounds a command's calls to Temporal (act).
const actTimeout = 20 * time.Second

// tooLarge answers a request whose body is over httplimit.MaxBody: a slash command or webhook
// call is a few fields.
var tooLarge = fmt.Sprintf("refused: request body over %d bytes", httplimit.MaxBody)

// HTTPServer serves the bridge on addr with pigwf's server limits (httplimit): bodies capped,
// read, write and idle timeouts, a header size cap.
func (s *Server) HTTPServer(addr string) *http.Server {
	return httplimit.Server(addr, s.Handler(), actTimeout)
}
