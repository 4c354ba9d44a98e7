package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// workflowServiceName is the gRPC health-check service name the frontend
// reports as SERVING once it accepts workflow API calls.
const workflowServiceName = "temporal.api.workflowservice.v1.WorkflowService"

const (
	pollInterval   = 100 * time.Millisecond
	attemptTimeout = 3 * time.Second
)

// bootstrap waits until the server is usable by pigwf: the frontend answers,
// every namespace has the custom search attributes and the frontend already
// accepts queries on them, and the UI answers. It talks to the server only
// through its public gRPC API, like any client.
func (s *devServer) bootstrap(ctx context.Context) error {
	creds := insecure.NewCredentials()
	if s.opts.TLS.enabled() {
		cfg, err := s.opts.TLS.clientConfig(s.serverName())
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("creating gRPC client for %s: %w", s.grpcAddr, err)
	}
	s.conn = conn

	health := healthpb.NewHealthClient(conn)
	err = poll(ctx, "frontend gRPC health", func(ctx context.Context) error {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: workflowServiceName})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", resp.GetStatus())
		}
		return nil
	})
	if err != nil {
		return err
	}

	wf := workflowservice.NewWorkflowServiceClient(conn)
	op := operatorservice.NewOperatorServiceClient(conn)
	for _, ns := range s.opts.Namespaces {
		if err := ensureSearchAttributes(ctx, wf, op, ns, s.opts.SearchAttributes); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}

	if s.ui != nil {
		client := &http.Client{Timeout: attemptTimeout}
		err := poll(ctx, "Web UI at "+s.uiURL, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /healthz: %s", resp.Status)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureSearchAttributes adds the missing custom search attributes to ns and
// waits until the frontend accepts queries on all of them.
//
// Namespaces created by prepareDatabase already have them; this covers
// namespaces from an older database file, or attributes added to the flags
// since. Adding is idempotent, and an attribute that exists with another type
// is an error rather than silently left as it is.
func ensureSearchAttributes(ctx context.Context, wf workflowservice.WorkflowServiceClient,
	op operatorservice.OperatorServiceClient, ns string, want []searchAttribute) error {
	if len(want) == 0 {
		return nil
	}

	var existing *operatorservice.ListSearchAttributesResponse
	err := poll(ctx, "search attribute list", func(ctx context.Context) error {
		var err error
		existing, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		return err
	})
	if err != nil {
		return err
	}

	missing := map[string]enumspb.IndexedValueType{}
	for _, sa := range want {
		got, ok := existing.GetCustomAttributes()[sa.Name]
		switch {
		case !ok:
			missing[sa.Name] = sa.Type
		case got != sa.Type:
			return fmt.Errorf("search attribute %s already exists with type %s, not %s",
				sa.Name, typeName(got), typeName(sa.Type))
		}
	}
	if len(missing) > 0 {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := op.AddSearchAttributes(actx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        ns,
			SearchAttributes: missing,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("adding search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
		}
	}

	// The frontend resolves search attribute names through a namespace cache
	// refreshed every few seconds, so attributes added just now are not yet
	// usable. A query naming all of them fails until they are.
	terms := make([]string, len(want))
	for i, sa := range want {
		terms[i] = "`" + sa.Name + "` IS NULL"
	}
	query := strings.Join(terms, " OR ")
	return poll(ctx, "search attributes to be queryable", func(ctx context.Context) error {
		_, err := wf.CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: ns,
			Query:     query,
		})
		return err
	})
}

// typeName renders an IndexedValueType the way the flags spell it.
func typeName(t enumspb.IndexedValueType) string {
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_"), "_", "")
}

// poll calls try until it succeeds or ctx ends; each attempt gets its own
// short timeout so one stuck call does not use up the whole budget.
func poll(ctx context.Context, what string, try func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := try(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}
