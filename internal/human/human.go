// Package human writes values for people: the one way plans, summaries and messages print them.
package human

import (
	"strings"
	"time"
)

// Duration drops a duration's zero tails: "1h", "1h30m", "45m", "90s" as "1m30s".
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
