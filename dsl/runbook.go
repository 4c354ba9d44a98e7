// Package dsl is pigwf's custom runbook format: a YAML file whose steps name allow-listed step
// types with typed arguments. It has no Temporal imports: the CLI validates a file here before
// any run starts, and the interpreter workflow receives the parsed, validated Runbook.
//
// Where things live: runbook.go the types; parse.go the YAML reader (every value with its line);
// validate.go the rules across steps (names, conditions, approvals before risky steps, loops
// over the cluster's members); problems.go Problem and Problems, each with file:line and a fix.
//
// The interpreter that runs a Runbook comes with the day-2 runbooks; until then a file can be
// checked (`Parse`, `Validate`), not run.
package dsl

import "time"

// Runbook is one parsed file.
type Runbook struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Steps       []Step `json:"steps"`
	File        string `json:"file"`
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
)

// Kinds lists every step kind, in the order the format documents them.
var Kinds = []Kind{KindSQL, KindReload, KindRestart, KindSwitchover, KindRunbook, KindWait, KindApproval, KindEach}

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

// RiskyRunbooks are the built-in runbooks a runbook step may start only after an approval.
var RiskyRunbooks = map[string]bool{"switchover": true, "pitr-restore": true}

// ChildRunbooks are the built-in runbooks a runbook step may start.
var ChildRunbooks = []string{"node-init", "pg-cluster-create", "pg-service", "switchover", "pitr-restore"}

// risky: the step changes what clients see (a restart, a switchover) and needs an approval
// before it.
func (s Step) risky() bool {
	switch s.Kind {
	case KindRestart, KindSwitchover:
		return true
	case KindRunbook:
		return RiskyRunbooks[s.Runbook.Name]
	}
	return false
}
