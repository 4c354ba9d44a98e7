// Package workerid is the form of a pigwf worker's identity, as Temporal records it on every task
// the worker runs: written by the worker, read by whoever needs to know which process ran a step
// (tests that kill it, an operator reading a history).
package workerid

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is the identity of the worker process pid on host running build:
// pigwf-worker@HOST/pid-PID/build-BUILD.
func Format(host string, pid int, build string) string {
	return fmt.Sprintf("pigwf-worker@%s/pid-%d/build-%s", host, pid, build)
}

// Parse reads an identity Format wrote; ok is false for any other (the SDK's default "PID@host@").
func Parse(identity string) (host string, pid int, build string, ok bool) {
	rest, found := strings.CutPrefix(identity, "pigwf-worker@")
	if !found {
		return "", 0, "", false
	}
	host, rest, found = strings.Cut(rest, "/pid-")
	if !found {
		return "", 0, "", false
	}
	p, build, found := strings.Cut(rest, "/build-")
	if !found {
		return "", 0, "", false
	}
	pid, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, "", false
	}
	return host, pid, build, true
}
