package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// nodeReadyTimeout bounds how long a started node may take to listen on :22.
const nodeReadyTimeout = 15 * time.Second

// Node paths of the boot services (node-private: /etc/pigwf and
// /var/log/pigwf are bound from the node's own directory).
const (
	bootDir     = "/etc/pigwf/boot.d"       // executables run at every node start, by name
	bootLogPath = "/var/log/pigwf/boot.log" // their stdout and stderr
)

// sshdConfig is the node's whole sshd configuration (no Include of the
// host's /etc/ssh/sshd_config.d: the host's settings must not leak in).
func sshdConfig(l layout, labName string, n nodeState) string {
	return fmt.Sprintf(`# pigwf lab %s, node %s: written by `+"`pigwf lab up`"+`
ListenAddress %s:22
HostKey %s
# sshd runs in the foreground as the node's PID 1: no pid file is needed
PidFile none
# PAM: the postgres account's password is locked, which sshd refuses without PAM
UsePAM yes
# authorized keys live in the lab dir, whose owner and modes sshd would reject
StrictModes no
AuthorizedKeysFile %s/%%u
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
# runbooks open many sessions and connections in parallel
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
`, labName, n.Name, n.Addr, l.hostKey(n.Name), l.authorizedKeys())
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// initScript is what the node's PID 1 runs before it becomes sshd: it is
// already in the node's network, UTS, PID and (private) mount namespaces.
// It binds the node's files, starts the boot services, then execs sshd.
func initScript(l layout, t tools, labName string, n nodeState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# pigwf lab %s, node %s: run as PID 1 of the node's PID namespace by `unshare`;\n", labName, n.Name)
	b.WriteString("# binds the node's own directories over the shared root filesystem, starts the boot services, then becomes sshd.\nset -e\n")
	// --rbind: with what is mounted below it on the machine (etcd's memory file system)
	for _, m := range nodePrivateMounts {
		fmt.Fprintf(&b, "mount --rbind %s %s\n", shellQuote(l.nodeFS(n.Name, m.target)), shellQuote(m.target))
	}
	for _, m := range sharedMounts {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shellQuote(l.shared(m.name)), shellQuote(m.target))
	}
	// A real host's /run is a tmpfs, empty at every boot: PostgreSQL's
	// socket lock files do not survive a node restart there either.
	b.WriteString("find /var/run/postgresql -mindepth 1 -delete\n")
	// Its own /dev/shm, as a host has: PostgreSQL's shared memory segments
	// go away with the node instead of piling up in the machine's memory.
	b.WriteString("mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm\n")
	fmt.Fprintf(&b, "echo %s > /proc/sys/kernel/hostname\n", n.Name)
	// Boot services, like the systemd units a real host starts at boot. They
	// are in the node's PID namespace, so they die with the node. sshd as PID 1
	// reaps them and any orphan: OpenSSH's SIGCHLD handler waits for any child
	// (waitpid(-1)). Only a child that exits in the instant between this
	// shell's last wait and sshd setting that handler stays a zombie until the
	// next child exits (the first SSH session, say): none pile up.
	fmt.Fprintf(&b, `# boot services: every executable in %[1]s, by name (the glob sorts bytewise), in the background;
# not *.tmp: a file still being written (writeFileAtomic). env --default-signal undoes the
# SIGINT/SIGQUIT ignore that sh gives background jobs: a service starts as systemd would start it.
for f in %[1]s/*; do
	case "$f" in *.tmp) continue ;; esac
	if [ -f "$f" ] && [ -x "$f" ]; then
		echo "$(date '+%%F %%T.%%N') pigwf lab: %[3]s boots $f" >>%[2]s
		env --default-signal "$f" </dev/null >>%[2]s 2>&1 &
	fi
done
`, bootDir, bootLogPath, n.Name)
	fmt.Fprintf(&b, "exec %s -D -e -f %s\n", t.sshd, shellQuote(l.sshdConfig(n.Name)))
	return b.String()
}

// startNode starts node n as its own host: `ip netns exec` puts it in its
// network namespace, `unshare` forks its init in new UTS, PID and mount
// namespaces; the init binds the private directories and execs sshd. The
// process gets its own session and /dev/null as stdin, so it outlives the
// caller. n's PIDs are filled in; the caller saves the state.
func startNode(ctx context.Context, t tools, l layout, n *nodeState) error {
	logFile, err := os.OpenFile(l.sshdLog(n.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("while opening the sshd log of node %s: %w", n.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "pigwf lab: starting node %s at %s\n", n.Name, time.Now().Format(time.RFC3339Nano))
	// --kill-child: if the keeper dies, the kernel kills the node's init too
	cmd := exec.Command(t.ip, "netns", "exec", n.NetNS,
		t.unshare, "--uts", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
		t.sh, l.initScript(n.Name))
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = logFile, logFile // files, not pipes: no copying goroutine, no pipe held open
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting node %s: %w", n.Name, err)
	}
	info, err := readProc(cmd.Process.Pid)
	reapInBackground(cmd)
	if err != nil {
		return fmt.Errorf("while starting node %s: keeper exited at once: %s", n.Name, logTail(l.sshdLog(n.Name)))
	}
	keeper := procRef{cmd.Process.Pid, info.start}
	init, err := findChild(ctx, keeper, 5*time.Second)
	if err != nil {
		return fmt.Errorf("while starting node %s: %w: %s", n.Name, err, logTail(l.sshdLog(n.Name)))
	}
	n.Keeper, n.KeepStart = keeper.pid, keeper.start
	n.PID, n.PIDStart = init.pid, init.start
	return nil
}

// waitNodeReady waits until node n's sshd listens on its address.
func waitNodeReady(ctx context.Context, l layout, n nodeState) error {
	init := procRef{n.PID, n.PIDStart}
	deadline := time.Now().Add(nodeReadyTimeout)
	for {
		if !init.alive() {
			return fmt.Errorf("while starting node %s: its init (pid %d) exited: %s", n.Name, n.PID, logTail(l.sshdLog(n.Name)))
		}
		if ok, _ := listeningOn(n.PID, n.Addr, 22); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("while starting node %s: sshd not listening on %s:22 after %s: %s", n.Name, n.Addr, nodeReadyTimeout, logTail(l.sshdLog(n.Name)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while starting node %s: %w", n.Name, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of a log, on one line, for error messages.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(string(bytes.TrimSpace(data)), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	return path + ": " + strings.Join(lines, " | ")
}
