package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// privateMount is a path that each node sees from its own directory
// Dir/nodes/nI/fs/<path>, seeded on first creation.
type privateMount struct {
	target string
	isDir  bool
	mode   os.FileMode
	owner  string                                // "root", "postgres" or "etcd" (user and group)
	seed   func(node string, addr string) string // content of a file on first creation
	// ownerOptional: root owns it when the owner account does not exist
	// (the etcd account comes with etcd-server, which a lab without etcd may lack)
	ownerOptional bool
}

// nodePrivateMounts are the node-private paths: what a real host keeps for
// itself (PKI, PostgreSQL data and sockets, backups, pigwf state, identity).
// /pg and /etc/pki start empty: pigwf's NodeInit runbook fills them.
var nodePrivateMounts = []privateMount{
	{target: "/etc/pki", isDir: true, mode: 0o755, owner: "root"},
	{target: "/pg", isDir: true, mode: 0o755, owner: "root"},
	{target: "/var/run/postgresql", isDir: true, mode: 0o775 | os.ModeSetgid, owner: "postgres"},
	{target: "/var/lib/pgbackrest", isDir: true, mode: 0o750, owner: "postgres"},
	{target: "/var/lib/postgresql", isDir: true, mode: 0o755, owner: "postgres"}, // postgres's home
	{target: "/var/lib/pigwf", isDir: true, mode: 0o755, owner: "root"},
	{target: "/etc/pigwf", isDir: true, mode: 0o755, owner: "root"},   // holds boot.d, the node's boot services
	{target: "/etc/haproxy", isDir: true, mode: 0o755, owner: "root"}, // the node's HAProxy configuration (pg-service)
	// logs of the boot services (boot.log, etcd.log): /var/log itself is shared by all nodes
	{target: "/var/log/pigwf", isDir: true, mode: 0o755, owner: "root"},
	{target: "/var/lib/etcd", isDir: true, mode: 0o700, owner: "etcd", ownerOptional: true},
	// root's own home, as on a real host: the build machine's /root (toolchains, a heavy .bashrc
	// that bash runs for every SSH command) is no part of a node.
	{target: "/root", isDir: true, mode: 0o700, owner: "root"},
	{target: "/etc/sysctl.d", isDir: true, mode: 0o755, owner: "root"},
	{target: "/etc/security/limits.d", isDir: true, mode: 0o755, owner: "root"},
	{target: "/etc/hosts", mode: 0o644, owner: "root", seed: func(node, addr string) string {
		return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + addr + "\t" + node + "\n"
	}},
	{target: "/etc/hostname", mode: 0o644, owner: "root", seed: func(node, _ string) string { return node + "\n" }},
	{target: "/etc/pgbackrest.conf", mode: 0o640, owner: "postgres", seed: func(string, string) string { return "" }},
}

// sharedMount is a lab-wide directory every node sees at target.
type sharedMount struct {
	target string
	name   string // directory below Dir/shared
}

var sharedMounts = []sharedMount{
	{target: "/etc/ssh/ssh_config.d", name: "ssh_config.d"},
	{target: "/etc/sudoers.d", name: "sudoers.d"},
}

// sshdPrivsepDir must exist for sshd to start. It is the standard runtime
// directory of openssh-server, shared with every other sshd on the machine,
// so the lab creates it when missing but never removes it.
const sshdPrivsepDir = "/run/sshd"

// seedNodeFS creates node's private directories and files where missing.
func seedNodeFS(l layout, node, addr string) error {
	for _, m := range nodePrivateMounts {
		path := l.nodeFS(node, m.target)
		if _, err := os.Lstat(path); err == nil {
			continue // seeded before: its content belongs to the node now
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("while creating %s: %w", filepath.Dir(path), err)
		}
		if m.isDir {
			if err := os.Mkdir(path, 0o700); err != nil {
				return fmt.Errorf("while creating %s: %w", path, err)
			}
		} else if err := os.WriteFile(path, []byte(m.seed(node, addr)), 0o600); err != nil {
			return fmt.Errorf("while seeding %s: %w", path, err)
		}
		uid, gid, err := lookupIDs(m.owner)
		if err != nil && m.ownerOptional {
			uid, gid, err = 0, 0, nil
		}
		if err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("while setting the owner of %s: %w", path, err)
		}
		if err := os.Chmod(path, m.mode); err != nil { // after chown, which clears setgid
			return fmt.Errorf("while setting the mode of %s: %w", path, err)
		}
	}
	return nil
}

// mountPointRegistry is the machine-wide list of root-filesystem paths that
// some lab created. Labs share those paths (every lab binds over /pg), so
// the last Down removes them, not the lab that happened to create them.
const mountPointRegistry = "/run/pigwf-lab-mount-points.json"

func readRegistry() ([]string, error) {
	data, err := os.ReadFile(mountPointRegistry)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading %s: %w", mountPointRegistry, err)
	}
	var paths []string
	if err := json.Unmarshal(data, &paths); err != nil {
		return nil, fmt.Errorf("while parsing %s: %w", mountPointRegistry, err)
	}
	return paths, nil
}

func writeRegistry(paths []string) error {
	if len(paths) == 0 {
		if err := os.Remove(mountPointRegistry); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("while removing %s: %w", mountPointRegistry, err)
		}
		return nil
	}
	data, err := json.Marshal(paths)
	if err != nil {
		return fmt.Errorf("while encoding the mount point registry: %w", err)
	}
	return writeFileAtomic(mountPointRegistry, append(data, '\n'), 0o644)
}

// ensureMountPoints creates the root-filesystem mount points (and their
// missing parents) the nodes bind over, records what it created in st and in
// the machine-wide registry. Call with the machine lock held.
func ensureMountPoints(st *labState) error {
	registry, err := readRegistry()
	if err != nil {
		return err
	}
	var created []string
	create := func(path string, isDir bool) error {
		fi, err := os.Stat(path)
		if err == nil {
			if fi.IsDir() != isDir {
				return fmt.Errorf("lab: %s exists but is not a %s", path, map[bool]string{true: "directory", false: "file"}[isDir])
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("while checking mount point %s: %w", path, err)
		}
		// create missing parents one by one so each is recorded
		var missing []string
		for p := filepath.Dir(path); p != "/"; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); err == nil {
				break
			}
			missing = append(missing, p)
		}
		for _, p := range slices.Backward(missing) {
			if err := os.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("while creating %s: %w", p, err)
			}
			created = append(created, p)
		}
		if isDir {
			err = os.Mkdir(path, 0o755)
		} else {
			err = os.WriteFile(path, nil, 0o644)
		}
		if err != nil {
			return fmt.Errorf("while creating mount point %s: %w", path, err)
		}
		created = append(created, path)
		return nil
	}
	var errs []error
	for _, m := range nodePrivateMounts {
		errs = append(errs, create(m.target, m.isDir))
	}
	for _, m := range sharedMounts {
		errs = append(errs, create(m.target, true))
	}
	if _, err := os.Stat(sshdPrivsepDir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(sshdPrivsepDir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("while creating %s: %w", sshdPrivsepDir, err))
		}
	}
	// record even after an error: what was created must be removable
	for _, p := range created {
		if !slices.Contains(st.CreatedMountPoints, p) {
			st.CreatedMountPoints = append(st.CreatedMountPoints, p)
		}
		if !slices.Contains(registry, p) {
			registry = append(registry, p)
		}
	}
	if len(created) > 0 {
		errs = append(errs, writeRegistry(registry))
	}
	return errors.Join(errs...)
}

// mountPointsInUse lists the mount points of every mount namespace on the
// machine (one process per namespace is read).
func mountPointsInUse() (map[string]bool, error) {
	pids, err := allPIDs()
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	inUse := map[string]bool{}
	for _, pid := range pids {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/mnt", &st); err != nil || seen[st.Ino] {
			continue
		}
		if err := readMountPoints("/proc/"+strconv.Itoa(pid)+"/mountinfo", inUse); err != nil {
			continue // exited meanwhile
		}
		seen[st.Ino] = true
	}
	return inUse, nil
}

// readMountPoints adds the mount points listed in a mountinfo file to into.
func readMountPoints(mountinfo string, into map[string]bool) error {
	f, err := os.Open(mountinfo)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options ...
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			into[unescapeMountinfo(fields[4])] = true
		}
	}
	return sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space...) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeMountPoints removes the registered (and st's) created mount points
// that no mount namespace uses any more, deepest first; an emptied registry
// is deleted. A directory that is no longer empty or a file that is no
// longer empty was taken over by someone else: it is kept and forgotten.
// Call with the machine lock held, after the lab's nodes are dead.
func removeMountPoints(st *labState) error {
	registry, err := readRegistry()
	if err != nil {
		return err
	}
	candidates := slices.Clone(registry)
	if st != nil {
		for _, p := range st.CreatedMountPoints {
			if !slices.Contains(candidates, p) {
				candidates = append(candidates, p)
			}
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	inUse, err := mountPointsInUse()
	if err != nil {
		return err
	}
	// deepest first, so a created parent is empty when its turn comes
	slices.SortFunc(candidates, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var keep []string
	var errs []error
	for _, p := range candidates {
		if inUse[p] || slices.ContainsFunc(keep, func(k string) bool { return strings.HasPrefix(k, p+"/") }) {
			keep = append(keep, p) // another lab's nodes bind over it (or over a path below it)
			continue
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("while checking %s: %w", p, err))
			keep = append(keep, p)
			continue
		}
		if !fi.IsDir() && fi.Size() > 0 {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("while removing mount point %s: %w", p, err))
			keep = append(keep, p)
		}
	}
	slices.Sort(keep)
	errs = append(errs, writeRegistry(keep))
	return errors.Join(errs...)
}
