package lab

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// etcd's own disk. etcd fsyncs its WAL on every write and stops answering (its members call an
// election) while an fsync stalls; the agents' leader leases are sub-second, so a stall on a disk
// shared with PostgreSQL, pgBackRest and the rest of the machine fences a healthy primary and
// moves the leader (seen on the lab: a bulk write with `sync` beside it moves the leader within
// seconds, and a CI machine did it once unprovoked). Production gives etcd its own disk; the lab
// has one disk, so each etcd member's data directory is a memory file system mounted on the
// machine, below the lab dir. It lives in the machine's mount namespace, so a node restart (a
// chaos node crash) keeps it, as a disk would; a machine reboot empties it and the lab's etcd
// starts as a new cluster (the lab's DCS is then empty: `pigwf lab down`, then `make demo`).
const (
	// etcdDiskSize bounds a member's memory file system: etcd 3.4 preallocates 64 MiB WAL
	// segments, and a lab's keyspace is a few MiB.
	etcdDiskSize = "512m"
)

// ensureEtcdDisks mounts each etcd member's memory file system over its data directory, once,
// before the member first starts. A data directory that already holds data (a lab created
// before the lab did this) stays on disk: mounting over it would hide a running member's files.
func ensureEtcdDisks(l layout, st *labState) error {
	uid, gid := 0, 0
	if u, err := user.Lookup("etcd"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	mounted, err := mountPointsOfThisNamespace()
	if err != nil {
		return err
	}
	for _, n := range st.Nodes[:min(st.Etcd, len(st.Nodes))] {
		dir := l.nodeFS(n.Name, etcdDataDir)
		if mounted[dir] {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("while creating %s: %w", dir, err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("while reading %s: %w", dir, err)
		}
		if len(entries) > 0 {
			continue
		}
		opts := fmt.Sprintf("mode=0700,size=%s,uid=%d,gid=%d", etcdDiskSize, uid, gid)
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return fmt.Errorf("lab %s: mounting etcd's memory file system on %s: %w", st.Name, dir, err)
		}
	}
	return nil
}

// releaseEtcdDisks unmounts the etcd members' memory file systems below dir (the lab's
// members are stopped): Down's removal of the lab dir could not remove a mount point.
func releaseEtcdDisks(dir string) error {
	mounted, err := mountPointsOfThisNamespace()
	if err != nil {
		return err
	}
	nodes := filepath.Join(dir, "nodes") + string(filepath.Separator)
	var errs []error
	for p := range mounted {
		if strings.HasPrefix(p, nodes) && strings.HasSuffix(p, etcdDataDir) {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("while unmounting %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountPointsOfThisNamespace is the set of mount points of the caller's mount namespace.
func mountPointsOfThisNamespace() (map[string]bool, error) {
	out := map[string]bool{}
	if err := readMountPoints("/proc/self/mountinfo", out); err != nil {
		return nil, fmt.Errorf("while reading the mount table: %w", err)
	}
	return out, nil
}
