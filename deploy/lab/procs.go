package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	state byte   // R, S, D, Z, ...
	ppid  int    // parent
	start uint64 // start time in clock ticks since boot
}

// readProc returns os.ErrNotExist (wrapped) when the process is gone.
func readProc(pid int) (procInfo, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// the command name may contain spaces and parentheses: fields follow the last ')'
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("while parsing /proc/%d/stat: no ')'", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return procInfo{}, fmt.Errorf("while parsing /proc/%d/stat: %d fields", pid, len(fields))
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procInfo{}, fmt.Errorf("while parsing the ppid in /proc/%d/stat: %w", pid, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("while parsing the start time in /proc/%d/stat: %w", pid, err)
	}
	return procInfo{state: fields[0][0], ppid: ppid, start: start}, nil
}

// procRef names one process instance: a PID plus its start time.
type procRef struct {
	pid   int
	start uint64
}

// alive says whether the very process p (not a recycled PID) still runs.
func (p procRef) alive() bool {
	if p.pid <= 0 {
		return false
	}
	info, err := readProc(p.pid)
	return err == nil && info.start == p.start && info.state != 'Z' && info.state != 'X'
}

// kill sends SIGKILL to p if it is still the same process.
func (p procRef) kill() error {
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("while killing pid %d: %w", p.pid, err)
	}
	return nil
}

// foreignZombieGrace is how long a dead process whose parent is not this
// process is waited for: only its parent can reap it. On this machine PID 1
// reaps orphans about every 2 s.
const foreignZombieGrace = 3 * time.Second

// waitGone waits until every process in procs has exited and been reaped.
// Our own children are reaped by the goroutine started with them; a zombie
// of another parent is waited for zombieGrace and then taken as dead (it
// holds no resources, only its PID).
func waitGone(ctx context.Context, procs []procRef, timeout, zombieGrace time.Duration) error {
	deadline := time.Now().Add(timeout)
	zombieSince := map[int]time.Time{}
	for {
		remaining := procs[:0:0]
		for _, p := range procs {
			info, err := readProc(p.pid)
			if err != nil || info.start != p.start {
				continue // gone (or the PID was reused: the process we meant is gone)
			}
			if info.state == 'Z' || info.state == 'X' {
				if info.ppid != os.Getpid() {
					if _, seen := zombieSince[p.pid]; !seen {
						zombieSince[p.pid] = time.Now()
					}
					if time.Since(zombieSince[p.pid]) >= zombieGrace {
						continue
					}
				}
			}
			remaining = append(remaining, p)
		}
		procs = remaining
		if len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids := make([]string, len(procs))
			for i, p := range procs {
				pids[i] = strconv.Itoa(p.pid)
			}
			return fmt.Errorf("processes %s did not exit within %s", strings.Join(pids, ", "), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// allPIDs lists the numeric entries of /proc.
func allPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("while listing /proc: %w", err)
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// findChild returns the first child of parent, waiting up to timeout for it
// to be forked (this kernel has no /proc/<pid>/task/<pid>/children).
func findChild(ctx context.Context, parent procRef, timeout time.Duration) (procRef, error) {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := allPIDs()
		if err != nil {
			return procRef{}, err
		}
		for _, pid := range pids {
			if info, err := readProc(pid); err == nil && info.ppid == parent.pid {
				return procRef{pid, info.start}, nil
			}
		}
		if !parent.alive() {
			return procRef{}, fmt.Errorf("pid %d exited before forking the node init", parent.pid)
		}
		if time.Now().After(deadline) {
			return procRef{}, fmt.Errorf("pid %d forked no node init within %s", parent.pid, timeout)
		}
		select {
		case <-ctx.Done():
			return procRef{}, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// procsMentioning finds processes of the given executables (base names)
// whose command line contains one of needles: node processes of a lab whose
// state was lost, found by their init script or sshd config path. Substrings,
// not whole arguments: sshd rewrites its argv into one string.
func procsMentioning(exeNames []string, needles []string) []procRef {
	pids, err := allPIDs()
	if err != nil {
		return nil
	}
	var found []procRef
	for _, pid := range pids {
		if pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		if err != nil || !slices.Contains(exeNames, filepath.Base(strings.TrimSuffix(exe, " (deleted)"))) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		if slices.ContainsFunc(needles, func(n string) bool { return bytes.Contains(cmdline, []byte(n)) }) {
			if info, err := readProc(pid); err == nil {
				found = append(found, procRef{pid, info.start})
			}
		}
	}
	return found
}

// reapInBackground waits for a started keeper process in a goroutine, so a
// killed node does not linger as a zombie of a long-running caller such as a
// test binary. A caller that exits leaves the reaping to PID 1.
func reapInBackground(cmd *exec.Cmd) {
	go func() { _ = cmd.Wait() }()
}

// listeningOn says whether some socket of pid's network namespace listens on
// addr:port (TCP, IPv4). Reading /proc/<pid>/net/tcp checks readiness
// without a connection from outside, so it works while the node's link is
// down.
func listeningOn(pid int, addr string, port int) (bool, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/tcp")
	if err != nil {
		return false, err
	}
	want := procNetAddr(addr, port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" { // 0A = TCP_LISTEN
			return true, nil
		}
	}
	return false, nil
}

// procNetAddr formats an IPv4 address and port as /proc/net/tcp shows them
// (address in host byte order, little-endian here).
func procNetAddr(addr string, port int) string {
	var a [4]int
	fmt.Sscanf(addr, "%d.%d.%d.%d", &a[0], &a[1], &a[2], &a[3])
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port)
}
