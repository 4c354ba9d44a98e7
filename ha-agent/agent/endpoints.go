package agent

import (
	"context"
	"log/slog"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd client spreads requests round-robin over every endpoint. When a
// member's node dies without closing its connections (power loss, link
// down), requests routed to it hang until their timeout, and grpc's
// keepalive (clamped to at least 10 s) takes that long to drop it: on the
// lab a promotion lost ~1 s to requests sent to the dead member.
// endpointHealth asks each member directly, every loop interval, whether it
// answers and has an etcd leader, and keeps the shared client's endpoint
// list to the members that do. Removing an endpoint also fails what is in
// flight on it at once, so retries and the watch move to a live member.

// endpointProbe is one member's answer.
type endpointProbe struct {
	endpoint string
	ok       bool
	why      string
}

type endpointHealth struct {
	base     clientv3.Config // the shared client's settings, for the one-endpoint probes
	all      []string
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	// status asks one member; replaced in tests.
	status func(ctx context.Context, endpoint string) endpointProbe
	// set replaces the client's endpoints; replaced in tests.
	set func(eps ...string)
}

// newEndpointHealth probes every interval (the loop interval when the
// agent starts; the probe cadence need not follow later config changes).
func newEndpointHealth(cli *clientv3.Client, base clientv3.Config, interval time.Duration, log *slog.Logger) *endpointHealth {
	return &endpointHealth{
		base: base, all: slices.Clone(base.Endpoints), interval: interval, log: log,
		// Long enough for a member under load, short against the leader
		// timeout: a dead member is out of the list within ~2 intervals.
		timeout: max(2*interval, 150*time.Millisecond),
		set:     cli.SetEndpoints,
	}
}

// run probes every member until ctx ends. Each member has its own client
// (one connection) and goroutine, so a member that hangs delays no other.
func (h *endpointHealth) run(ctx context.Context) {
	// Every client first, so that a failure leaves nothing running.
	statuses := make([]func(context.Context, string) endpointProbe, len(h.all))
	for i, ep := range h.all {
		statuses[i] = h.status
		if statuses[i] != nil {
			continue
		}
		cfg := h.base
		cfg.Endpoints = []string{ep}
		probe, err := clientv3.New(cfg)
		if err != nil {
			h.log.Warn("etcd endpoint health: cannot create a client; leaving the endpoint list alone", "endpoint", ep, "err", err)
			return
		}
		defer probe.Close()
		statuses[i] = func(ctx context.Context, endpoint string) endpointProbe {
			return statusOf(ctx, probe, endpoint)
		}
	}
	results := make(chan endpointProbe, len(h.all))
	for i, ep := range h.all {
		status := statuses[i]
		go func() {
			t := time.NewTimer(0)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				pctx, cancel := context.WithTimeout(ctx, h.timeout)
				r := status(pctx, ep)
				cancel()
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
				t.Reset(h.interval)
			}
		}()
	}
	healthy := map[string]bool{}
	for _, ep := range h.all {
		healthy[ep] = true
	}
	current := slices.Clone(h.all)
	for {
		var r endpointProbe
		select {
		case <-ctx.Done():
			return
		case r = <-results:
		}
		if healthy[r.endpoint] == r.ok {
			continue
		}
		healthy[r.endpoint] = r.ok
		want := h.usable(healthy)
		if slices.Equal(want, current) {
			continue
		}
		if r.ok {
			h.log.Info("etcd member answers again; sending requests to it", "endpoint", r.endpoint, "endpoints", want)
		} else {
			h.log.Warn("etcd member does not answer; sending requests to the others", "endpoint", r.endpoint, "why", r.why, "endpoints", want)
		}
		h.set(want...)
		current = want
	}
}

// usable lists the healthy endpoints in configuration order, or all of
// them when none is healthy (then nothing is known to be better).
func (h *endpointHealth) usable(healthy map[string]bool) []string {
	var eps []string
	for _, ep := range h.all {
		if healthy[ep] {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return slices.Clone(h.all)
	}
	return eps
}

// statusOf asks the member behind probe (a one-endpoint client) for its
// status. A member without an etcd leader cannot serve the agent's
// linearizable requests, so it counts as not answering.
func statusOf(ctx context.Context, probe *clientv3.Client, endpoint string) endpointProbe {
	resp, err := pb.NewMaintenanceClient(probe.ActiveConnection()).Status(ctx, &pb.StatusRequest{})
	switch {
	case err != nil:
		return endpointProbe{endpoint: endpoint, why: err.Error()}
	case resp.Leader == 0:
		return endpointProbe{endpoint: endpoint, why: "the member has no etcd leader"}
	}
	return endpointProbe{endpoint: endpoint, ok: true}
}
