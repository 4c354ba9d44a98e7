package agent

import (
	"strings"
	"time"
)

// reasonLimiter logs a decision reason when it differs from the previous
// one, and a repeated one at most every 10 s.
type reasonLimiter struct {
	last     string
	loggedAt time.Time
}

func (r *reasonLimiter) allow(reason string) bool {
	if reason != r.last || time.Since(r.loggedAt) >= 10*time.Second {
		r.last, r.loggedAt = reason, time.Now()
		return true
	}
	return false
}

// messageLimiter logs each distinct message at most every 10 s.
type messageLimiter struct{ seen map[string]time.Time }

func (m *messageLimiter) allow(msg string) bool {
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := m.seen[msg]; ok && now.Sub(t) < 10*time.Second {
		return false
	}
	if len(m.seen) > 1000 {
		clear(m.seen)
	}
	m.seen[msg] = now
	return true
}

// humanErr shortens an error for a member note.
func humanErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ")
}
