package agent

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock is the monotonic clock leadership is timed with. The safety
// argument (haagent doc.go) needs its RATE bounded by clock_drift_ppm, so
// the real clock is CLOCK_MONOTONIC_RAW (the crystal's rate; NTP cannot
// slew it) rather than Go's CLOCK_MONOTONIC.
type Clock interface {
	Now() time.Duration
}

type rawClock struct{}

func (rawClock) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts); err != nil {
		panic("clock_gettime(CLOCK_MONOTONIC_RAW): " + err.Error())
	}
	return time.Duration(ts.Nano())
}

// RawClock returns the CLOCK_MONOTONIC_RAW clock.
func RawClock() Clock { return rawClock{} }

// sleepUntil waits until clock reaches t or stop fires. Go timers run on
// CLOCK_MONOTONIC, whose rate NTP may slew: aim 1/16 early and re-check
// the raw clock, so the wait converges on t from below.
func sleepUntil(clock Clock, t time.Duration, stop <-chan struct{}) bool {
	for {
		rem := t - clock.Now()
		if rem <= 0 {
			return true
		}
		if rem > 2*time.Millisecond {
			rem -= rem / 16
		}
		timer := time.NewTimer(rem)
		select {
		case <-timer.C:
		case <-stop:
			timer.Stop()
			return false
		}
	}
}
