package lab

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// tools holds the absolute paths of the host binaries the lab drives.
type tools struct {
	ip, sshd, nsenter, unshare, mount, nft, sh string
}

// requiredBinary is one binary the lab needs, with the places Debian puts it
// and the package that provides it (for the error message).
type requiredBinary struct {
	candidates []string
	pkg        string
	dest       func(*tools) *string
}

var requiredBinaries = []requiredBinary{
	{[]string{"/usr/sbin/sshd"}, "openssh-server", func(t *tools) *string { return &t.sshd }},
	{[]string{"/usr/bin/ip", "/usr/sbin/ip", "/sbin/ip", "/bin/ip"}, "iproute2", func(t *tools) *string { return &t.ip }},
	{[]string{"/usr/bin/nsenter", "/bin/nsenter"}, "util-linux", func(t *tools) *string { return &t.nsenter }},
	{[]string{"/usr/bin/unshare", "/bin/unshare"}, "util-linux", func(t *tools) *string { return &t.unshare }},
	{[]string{"/usr/bin/mount", "/bin/mount"}, "mount", func(t *tools) *string { return &t.mount }},
	{[]string{"/usr/sbin/nft", "/sbin/nft"}, "nftables", func(t *tools) *string { return &t.nft }},
	{[]string{"/bin/sh", "/usr/bin/sh"}, "dash", func(t *tools) *string { return &t.sh }},
}

// findTools resolves every required binary; the error is one line that says
// what to install.
func findTools() (tools, error) {
	var t tools
	for _, b := range requiredBinaries {
		found := ""
		for _, p := range b.candidates {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				found = p
				break
			}
		}
		if found == "" {
			return tools{}, fmt.Errorf("lab: missing %s: run `make deps` (apt-get install %s)", b.candidates[0], b.pkg)
		}
		*b.dest(&t) = found
	}
	return t, nil
}

var errNotRoot = errors.New("lab: must run as root (it creates network namespaces, bridges and bind mounts): run it with sudo")

// checkHost verifies the caller can run a lab here: root, binaries, the
// postgres account (node directories are seeded with its ownership).
func checkHost() (tools, error) {
	if os.Geteuid() != 0 {
		return tools{}, errNotRoot
	}
	t, err := findTools()
	if err != nil {
		return tools{}, err
	}
	if _, _, err := lookupIDs("postgres"); err != nil {
		return tools{}, err
	}
	return t, nil
}

// lookupIDs returns the uid and primary gid of a local account.
func lookupIDs(name string) (uid, gid int, err error) {
	if name == "root" {
		return 0, 0, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("lab: missing user %s: run `make deps` (apt-get install postgresql-15)", name)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("while reading the uid of %s: %w", name, err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("while reading the gid of %s: %w", name, err)
	}
	return uid, gid, nil
}
