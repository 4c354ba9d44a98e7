package haproxy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// CheckTiming is how often HAProxy checks each server and how many results change its state.
// A client's failover time through HAProxy is the agents' failover plus the time HAProxy takes
// to mark the new primary up (about Inter × Rise once it answers 200) and the old one down.
type CheckTiming struct {
	Inter     time.Duration `json:"inter" yaml:"inter"`         // between checks of a server in a steady state
	FastInter time.Duration `json:"fastinter" yaml:"fastinter"` // between checks while a state change is being confirmed
	DownInter time.Duration `json:"downinter" yaml:"downinter"` // between checks of a server that is down
	Rise      int           `json:"rise" yaml:"rise"`           // consecutive passes that mark a server up
	Fall      int           `json:"fall" yaml:"fall"`           // consecutive failures that mark it down
	// ShutdownSessions closes the sessions of a server when it is marked down, so clients of a
	// demoted or cut-off primary reconnect at once instead of waiting on a dead connection.
	ShutdownSessions bool          `json:"shutdown_sessions" yaml:"shutdown_sessions"`
	SlowStart        time.Duration `json:"slowstart" yaml:"slowstart"` // ramp-up of a server's weight after it comes up; 0 = none
	// Hold asks pigwf's agents to hold a failing check up to this long (?wait=) and answer 200
	// the moment it holds: a new primary is in service as soon as its agent publishes the
	// promotion, not at the next check. 0 = plain checks (Patroni's agents know no ?wait=).
	Hold time.Duration `json:"hold,omitempty" yaml:"hold"`
	// ReadInter, when set, is Inter for the services that route reads (a check other than the
	// primary's): a read service can take a second to drop a member, and checking it ten
	// times a second costs every agent a TLS handshake per check. 0 = Inter.
	ReadInter time.Duration `json:"read_inter,omitempty" yaml:"read_inter"`
}

// MaxHold is the longest Hold the agents accept (their ?wait= cap).
const MaxHold = 5 * time.Second

// PigstyTiming is Pigsty's service default (inter 3s fastinter 1s downinter 5s rise 3 fall 3
// on-marked-down shutdown-sessions slowstart 30s): a primary is marked up about 3 s after it
// starts answering 200.
func PigstyTiming() CheckTiming {
	return CheckTiming{Inter: 3 * time.Second, FastInter: time.Second, DownInter: 5 * time.Second, Rise: 3, Fall: 3, ShutdownSessions: true, SlowStart: 30 * time.Second}
}

// PatroniSampleTiming is Patroni's sample haproxy.cfg (inter 3s fall 3 rise 2
// on-marked-down shutdown-sessions).
func PatroniSampleTiming() CheckTiming {
	return CheckTiming{Inter: 3 * time.Second, Rise: 2, Fall: 3, ShutdownSessions: true}
}

// FastTiming is pigwf's default. The agents' /primary answer is authoritative (200 only while
// the member holds leadership and its PostgreSQL takes writes, 503 before a demotion stops
// PostgreSQL), so one 200 may mark a server up: there is no flapping to smooth out.
//   - A server that is down is checked with a held check (Hold 1 s, then 100 ms apart): its
//     agent answers 200 the moment it has promoted, so HAProxy puts it in service within a few
//     milliseconds, most of the time without waiting for an interval at all.
//   - A server that is up is checked every 100 ms and answers at once; two failures (a 503, or
//     no TCP connection within 100 ms for a dead host) mark it down and close its sessions, so
//     clients of a demoted or cut-off primary reconnect at once. One lost check packet does not.
//   - No slow start: a new primary must take the whole load at once.
func FastTiming() CheckTiming {
	return CheckTiming{Inter: 100 * time.Millisecond, FastInter: 100 * time.Millisecond, DownInter: 100 * time.Millisecond, Rise: 1, Fall: 2,
		ShutdownSessions: true, Hold: time.Second, ReadInter: time.Second}
}

// forReads is the timing of a service that routes reads: Inter and DownInter are ReadInter.
func (t CheckTiming) forReads() CheckTiming {
	if t.ReadInter > 0 {
		t.Inter, t.DownInter = t.ReadInter, t.ReadInter
	}
	return t
}

// Validate refuses timings HAProxy would misread or that cannot hold: intervals under 10 ms
// (a check storm against the agents), rise or fall outside 1-10.
func (t CheckTiming) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
		zero bool // may be 0 (HAProxy then uses inter)
	}{{"inter", t.Inter, false}, {"fastinter", t.FastInter, true}, {"downinter", t.DownInter, true}} {
		if (f.d == 0 && f.zero) || (f.d >= 10*time.Millisecond && f.d <= time.Hour) {
			continue
		}
		errs = append(errs, fmt.Errorf("check %s %v: want 10ms to 1h", f.name, f.d))
	}
	if t.Rise < 1 || t.Rise > 10 {
		errs = append(errs, fmt.Errorf("check rise %d: want 1-10", t.Rise))
	}
	if t.Fall < 1 || t.Fall > 10 {
		errs = append(errs, fmt.Errorf("check fall %d: want 1-10", t.Fall))
	}
	if t.SlowStart < 0 || t.SlowStart > time.Hour {
		errs = append(errs, fmt.Errorf("slowstart %v: want 0 to 1h", t.SlowStart))
	}
	if t.ReadInter != 0 && (t.ReadInter < 10*time.Millisecond || t.ReadInter > time.Hour) {
		errs = append(errs, fmt.Errorf("check read_inter %v: want 10ms to 1h", t.ReadInter))
	}
	if t.Hold < 0 || t.Hold > MaxHold {
		errs = append(errs, fmt.Errorf("check hold %v: want 0 to %v", t.Hold, MaxHold))
	}
	return errors.Join(errs...)
}

// checkURI is uri with the agents' ?wait= for a held check ("" stays a bare httpchk without Hold).
func (t CheckTiming) checkURI(uri string) string {
	if t.Hold <= 0 {
		return uri
	}
	if uri == "" {
		uri = "/"
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + "wait=" + ms(t.Hold)
}

// checkTimeout is how long a check may take once connected: a held check's Hold plus half a
// second for an agent under load (a connection to a dead host fails after min(timeout connect,
// inter) anyway).
func (t CheckTiming) checkTimeout() time.Duration { return t.Hold + 500*time.Millisecond }

// serverOptions is the default-server line of a listen with these timings.
func (t CheckTiming) serverOptions() string {
	s := "inter " + ms(t.Inter)
	if t.FastInter > 0 {
		s += " fastinter " + ms(t.FastInter)
	}
	if t.DownInter > 0 {
		s += " downinter " + ms(t.DownInter)
	}
	s += fmt.Sprintf(" rise %d fall %d", t.Rise, t.Fall)
	if t.ShutdownSessions {
		s += " on-marked-down shutdown-sessions"
	}
	if t.SlowStart > 0 {
		s += " slowstart " + ms(t.SlowStart)
	}
	return s
}
