package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// labState is Dir/state.json: what Up created, so Down, Load and the fault
// helpers can find it again from another process.
type labState struct {
	Name               string      `json:"name"`
	Subnet             string      `json:"subnet"`
	Cluster            string      `json:"cluster"`            // the first of Clusters ("" with none), as labs before Clusters wrote it
	Clusters           []string    `json:"clusters,omitempty"` // PostgreSQL clusters, the first nodes split evenly over them (groups.go)
	Bare               int         `json:"bare,omitempty"`     // the last Bare nodes are in no PostgreSQL cluster
	Bridge             string      `json:"bridge"`
	NFTable            string      `json:"nft_table"`
	CreatedMountPoints []string    `json:"created_mount_points"` // paths this lab created in the root filesystem
	Etcd               int         `json:"etcd"`                 // etcd members, on nodes 1..Etcd; 0: none
	CADir              string      `json:"ca_dir"`               // the deployment CA the lab's etcd trusts
	Plaintext          bool        `json:"plaintext,omitempty"`  // etcd, agents and replication without TLS
	Nodes              []nodeState `json:"nodes"`
	// InventorySum is the sha256 of the inventory.yml Up last wrote: a file that no longer
	// matches it was changed by someone else, and Up keeps it.
	InventorySum string `json:"inventory_sha256,omitempty"`
}

type nodeState struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`
	NetNS string `json:"netns"`
	Veth  string `json:"veth"`
	// PID is the node's init (its sshd, PID 1 in the node's PID namespace);
	// the start times guard against a recycled PID being killed or reported.
	PID       int    `json:"pid"`
	PIDStart  uint64 `json:"pid_start"`
	Keeper    int    `json:"keeper_pid"` // the unshare process that forked the init and reaps it
	KeepStart uint64 `json:"keeper_start"`
}

// layout names the files below Dir.
type layout struct{ dir string }

func (l layout) marker() string         { return filepath.Join(l.dir, ".pigwf-lab") }
func (l layout) state() string          { return filepath.Join(l.dir, "state.json") }
func (l layout) inventory() string      { return filepath.Join(l.dir, "inventory.yml") }
func (l layout) sshDir() string         { return filepath.Join(l.dir, "ssh") }
func (l layout) sshKey() string         { return filepath.Join(l.dir, "ssh", "id_ed25519") }
func (l layout) knownHosts() string     { return filepath.Join(l.dir, "ssh", "known_hosts") }
func (l layout) authorizedKeys() string { return filepath.Join(l.dir, "authorized_keys") }
func (l layout) shared(name string) string {
	return filepath.Join(l.dir, "shared", name)
}
func (l layout) nodeDir(node string) string { return filepath.Join(l.dir, "nodes", node) }
func (l layout) nodeFS(node, target string) string {
	return filepath.Join(l.dir, "nodes", node, "fs", target)
}
func (l layout) sshdConfig(node string) string {
	return filepath.Join(l.dir, "nodes", node, "sshd_config")
}
func (l layout) hostKey(node string) string {
	return filepath.Join(l.dir, "nodes", node, "ssh_host_ed25519_key")
}
func (l layout) initScript(node string) string {
	return filepath.Join(l.dir, "nodes", node, "init.sh")
}
func (l layout) sshdLog(node string) string {
	return filepath.Join(l.dir, "nodes", node, "sshd.log")
}

// bootLog and etcdLog are node-private files, seen by the node at
// /var/log/pigwf/boot.log and /var/log/pigwf/etcd.log.
func (l layout) bootLog(node string) string { return l.nodeFS(node, bootLogPath) }
func (l layout) etcdLog(node string) string { return l.nodeFS(node, etcdLogPath) }

var errNoState = errors.New("no lab state")

func readState(dir string) (*labState, error) {
	data, err := os.ReadFile(layout{dir}.state())
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoState
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the lab state: %w", err)
	}
	var st labState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("while parsing %s: %w", layout{dir}.state(), err)
	}
	return &st, nil
}

func writeState(dir string, st *labState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the lab state: %w", err)
	}
	return writeFileAtomic(layout{dir}.state(), append(data, '\n'), 0o644)
}

// writeFileAtomic replaces path so readers never see a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("while writing %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode is masked by the umask
		return fmt.Errorf("while setting the mode of %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("while renaming %s: %w", tmp, err)
	}
	return nil
}

// machineLockPath is locked (flock) by Up, Down and StartNode so labs do
// not race each other on the root-filesystem mount points they share. A
// directory that always exists is locked so no lock file is left behind.
const machineLockPath = "/run"

// lockMachine takes the machine-wide lab lock; call the returned func to
// release it.
func lockMachine() (func(), error) {
	f, err := os.Open(machineLockPath)
	if err != nil {
		return nil, fmt.Errorf("while opening %s to lock it: %w", machineLockPath, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("while locking %s: %w", machineLockPath, err)
	}
	return func() { f.Close() }, nil
}
