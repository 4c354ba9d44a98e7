package haproxy

import (
	"errors"
	"fmt"
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
}

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

// FastTiming is pigwf's default. The agents' /primary answer is authoritative (it is 200 only
// while the member holds leadership, and 503 before a demotion stops PostgreSQL), so one 200 may
// mark a server up: there is no flapping to smooth out. Checks every 100 ms put the new primary
// in service about 50 ms (at most 100 ms) after it is promoted. Two failures mark a server down,
// so one lost check packet does not cut a healthy primary's sessions. No slow start: a new
// primary must take the whole load at once.
func FastTiming() CheckTiming {
	return CheckTiming{Inter: 100 * time.Millisecond, FastInter: 100 * time.Millisecond, DownInter: 50 * time.Millisecond, Rise: 1, Fall: 2, ShutdownSessions: true}
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
	return errors.Join(errs...)
}

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
