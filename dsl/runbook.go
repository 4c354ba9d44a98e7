// Package dsl is pigwf's custom runbook format: a YAML file whose steps name allow-listed step
// types with typed arguments. It has no Temporal imports: the CLI validates a file here before
// any run starts, and the interpreter workflow (workflows.Runbook) receives the parsed, validated
// Runbook.
//
// Where things live: runbook.go the types; parse.go the YAML reader (every value with its line)
// and values.go the rules of its scalar values; validate.go the rules across steps (names,
// conditions, approvals before risky steps, loops over the cluster's members); describe.go a
// step in words, for plans; problems.go Problem and Problems, each with file:line and a fix.
// docs/runbooks.md documents the format.
package dsl

import (
	"strings"
	"time"
)

// FormatVersion is the meaning of the format this package parses. Parse records it in every
// Runbook, and the interpreter runs a runbook by the meaning of its version: a change to what a
// written file does (not a new step kind or a new refusal) raises it, and the interpreter keeps
// the old meaning for the old version (behind workflow.GetVersion where its commands change).
const FormatVersion = 1

// Runbook is one parsed file.
type Runbook struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Steps       []Step `json:"steps"`
	File        string `json:"file"`
	Format      int    `json:"format"` // FormatVersion when parsed
}

// Walk calls fn for every step, a loop's steps after the loop, in file order.
func (rb *Runbook) Walk(fn func(Step)) {
	var walk func([]Step)
	walk = func(steps []Step) {
		for _, s := range steps {
			fn(s)
			if s.Kind == KindEach {
				walk(s.Each.Steps)
			}
		}
	}
	walk(rb.Steps)
}

// Kind is a step's type: one of the allow-listed kinds below.
type Kind string

// The step kinds.
const (
	KindSQL        Kind = "sql"        // run a statement on the leader, the replicas, every member or the loop's member
	KindReload     Kind = "reload"     // reload PostgreSQL's configuration on members
	KindRestart    Kind = "restart"    // restart PostgreSQL on members (risky: needs an approval before it)
	KindSwitchover Kind = "switchover" // the approval-gated switchover runbook (risky)
	KindRunbook    Kind = "runbook"    // a built-in pigwf runbook as a child run
	KindWait       Kind = "wait"       // wait until a condition holds, within a timeout
	KindApproval   Kind = "approval"   // a verified human approval
	KindEach       Kind = "each"       // the nested steps for each selected member
	KindPassword   Kind = "password"   // set a role's password from the worker's secret store (risky)
)

// Kinds lists every step kind, in the order the format documents them.
var Kinds = []Kind{KindSQL, KindReload, KindRestart, KindSwitchover, KindRunbook, KindWait, KindApproval, KindEach, KindPassword}

// Target selects members for a step.
type Target string

// The targets. TargetMember is the loop's current member and exists only inside each.
const (
	TargetLeader   Target = "leader"
	TargetReplicas Target = "replicas"
	TargetMembers  Target = "members"
	TargetMember   Target = "member"
)

// Step is one step: Kind says which argument field is set.
type Step struct {
	Name    string        `json:"name"`
	Kind    Kind          `json:"kind"`
	When    *Condition    `json:"when,omitempty"`
	Retry   *Retry        `json:"retry,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	Line    int           `json:"line"`

	SQL        *SQLArgs        `json:"sql,omitempty"`
	Reload     *TargetArgs     `json:"reload,omitempty"`
	Restart    *RestartArgs    `json:"restart,omitempty"`
	Switchover *SwitchoverArgs `json:"switchover,omitempty"`
	Runbook    *RunbookArgs    `json:"runbook,omitempty"`
	Wait       *WaitArgs       `json:"wait,omitempty"`
	Approval   *ApprovalArgs   `json:"approval,omitempty"`
	Each       *EachArgs       `json:"each,omitempty"`
	Password   *PasswordArgs   `json:"password,omitempty"`
}

// Condition runs a step only when an earlier step ended so.
type Condition struct {
	Step    string `json:"step"`
	Changed *bool  `json:"changed,omitempty"` // the step changed something (or not)
	Line    int    `json:"line"`
}

// Retry is how often a step is tried and how long it waits between attempts.
type Retry struct {
	Attempts int           `json:"attempts"`
	Wait     time.Duration `json:"wait"`
}

// TargetArgs is a step's members.
type TargetArgs struct {
	On Target `json:"on"`
}

// SQLArgs: Statement runs as one command in Database on the targets.
type SQLArgs struct {
	On        Target `json:"on"`
	Database  string `json:"database"`
	Statement string `json:"statement"`
}

// RestartArgs: restart PostgreSQL on the targets; Pending restarts only members that wait for a
// restart (a changed postmaster parameter).
type RestartArgs struct {
	On      Target `json:"on"`
	Pending bool   `json:"pending,omitempty"`
}

// SwitchoverArgs: the switchover runbook, to Candidate ("" lets pigwf choose).
type SwitchoverArgs struct {
	Candidate string `json:"candidate,omitempty"`
}

// RunbookArgs: a built-in runbook as a child run.
type RunbookArgs struct {
	Name string `json:"name"`
}

// Condition kinds of wait.
const (
	UntilStreaming = "streaming" // the targets stream from the leader
	UntilLag       = "lag"       // the targets' replay lag is at most Lag bytes
	UntilSQL       = "sql"       // the statement returns true on the targets
)

// WaitArgs: wait until Until holds on the targets (default: the loop's member, else the replicas).
type WaitArgs struct {
	Until     string `json:"until"`
	On        Target `json:"on"`
	Lag       uint64 `json:"lag,omitempty"`
	Statement string `json:"statement,omitempty"`
	Database  string `json:"database,omitempty"`
}

// ApprovalArgs: the plan shown to approvers.
type ApprovalArgs struct {
	Reason string `json:"reason"`
}

// EachArgs: Steps for each member Of selects, one at a time unless Parallel.
type EachArgs struct {
	Of       Target `json:"of"`
	Parallel bool   `json:"parallel,omitempty"`
	Steps    []Step `json:"steps"`
}

// PasswordArgs: set Role's password to the secret Secret of the worker's secret store
// ($PIGWF_HOME/secrets/<cluster>/<secret>, made the first time it is read). Only the two names
// travel: the password is read on the worker and reaches PostgreSQL as a SCRAM verifier.
type PasswordArgs struct {
	Role   string `json:"role"`
	Secret string `json:"secret"`
}

// Target is the members the step acts on ("" for a step that acts on none: approval,
// switchover, runbook); a loop's is its selection.
func (s Step) Target() Target {
	switch s.Kind {
	case KindSQL:
		return s.SQL.On
	case KindReload:
		return s.Reload.On
	case KindRestart:
		return s.Restart.On
	case KindWait:
		return s.Wait.On
	case KindEach:
		return s.Each.Of
	case KindPassword:
		return TargetLeader // roles are the cluster's, written on the leader
	}
	return ""
}

// RiskyRunbooks are the built-in runbooks a runbook step may start only after an approval.
var RiskyRunbooks = map[string]bool{"switchover": true}

// ChildRunbooks are the built-in runbooks a runbook step may start: those whose input the
// inventory alone decides, so the CLI builds it as their own `pigwf start` does.
var ChildRunbooks = []string{"node-init", "pg-cluster-create", "pg-service", "switchover"}

// notChildRunbooks are built-in runbooks a runbook step cannot start, and why.
var notChildRunbooks = map[string]string{
	"pitr-restore": "needs a recovery target and an approval of its own plan, which a runbook step cannot give: start it with `pigwf start pitr-restore`",
}

// risky: the step changes what clients see (a restart, a switchover, a password clients log in
// with) and needs an approval before it.
func (s Step) risky() bool {
	switch s.Kind {
	case KindRestart, KindSwitchover, KindPassword:
		return true
	case KindRunbook:
		return RiskyRunbooks[s.Runbook.Name]
	}
	return false
}

// article is the kind with its indefinite article, for messages: "an approval", "a restart".
func (k Kind) article() string {
	if strings.ContainsRune("aeiou", rune(k[0])) {
		return "an " + string(k)
	}
	return "a " + string(k)
}
