package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func inNamedNetns(pid int, name string) bool {
	var procNS, named syscall.Stat_t
	if syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &procNS) != nil || syscall.Stat(netnsPath(name), &named) != nil {
		return false
	}
	return procNS.Dev == named.Dev && procNS.Ino == named.Ino
}

func killAndWait(ctx context.Context, procs []procRef, zombieGrace time.Duration) error {
	var nodeProcs, keepers []procRef
	seen := map[procRef]bool{}
	for _, p := range procs {
		if p.pid <= 0 || p.pid == os.Getpid() || seen[p] || !p.alive() {
			continue
		}
		seen[p] = true
		if exe, _ := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/exe"); filepath.Base(exe) == "unshare" {
			keepers = append(keepers, p)
		} else {
			nodeProcs = append(nodeProcs, p)
		}
	}
	var errs []error
	for _, group := range [][]procRef{nodeProcs, keepers} {
		for _, p := range group {
			if err := p.kill(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := waitGone(ctx, group, 15*time.Second, zombieGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func stopNode(ctx context.Context, n *nodeState) error {
	init := procRef{n.PID, n.PIDStart}
	if err := init.kill(); err != nil {
		return fmt.Errorf("while stopping node %s: %w", n.Name, err)
	}
	if err := waitGone(ctx, []procRef{init}, 10*time.Second, foreignZombieGrace); err != nil {
		return fmt.Errorf("while stopping node %s: %w", n.Name, err)
	}
	return nil
}

func killStrays(ctx context.Context, t tools, l layout, n nodeState) error {
	var strays []procRef
	if _, live := netnsState(n.NetNS); live {
		strays = append(strays, netnsPIDs(ctx, t, n.NetNS)...)
	}
	strays = append(strays, procsMentioning(nodeProcessExes, []string{l.initScript(n.Name), l.sshdConfig(n.Name)})...)
	// a dead stray needs no reaping before the node starts again: it holds no port
	if err := killAndWait(ctx, strays, 0); err != nil {
		return fmt.Errorf("while clearing node %s: %w", n.Name, err)
	}
	return nil
}

func Down(ctx context.Context, c Config) error {
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	t, err := findTools()
	if err != nil {
		return err
	}
	unlock, err := lockMachine()
	if err != nil {
		return err
	}
	defer unlock()

	st, err := readState(c.Dir)
	if err != nil {
		st = nil // unreadable or absent: clean up by names instead
	}
	l := layout{c.Dir}
	// every process of the lab: recorded inits and keepers, anything in the
	// lab's namespaces, and unrecorded node processes found by their files
	var found []procRef
	var needles []string
	namespaces := map[string]bool{}
	for i := 1; i <= maxNodes; i++ {
		namespaces[netnsName(c.Name, i)] = true
		needles = append(needles, l.initScript(nodeName(i)), l.sshdConfig(nodeName(i)))
	}
	if st != nil {
		for _, n := range st.Nodes {
			found = append(found, procRef{n.PID, n.PIDStart}, procRef{n.Keeper, n.KeepStart})
			namespaces[n.NetNS] = true
		}
	}
	for ns := range namespaces {
		if _, live := netnsState(ns); live {
			found = append(found, netnsPIDs(ctx, t, ns)...)
		}
	}
	found = append(found, procsMentioning(nodeProcessExes, needles)...)
	var errs []error
	if err := killAndWait(ctx, found, foreignZombieGrace); err != nil {
		errs = append(errs, fmt.Errorf("while stopping the nodes of lab %s: %w", c.Name, err))
	}
	if err := deleteNetwork(ctx, t, c.Name, st); err != nil {
		errs = append(errs, err)
	}
	if err := releaseEtcdDisks(c.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := removeMountPoints(st); err != nil {
		errs = append(errs, err)
	}
	if err := removeLabDir(c); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("while taking lab %s down: %w", c.Name, errors.Join(errs...))
	}
	return nil
}

func removeLabDir(c Config) error {
	l := layout{c.Dir}
	if _, err := os.Lstat(c.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, markerErr := os.Lstat(l.marker())
	_, stateErr := os.Lstat(l.state())
	if markerErr == nil || stateErr == nil {
		if err := os.RemoveAll(c.Dir); err != nil {
			return fmt.Errorf("while removing lab dir %s: %w", c.Dir, err)
		}
	} else if err := os.Remove(c.Dir); err != nil {
		return fmt.Errorf("lab: %s is not a pigwf lab dir (no %s): not removing it: %w", c.Dir, filepath.Base(l.marker()), err)
	}
	if filepath.Dir(c.Dir) == defaultDirRoot {
		_ = os.Remove(defaultDirRoot) // fails while other labs live there: fine
	}
	return nil
}
