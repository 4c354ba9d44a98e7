package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/deploy/lab"
)

// Processes of a lab node, seen from the host: the node's processes are those in its init's
// PID namespace. Killing by host PID from here makes the kill's timestamp exact (no nsenter
// round trip between the clock reading and the signal).

// proc is one host process.
type proc struct {
	pid   int // host PID
	nsPID int // PID inside its own namespace
	ppid  int // host PID of the parent
	exe   string
	args  []string
}

func pidNS(pid int) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/pid", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// nodeProcs lists the processes of node i (1-based) of the lab.
func nodeProcs(st *lab.Status, i int) ([]proc, error) {
	init := st.Nodes[i-1].PID
	ns, err := pidNS(init)
	if err != nil {
		return nil, fmt.Errorf("node %d (init pid %d) is not running: %w", i, init, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("while listing processes: %w", err)
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pns, err := pidNS(pid); err != nil || pns != ns {
			continue
		}
		p, ok := readProc(pid)
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProc reads a process's status, exe and command line; ok is false when it is gone.
func readProc(pid int) (proc, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return proc{}, false
	}
	p := proc{pid: pid}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "PPid":
			if len(f) > 0 {
				p.ppid, _ = strconv.Atoi(f[0])
			}
		case "NSpid":
			if len(f) > 0 {
				p.nsPID, _ = strconv.Atoi(f[len(f)-1])
			}
		}
	}
	p.exe, _ = os.Readlink(dir + "/exe")
	if cmdline, err := os.ReadFile(dir + "/cmdline"); err == nil {
		for _, a := range bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}) {
			p.args = append(p.args, string(a))
		}
	}
	return p, true
}

// postmasterPID returns the host PID of node i's postmaster: the PID in the first line of
// /pg/data/postmaster.pid (read through the node, as an operator would), mapped to the host.
func postmasterPID(ctx context.Context, st *lab.Status, i int, dataDir string) (int, error) {
	out, err := st.Exec(ctx, i, "head", "-1", filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("while reading the postmaster PID of node %d: %w: %s", i, err, out)
	}
	nsPID, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("node %d: postmaster.pid starts with %q, not a PID", i, out)
	}
	procs, err := nodeProcs(st, i)
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		if p.nsPID == nsPID && filepath.Base(p.exe) == "postgres" {
			return p.pid, nil
		}
	}
	return 0, fmt.Errorf("node %d: no postgres process with PID %d in the node (stale postmaster.pid?)", i, nsPID)
}

// agentChildPID returns the host PID of node i's pg-ha-agent worker process: the pg-ha-agent
// process that is not the `supervise` parent (its parent is the supervisor, or its command line
// lacks "supervise").
func agentChildPID(st *lab.Status, i int) (int, string, error) {
	procs, err := nodeProcs(st, i)
	if err != nil {
		return 0, "", err
	}
	byPID := map[int]proc{}
	var agents []proc
	for _, p := range procs {
		byPID[p.pid] = p
		if filepath.Base(p.exe) == "pg-ha-agent" || (len(p.args) > 0 && filepath.Base(p.args[0]) == "pg-ha-agent") {
			agents = append(agents, p)
		}
	}
	var children []proc
	for _, p := range agents {
		parent, ok := byPID[p.ppid]
		isAgentParent := ok && (filepath.Base(parent.exe) == "pg-ha-agent" || (len(parent.args) > 0 && filepath.Base(parent.args[0]) == "pg-ha-agent"))
		if isAgentParent || !containsArg(p.args, "supervise") {
			children = append(children, p)
		}
	}
	if len(children) != 1 {
		var desc []string
		for _, p := range agents {
			desc = append(desc, fmt.Sprintf("pid %d (ppid %d): %s", p.pid, p.ppid, strings.Join(p.args, " ")))
		}
		return 0, "", fmt.Errorf("node %d: want exactly one pg-ha-agent process under its supervisor, found %d among %d agent processes: %s",
			i, len(children), len(agents), strings.Join(desc, "; "))
	}
	return children[0].pid, strings.Join(children[0].args, " "), nil
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

// procAge returns how long a process has been running (its start time in /proc/PID/stat,
// in clock ticks of 1/100 s since boot, against /proc/uptime).
func procAge(pid int) (time.Duration, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// the command name (field 2) may contain spaces: fields count from after its ')'
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22: starttime
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat starttime: %w", pid, err)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return time.Duration(secs*float64(time.Second)) - time.Duration(ticks)*10*time.Millisecond, nil
}

// kill9 sends SIGKILL to a host PID.
func kill9(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("while killing pid %d: %w", pid, err)
	}
	return nil
}
