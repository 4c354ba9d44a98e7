// Package activities holds pigwf's idempotent activities and the SSH runner (sshrun) they use.
//
// Every activity checks, then changes, and reports each change like a playbook does:
// a StepResult says whether anything changed and what. Every change made on a node is also
// appended to the node's journal (/var/lib/pigwf/journal.log), so an operator (and the crash
// tests) can see exactly what pigwf did there and that nothing was done twice.
package activities

import (
	"github.com/pigwf/pigwf/activities/sshrun"
)

// Node identifies one host and how to reach it. It travels in workflow history, so it holds
// only paths and names, never key material or passwords.
type Node struct {
	Addr       string `json:"addr"`     // inventory address
	Name       string `json:"name"`     // nodename (hostname to set)
	SSHHost    string `json:"ssh_host"` // where to dial
	SSHPort    int    `json:"ssh_port"`
	SSHUser    string `json:"ssh_user"`
	SSHKeyFile string `json:"ssh_key_file,omitempty"`
	KnownHosts string `json:"known_hosts,omitempty"`
}

// Target is the SSH target for the node.
func (n Node) Target() sshrun.Target {
	return sshrun.Target{Host: n.SSHHost, Port: n.SSHPort, User: n.SSHUser, KeyFile: n.SSHKeyFile, KnownHosts: n.KnownHosts}
}

// String names the node the way messages do: "pg-test-1 (10.213.0.11)".
func (n Node) String() string {
	if n.Name == "" || n.Name == n.Addr {
		return n.Addr
	}
	return n.Name + " (" + n.Addr + ")"
}

// StepResult is what one step did on one node.
type StepResult struct {
	Node    string   `json:"node"`
	Step    string   `json:"step"`
	Changed bool     `json:"changed"`
	Changes []string `json:"changes,omitempty"` // one line per change made
	Notes   []string `json:"notes,omitempty"`   // things checked and left alone, or skipped
	// Facts are values a later step needs (a system identifier, an LSN); never secrets.
	Facts map[string]string `json:"facts,omitempty"`
}

// Summary is a one-line description: "changed: a; b" or "unchanged".
func (r StepResult) Summary() string {
	if !r.Changed {
		if len(r.Notes) > 0 {
			return "unchanged (" + joinShort(r.Notes) + ")"
		}
		return "unchanged"
	}
	return "changed: " + joinShort(r.Changes)
}

func joinShort(items []string) string {
	out := ""
	for i, s := range items {
		if i > 0 {
			out += "; "
		}
		if len(out) > 160 {
			return out + "..."
		}
		out += s
	}
	return out
}

// Error types of non-retryable application errors.
const (
	ErrHostKey  = "HostKeyError"
	ErrAuth     = "SSHAuthError"
	ErrConfig   = "ConfigError"
	ErrConflict = "NodeConflict"
)
