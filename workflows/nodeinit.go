package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

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
	// ClusterLocked: the parent run that starts this one as its child holds the cluster's lock
	// for it (workflows.ClusterLock); honoured only in a child run. Never set by hand.
	ClusterLocked bool `json:"cluster_locked,omitempty"`
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

// nodeInitRetry: five attempts of two minutes each, at most 30 seconds apart.
var nodeInitRetry = retry{timeout: 2 * time.Minute, attempts: 5, maxWait: 30 * time.Second}

// caStep prepares the deployment CA on the control side, before any node step.
var caStep = controlStep("ca", nodeInitRetry)

// nodeStep is a step on a node: tracked under the node's name and address, with activity ID
// <address>/<step>. Package installs get twenty minutes an attempt.
func nodeStep(n activities.Node, name string) step {
	r := nodeInitRetry
	if name == activities.StepPackages {
		r.timeout = 20 * time.Minute
	}
	return step{node: n.String(), name: name, id: n.Addr + "/" + name, retry: r}
}

// nodeInit is one NodeInit run.
type nodeInit struct {
	steps []string // the node steps of this run, in order
	in    NodeInitInput
	track *tracker
	res   NodeInitResult
}

// NodeInit runs the steps on every node in parallel; a node that fails stops there (later steps
// skipped, the CA marker not written) while the others go on. The run fails if any node failed.
func NodeInit(ctx workflow.Context, in NodeInitInput) (NodeInitResult, error) {
	w := &nodeInit{in: in, res: NodeInitResult{Cluster: in.Cluster}}
	if err := setSearchAttributes(ctx, NodeInitRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	var err error
	if w.track, err = newTracker(ctx, NodeInitRunbook, in.Cluster); err != nil {
		return w.res, err
	}
	if _, err := lockCluster(ctx, w.track, in.Cluster, in.ClusterLocked); err != nil {
		return w.res, err
	}
	// Runs started before nodes got certificates replay without the node-cert step.
	w.steps = activities.NodeInitSteps
	if workflow.GetVersion(ctx, "node-cert", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		w.steps = slices.DeleteFunc(slices.Clone(w.steps), func(s string) bool { return s == activities.StepNodeCert })
	}
	w.track.plan(caStep)
	for _, spec := range in.Nodes {
		for _, name := range w.steps {
			w.track.plan(nodeStep(spec.Node, name))
		}
	}

	var a *activities.Activities
	ca, err := runStep(ctx, w.track, caStep, caOutcome, a.EnsureCA)
	if err != nil {
		return w.res, w.track.fail("node-init could not prepare the deployment CA: "+err.Error(), NodeInitFailedType, w.res)
	}
	w.res.CAFingerprint = ca.Fingerprint

	reports := make([]NodeReport, len(in.Nodes))
	if err := parallel(ctx, len(in.Nodes), func(gctx workflow.Context, i int) {
		reports[i] = w.initNode(gctx, in.Nodes[i], ca.Fingerprint)
	}); err != nil {
		return w.res, err
	}
	return w.report(reports)
}

func caOutcome(ca activities.CAInfo) (string, string) {
	if ca.Created {
		return StateChanged, "created CA sha256 " + ca.Fingerprint[:16]
	}
	return StateUnchanged, "CA sha256 " + ca.Fingerprint[:16]
}

// initNode runs the node steps in order on one node; after a failure the rest are skipped.
func (w *nodeInit) initNode(ctx workflow.Context, spec NodeSpec, caFingerprint string) NodeReport {
	rep := NodeReport{Node: spec.Node.String()}
	for _, name := range w.steps {
		s := nodeStep(spec.Node, name)
		if rep.Error != "" {
			w.track.set(s, StateSkipped, "an earlier step failed")
			continue
		}
		activity, arg := w.activity(spec, name, caFingerprint)
		sr, err := runStep(ctx, w.track, s, stepOutcome, activity, arg)
		if err != nil {
			rep.Error = err.Error()
			continue
		}
		rep.Steps = append(rep.Steps, sr)
	}
	return rep
}

// activity is the activity of a node step and its input.
func (w *nodeInit) activity(spec NodeSpec, name, caFingerprint string) (activity, input any) {
	var a *activities.Activities
	node := spec.Node
	switch name {
	case activities.StepConnect:
		return a.NodeConnect, node
	case activities.StepIdentity:
		return a.NodeIdentity, activities.NodeIdentityInput{Node: node, Hosts: w.in.Hosts}
	case activities.StepOSUser:
		return a.NodeOSUser, node
	case activities.StepPackages:
		return a.NodePackages, activities.NodePackagesInput{Node: node, Packages: spec.Packages}
	case activities.StepDirectories:
		return a.NodeDirectories, node
	case activities.StepKernel:
		return a.NodeKernel, activities.NodeKernelInput{Node: node, Sysctl: spec.Sysctl, Limits: spec.Limits}
	case activities.StepNodeCert:
		return a.NodeCert, activities.NodeCertInput{Node: node, Fingerprint: caFingerprint}
	case activities.StepCACert:
		return a.NodeCACert, activities.NodeCACertInput{Node: node, Fingerprint: caFingerprint}
	}
	panic("node-init: no activity for step " + name + " of activities.NodeInitSteps")
}

// report tallies the nodes' reports; the run fails if any node failed.
func (w *nodeInit) report(reports []NodeReport) (NodeInitResult, error) {
	res := &w.res
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
		msg := fmt.Sprintf("node-init failed on %d of %d nodes of %s:\n  %s", len(failed), len(w.in.Nodes), w.in.Cluster, strings.Join(failed, "\n  "))
		return *res, w.track.fail(msg, NodeInitFailedType, *res)
	}
	w.track.setPhase(PhaseDone)
	return *res, nil
}
