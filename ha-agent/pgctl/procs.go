package pgctl

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Finding PostgreSQL's processes. Every PostgreSQL process (postmaster,
// backends, auxiliary processes, archive commands) runs with the data
// directory as its working directory, and keeps it after its postmaster
// died and it was re-parented. That is how the agent finds backends of a
// postmaster that is gone (PostgreSQL backends call setsid(), so they are
// not in the postmaster's process group).

// alive reports whether pid exists and is not a zombie: a zombie cannot
// acknowledge anything.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ..."; comm may contain spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// childrenOf lists the direct children of a single-threaded process (the
// postmaster), from /proc/<pid>/task/<pid>/children.
func childrenOf(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// processesIn lists live processes whose working directory is dir
// (resolved), except the caller.
func processesIn(dir string) []int {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		want = dir
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || cwd != want {
			continue
		}
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// killAndWait SIGKILLs pids and waits until none is alive or timeout.
func killAndWait(pids []int, timeout time.Duration) (left []int) {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(timeout)
	for {
		left = left[:0]
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// readPostmasterPID returns the pid in <data>/postmaster.pid (0 if none).
func readPostmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, errors.New("postmaster.pid: first line is not a pid")
	}
	return pid, nil
}
