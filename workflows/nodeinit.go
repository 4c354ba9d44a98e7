package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/activities"
)

// NodeInit prepares hosts for PostgreSQL, the counterpart of Pigsty's node.yml.
const (
	NodeInitName    = "NodeInit"
	NodeInitRunbook = "node-init"
)

// NodeInitInput is resolved from the inventory by the starter: no secrets, only what the
// steps need.
type NodeInitInput struct {
	Cluster string                 `json:"cluster"`
	Nodes   []NodeSpec             `json:"nodes"`
	Hosts   []activities.HostEntry `json:"hosts"` // every node of the cluster, for /etc/hosts
}

// NodeSpec is one node with its node-level settings.
type NodeSpec struct {
	Node     activities.Node   `json:"node"`
	Packages []string          `json:"packages"`
	Sysctl   map[string]string `json:"sysctl"`
	Limits   map[string]string `json:"limits"`
}

// NodeInitResult reports every step on every node.
type NodeInitResult struct {
	Cluster       string       `json:"cluster"`
	CAFingerprint string       `json:"ca_fingerprint"`
	Nodes         []NodeReport `json:"nodes"`
	Changed       int          `json:"changed"`   // steps that changed something
	Unchanged     int          `json:"unchanged"` // steps that found everything in place
	Failed        int          `json:"failed"`    // nodes that failed
}

// NodeReport is one node's outcome.
type NodeReport struct {
	Node  string                  `json:"node"`
	Steps []activities.StepResult `json:"steps"`
	Error string                  `json:"error,omitempty"`
}

// NodeInitFailedType is the error type of a run where some nodes failed; its details hold the
// NodeInitResult so clients still see what was done.
const NodeInitFailedType = "NodeInitFailed"

// stepOptions: short steps get two minutes, package installs twenty. Every step heartbeats
// every two seconds, so a dead worker is noticed after HeartbeatTimeout and the step retried on
// another worker; steps are idempotent, so a retry after a half-done attempt is safe.
func stepOptions(ctx workflow.Context, id, step string) workflow.Context {
	opts := workflow.ActivityOptions{
		ActivityID:          id,
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    5,
		},
	}
	if step == activities.StepPackages {
		opts.StartToCloseTimeout = 20 * time.Minute
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// NodeInit runs the steps on every node in parallel; a node that fails stops there (later steps
// skipped, the CA marker not written) while the others go on. The run fails if any node failed.
func NodeInit(ctx workflow.Context, in NodeInitInput) (NodeInitResult, error) {
	res := NodeInitResult{Cluster: in.Cluster}
	if err := setSearchAttributes(ctx, NodeInitRunbook, in.Cluster); err != nil {
		return res, err
	}
	track, err := newTracker(ctx, NodeInitRunbook, in.Cluster)
	if err != nil {
		return res, err
	}
	track.add("", "ca")
	for _, n := range in.Nodes {
		for _, step := range activities.NodeInitSteps {
			track.add(n.Node.String(), step)
		}
	}

	var a *activities.Activities
	track.set("", "ca", StateRunning, "")
	var ca activities.CAInfo
	if err := workflow.ExecuteActivity(stepOptions(ctx, "control/ca", "ca"), a.EnsureCA).Get(ctx, &ca); err != nil {
		track.set("", "ca", StateFailed, failureMessage(err))
		track.p.Phase = "failed"
		return res, temporal.NewNonRetryableApplicationError("node-init could not prepare the deployment CA: "+failureMessage(err), NodeInitFailedType, nil, res)
	}
	res.CAFingerprint = ca.Fingerprint
	if ca.Created {
		track.set("", "ca", StateChanged, "created CA sha256 "+ca.Fingerprint[:16])
	} else {
		track.set("", "ca", StateUnchanged, "CA sha256 "+ca.Fingerprint[:16])
	}

	reports := make([]NodeReport, len(in.Nodes))
	done := 0
	for i, spec := range in.Nodes {
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer func() { done++ }()
			reports[i] = initOneNode(gctx, track, spec, in.Hosts, ca.Fingerprint)
		})
	}
	if err := workflow.Await(ctx, func() bool { return done == len(in.Nodes) }); err != nil {
		return res, err
	}

	res.Nodes = reports
	var failed []string
	for _, r := range reports {
		for _, s := range r.Steps {
			if s.Changed {
				res.Changed++
			} else {
				res.Unchanged++
			}
		}
		if r.Error != "" {
			res.Failed++
			failed = append(failed, r.Node+": "+r.Error)
		}
	}
	if len(failed) > 0 {
		track.p.Phase = "failed"
		msg := fmt.Sprintf("node-init failed on %d of %d nodes of %s:\n  %s", len(failed), len(in.Nodes), in.Cluster, strings.Join(failed, "\n  "))
		return res, temporal.NewNonRetryableApplicationError(msg, NodeInitFailedType, nil, res)
	}
	track.p.Phase = "done"
	return res, nil
}

func initOneNode(ctx workflow.Context, track *tracker, spec NodeSpec, hosts []activities.HostEntry, caFingerprint string) NodeReport {
	var a *activities.Activities
	node := spec.Node
	name := node.String()
	rep := NodeReport{Node: name}
	for _, step := range activities.NodeInitSteps {
		if rep.Error != "" {
			track.set(name, step, StateSkipped, "an earlier step failed")
			continue
		}
		track.set(name, step, StateRunning, "")
		actx := stepOptions(ctx, node.Addr+"/"+step, step)
		var fut workflow.Future
		switch step {
		case activities.StepConnect:
			fut = workflow.ExecuteActivity(actx, a.NodeConnect, node)
		case activities.StepIdentity:
			fut = workflow.ExecuteActivity(actx, a.NodeIdentity, activities.NodeIdentityInput{Node: node, Hosts: hosts})
		case activities.StepOSUser:
			fut = workflow.ExecuteActivity(actx, a.NodeOSUser, node)
		case activities.StepPackages:
			fut = workflow.ExecuteActivity(actx, a.NodePackages, activities.NodePackagesInput{Node: node, Packages: spec.Packages})
		case activities.StepDirectories:
			fut = workflow.ExecuteActivity(actx, a.NodeDirectories, node)
		case activities.StepKernel:
			fut = workflow.ExecuteActivity(actx, a.NodeKernel, activities.NodeKernelInput{Node: node, Sysctl: spec.Sysctl, Limits: spec.Limits})
		case activities.StepCACert:
			fut = workflow.ExecuteActivity(actx, a.NodeCACert, activities.NodeCACertInput{Node: node, Fingerprint: caFingerprint})
		}
		var sr activities.StepResult
		if err := fut.Get(ctx, &sr); err != nil {
			rep.Error = failureMessage(err)
			track.set(name, step, StateFailed, rep.Error)
			continue
		}
		rep.Steps = append(rep.Steps, sr)
		state := StateUnchanged
		if sr.Changed {
			state = StateChanged
		}
		track.set(name, step, state, sr.Summary())
	}
	return rep
}
