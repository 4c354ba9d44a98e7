package starter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pigwf/pigwf/internal/human"
	"github.com/pigwf/pigwf/workflows"
)

// `pigwf temporal setup`: the namespace pigwf runs in, with the retention its operator chose, and
// the search attributes pigwf's runs set (workflows.CustomSearchAttributes). Idempotent: each
// item is changed only when it differs, and reported changed or unchanged.

// DefaultRetention is how long a namespace that `pigwf temporal setup` creates keeps closed runs:
// `pigwf audit` reads approvals and steps from closed runs' histories, and 30 days covers a
// monthly review and an incident's post-mortem at a few kilobytes a run; it is also Temporal
// Cloud's default. The dev server keeps 24 h, as Temporal's own dev server does.
const DefaultRetention = 30 * 24 * time.Hour

// MinRetention is the shortest retention Temporal accepts for a namespace.
const MinRetention = 24 * time.Hour

// ParseRetention reads a retention: whole days as "30d", or a Go duration ("720h").
func ParseRetention(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("retention %q: want a number of days such as 30d, or a duration such as 720h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("retention %q: want a number of days such as 30d, or a duration such as 720h", s)
		}
	}
	if d < MinRetention {
		return 0, fmt.Errorf("retention %q: Temporal keeps closed runs at least 1d (24h)", s)
	}
	return d, nil
}

// FormatRetention writes a retention as ParseRetention reads it: days when whole.
func FormatRetention(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return human.Duration(d)
}

// SetupItem is one thing `pigwf temporal setup` made sure of.
type SetupItem struct {
	What    string `json:"what"`    // "namespace default", "search attribute PgCluster"
	Changed bool   `json:"changed"` // whether this run changed it
	Detail  string `json:"detail"`  // "created, retention 30d", "retention 1d -> 30d", "Keyword"
}

func (i SetupItem) String() string {
	state := "unchanged"
	if i.Changed {
		state = "changed"
	}
	return fmt.Sprintf("%s: %s (%s)", i.What, i.Detail, state)
}

// AttributeTypeError is a search attribute that exists with another type than pigwf's. Temporal
// cannot change a type in place, and pigwf's runs would fail to set it; the operator decides
// (remove it, or use another namespace).
type AttributeTypeError struct {
	Namespace, Name string
	Have, Want      enumspb.IndexedValueType
}

func (e *AttributeTypeError) Error() string {
	have, want := workflows.SearchAttribute{Type: e.Have}.TypeName(), workflows.SearchAttribute{Type: e.Want}.TypeName()
	return fmt.Sprintf("search attribute %s exists in namespace %s as %s, but pigwf's runs set it as %s: remove it (`temporal operator search-attribute remove --name %s`; on Temporal Cloud ask support) or use another namespace",
		e.Name, e.Namespace, have, want, e.Name)
}

// NamespaceAdminError is an administrative call the server refused (Temporal Cloud refuses them
// on its data plane: namespaces, retention and search attributes are managed through its
// control plane there).
type NamespaceAdminError struct {
	Op  string // what was asked, e.g. "create namespace pigwf"
	Err error
}

func (e *NamespaceAdminError) Error() string {
	return fmt.Sprintf("%s: %v: the server refuses this client; on Temporal Cloud do it in the Cloud UI, with tcld or the Cloud Ops API (README: Temporal Cloud), then run `pigwf temporal setup` again to check", e.Op, e.Err)
}

func (e *NamespaceAdminError) Unwrap() error { return e.Err }

// namespaceAction is what a namespace needs.
type namespaceAction int

const (
	namespaceOK namespaceAction = iota
	namespaceRegister
	namespaceUpdateRetention
)

// planNamespace decides from the namespace as described (nil: it does not exist) and the
// retention wanted.
func planNamespace(desc *workflowservice.DescribeNamespaceResponse, retention time.Duration) (namespaceAction, time.Duration) {
	if desc == nil {
		return namespaceRegister, 0
	}
	have := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	if have != retention {
		return namespaceUpdateRetention, have
	}
	return namespaceOK, have
}

// planSearchAttributes returns the attributes to add (those missing) and those already right;
// an attribute present with another type is an *AttributeTypeError.
func planSearchAttributes(namespace string, have map[string]enumspb.IndexedValueType, want []workflows.SearchAttribute) (add map[string]enumspb.IndexedValueType, ok []string, err error) {
	add = map[string]enumspb.IndexedValueType{}
	for _, sa := range want {
		t, exists := have[sa.Name]
		switch {
		case !exists:
			add[sa.Name] = sa.Type
		case t != sa.Type:
			return nil, nil, &AttributeTypeError{Namespace: namespace, Name: sa.Name, Have: t, Want: sa.Type}
		default:
			ok = append(ok, sa.Name)
		}
	}
	return add, ok, nil
}

// setupPoll is how often, and setupWait how long, SetupNamespace waits for what the server
// applies through its namespace cache (a new namespace, new search attributes): seconds.
const (
	setupPoll = 250 * time.Millisecond
	setupWait = time.Minute
)

// SetupNamespace makes sure the client's namespace exists with the retention given, and has
// every search attribute pigwf's runs set, waiting until runs can use them. It returns one item
// per namespace setting and attribute, in that order.
func (c *Client) SetupNamespace(ctx context.Context, retention time.Duration) ([]SetupItem, error) {
	ns := c.Namespace
	wf := c.C.WorkflowService()
	var items []SetupItem

	desc, err := wf.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound):
		desc = nil
	case err != nil:
		return nil, fmt.Errorf("describing namespace %s: %w", ns, err)
	}
	item := SetupItem{What: "namespace " + ns}
	switch action, have := planNamespace(desc, retention); action {
	case namespaceRegister:
		_, err := wf.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        ns,
			Description:                      "pigwf runbook runs",
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) { // another setup made it since
			return nil, adminError("create namespace "+ns, err)
		}
		item.Changed, item.Detail = true, "created, retention "+FormatRetention(retention)
	case namespaceUpdateRetention:
		_, err := wf.UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: ns,
			Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(retention)},
		})
		if err != nil {
			return nil, adminError("set the retention of namespace "+ns, err)
		}
		item.Changed, item.Detail = true, "retention "+FormatRetention(have)+" -> "+FormatRetention(retention)
	default:
		item.Detail = "retention " + FormatRetention(have)
	}
	items = append(items, item)

	attrItems, err := c.ensureSearchAttributes(ctx)
	if err != nil {
		return items, err
	}
	return append(items, attrItems...), nil
}

// ensureSearchAttributes adds pigwf's missing search attributes and waits until a query naming
// all of them succeeds: the frontend resolves names through a cache refreshed every few seconds,
// and a run started before then would fail.
func (c *Client) ensureSearchAttributes(ctx context.Context) ([]SetupItem, error) {
	ns := c.Namespace
	want := workflows.CustomSearchAttributes()
	op := c.C.OperatorService()

	// A namespace registered a moment ago is not in the frontend's cache yet.
	var listed *operatorservice.ListSearchAttributesResponse
	err := pollUntil(ctx, "namespace "+ns+" to be usable", func(ctx context.Context) error {
		var err error
		listed, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		return err
	})
	if err != nil {
		return nil, adminError("list the search attributes of namespace "+ns, err)
	}
	add, _, err := planSearchAttributes(ns, listed.GetCustomAttributes(), want)
	if err != nil {
		return nil, err
	}
	if len(add) > 0 {
		_, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: add})
		if err != nil {
			return nil, adminError(fmt.Sprintf("add search attributes %v to namespace %s", slices.Sorted(maps.Keys(add)), ns), err)
		}
	}
	items := make([]SetupItem, len(want))
	terms := make([]string, len(want))
	for i, sa := range want {
		_, added := add[sa.Name]
		items[i] = SetupItem{What: "search attribute " + sa.Name, Changed: added, Detail: sa.TypeName()}
		if added {
			items[i].Detail += ", added"
		}
		terms[i] = "`" + sa.Name + "` IS NULL"
	}
	query := strings.Join(terms, " OR ")
	err = pollUntil(ctx, "the search attributes to be usable in namespace "+ns, func(ctx context.Context) error {
		_, err := c.C.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: query})
		return err
	})
	return items, err
}

// adminError marks a refusal of an administrative call as such (*NamespaceAdminError, with the
// way on Temporal Cloud); other errors keep their type.
func adminError(op string, err error) error {
	var denied *serviceerror.PermissionDenied
	var unimplemented *serviceerror.Unimplemented
	if errors.As(err, &denied) || errors.As(err, &unimplemented) {
		return &NamespaceAdminError{Op: op, Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// pollUntil calls try every setupPoll until it succeeds, for at most setupWait. Only the errors
// of a change not applied yet are tried again: an unknown namespace or attribute, a server
// still starting; any other is returned at once.
func pollUntil(ctx context.Context, what string, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupWait)
	defer cancel()
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		var notFound *serviceerror.NamespaceNotFound
		var invalid *serviceerror.InvalidArgument
		var unavailable *serviceerror.Unavailable
		if !errors.As(err, &notFound) && !errors.As(err, &invalid) && !errors.As(err, &unavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, err)
		case <-time.After(setupPoll):
		}
	}
}
