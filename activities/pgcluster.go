package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// DCSInput names a cluster's keys in etcd.
type DCSInput struct {
	Endpoints []string `json:"endpoints"`
	Namespace string   `json:"namespace"`
	Cluster   string   `json:"cluster"`
	// Plaintext: the inventory's pigwf_insecure_plaintext (a lab that said so); http:// endpoints
	// and agent APIs are refused otherwise.
	Plaintext bool `json:"plaintext,omitempty"`
}

func (a *Activities) dcsStore(in DCSInput) (*dcs.Store, func(), error) {
	st, cli, err := a.dcsClient(in)
	if err != nil {
		return nil, nil, err
	}
	return st, func() { cli.Close() }, nil
}

func (a *Activities) dcsClient(in DCSInput) (*dcs.Store, *clientv3.Client, error) {
	if len(in.Endpoints) == 0 {
		return nil, nil, temporal.NewNonRetryableApplicationError("no etcd endpoints: add the etcd group to the inventory (Pigsty layout: all.children.etcd.hosts)", ErrConfig, nil)
	}
	if err := a.checkPlaintext(in.Plaintext); err != nil {
		return nil, nil, err
	}
	files, err := a.ClientTLS()
	if err != nil {
		return nil, nil, err
	}
	cli, err := dcs.Connect(dcs.ClientOptions{Endpoints: in.Endpoints, TLS: files, Plaintext: in.Plaintext, DialTimeout: 5 * time.Second})
	if errors.Is(err, dcs.ErrPlaintextEtcd) {
		return nil, nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, err)
	} else if err != nil {
		return nil, nil, fmt.Errorf("while connecting to etcd %v: %w", in.Endpoints, err)
	}
	st, err := dcs.New(cli, in.Namespace, in.Cluster, 30*time.Second)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	return st, cli, nil
}

// DCSState is what PgClusterCreate needs to know about a cluster's keys.
type DCSState struct {
	Sysid       string   `json:"sysid,omitempty"`     // initialize.sysid
	Bootstrap   string   `json:"bootstrap,omitempty"` // initialize.claimed_by
	Leader      string   `json:"leader,omitempty"`
	Members     []string `json:"members,omitempty"`
	Paused      bool     `json:"paused,omitempty"`
	Reachable   bool     `json:"reachable"`
	Unreachable string   `json:"unreachable,omitempty"`
}

// DCSStatus reads the cluster's keys; an unreachable etcd is reported, not raised.
func (a *Activities) DCSStatus(ctx context.Context, in DCSInput) (DCSState, error) {
	st, closeFn, err := a.dcsStore(in)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return DCSState{}, err
		}
		return DCSState{Unreachable: err.Error()}, nil
	}
	defer closeFn()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := st.Load(lctx)
	if err != nil {
		return DCSState{Unreachable: fmt.Sprintf("etcd %v: %v", in.Endpoints, err)}, nil
	}
	out := DCSState{Reachable: true, Paused: snap.Pause != nil}
	if snap.Initialize != nil {
		out.Sysid, out.Bootstrap = snap.Initialize.Value.Sysid, snap.Initialize.Value.ClaimedBy
	}
	if snap.Leader != nil {
		out.Leader = snap.Leader.Value.Holder
	}
	for name := range snap.Members {
		out.Members = append(out.Members, name)
	}
	sort.Strings(out.Members)
	return out, nil
}

// DCSRegisterInput registers a new cluster: its system identifier and dynamic configuration.
type DCSRegisterInput struct {
	DCS        DCSInput `json:"dcs"`
	Primary    string   `json:"primary"` // member that bootstraps (its agent starts the primary)
	Sysid      string   `json:"sysid"`
	SyncMode   bool     `json:"sync_mode"`
	SyncStrict bool     `json:"sync_strict"`
	RPO        int64    `json:"rpo"`
	// LeaseMs seeds the leader lease (pg_rto) and the timings that follow from it
	// (haagent.Config.WithLeaderTimeout); 0 keeps the agents' default.
	LeaseMs int `json:"lease_ms,omitempty"`
	// Parameters seed the config's postgresql.parameters: the inventory's pg_parameters as the
	// user wrote them (not pigwf's defaults), so `pigwf config` starts from what was asked for.
	// Absent in runs started before the seeding: no parameters.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// DCSRegister writes initialize and config when absent. An initialize naming another system
// identifier is another cluster's: refused, nothing written.
func (a *Activities) DCSRegister(ctx context.Context, in DCSRegisterInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepRegisterDCS}
	st, cli, err := a.dcsClient(in.DCS)
	if err != nil {
		return res, err
	}
	defer cli.Close()
	cfg := haagent.DefaultConfig()
	cfg.SynchronousMode, cfg.SynchronousModeStrict = in.SyncMode, in.SyncStrict
	cfg.MaximumLagOnFailover = uint64(in.RPO)
	if in.LeaseMs > 0 {
		cfg = cfg.WithLeaderTimeout(time.Duration(in.LeaseMs) * time.Millisecond)
	}
	cfg.Postgresql.Parameters = in.Parameters
	if err := cfg.Validate(); err != nil {
		return res, temporal.NewNonRetryableApplicationError("the cluster's HA settings are invalid: "+err.Error(), ErrConfig, nil)
	}
	raw, _ := json.Marshal(cfg)
	before, err := st.Load(ctx)
	if err != nil {
		return res, fmt.Errorf("while reading %s/%s from etcd: %w", in.DCS.Namespace, in.DCS.Cluster, err)
	}
	// Create-if-absent for both keys in one transaction: a concurrent registration (or agent) wins
	// cleanly and we read what it wrote.
	initKey, cfgKey := st.Key(dcs.KeyInitialize), st.Key(dcs.KeyConfig)
	initVal, _ := json.Marshal(dcs.InitializeRecord{ClaimedBy: in.Primary, Sysid: in.Sysid})
	absent := func(k string) clientv3.Cmp { return clientv3.Compare(clientv3.CreateRevision(k), "=", 0) }
	if _, err := cli.Txn(ctx).If(absent(initKey)).Then(clientv3.OpPut(initKey, string(initVal))).Commit(); err != nil {
		return res, fmt.Errorf("while registering %s in etcd: %w", in.DCS.Cluster, err)
	}
	if _, err := cli.Txn(ctx).If(absent(cfgKey)).Then(clientv3.OpPut(cfgKey, string(raw))).Commit(); err != nil {
		return res, fmt.Errorf("while writing %s's dynamic config: %w", in.DCS.Cluster, err)
	}
	after, err := st.Load(ctx)
	if err != nil || after.Initialize == nil {
		return res, fmt.Errorf("while reading back %s's registration: %v", in.DCS.Cluster, err)
	}
	existing := after.Initialize.Value
	if existing.Sysid != "" && existing.Sysid != in.Sysid {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"etcd already holds cluster %s under %s with system identifier %s, not %s: another cluster of the same name? Remove its keys only if it is gone",
			in.DCS.Cluster, in.DCS.Namespace, existing.Sysid, in.Sysid), ErrConflict, nil)
	}
	if before.Initialize == nil {
		res.Changed = true
		res.Changes = append(res.Changes, fmt.Sprintf("registered system %s (bootstrap member %s)", in.Sysid, in.Primary))
	} else {
		res.Notes = append(res.Notes, "initialize holds system "+existing.Sysid)
	}
	if before.Config == nil {
		res.Changed = true
		res.Changes = append(res.Changes, fmt.Sprintf("wrote the dynamic config (synchronous_mode %v, strict %v, leader lease %d ms, %d PostgreSQL parameters from pg_parameters)",
			in.SyncMode, in.SyncStrict, cfg.LeaderTimeoutMs, len(in.Parameters)))
	} else if len(in.Parameters) > 0 {
		// Create-if-absent: a config someone may have changed since is not overwritten.
		res.Notes = append(res.Notes, "the dynamic config exists: pg_parameters are not copied into it; change it with pigwf config set|edit")
	}
	return res, nil
}

// WaitLeaderInput waits until a member leads and takes writes.
type WaitLeaderInput struct {
	DCS    DCSInput `json:"dcs"`
	Member string   `json:"member"`
	APIURL string   `json:"api_url"` // the member's agent API
}

// otherLeaderFor is how long WaitLeader sees another member hold the leader key before it says
// so: longer than a switchover's hand-over back and forth.
const otherLeaderFor = 3 * time.Second

// WaitLeader polls the member's agent until /primary answers 200 and the DCS leader is the
// member, heartbeating meanwhile; another member leading for otherLeaderFor fails it (not
// retryable: the run plans again on that leader). It changes nothing.
func (a *Activities) WaitLeader(ctx context.Context, in WaitLeaderInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepLeader}
	st, closeFn, err := a.dcsStore(in.DCS)
	if err != nil {
		return res, err
	}
	defer closeFn()
	client, err := a.agentClient(2 * time.Second)
	if err != nil {
		return res, err
	}
	start := time.Now()
	last := ""
	var otherSince time.Time // since when another member holds the leader key, without a break
	for {
		leader := ""
		if snap, err := st.Load(ctx); err == nil && snap.Leader != nil {
			leader = snap.Leader.Value.Holder
		}
		code := getStatus(ctx, client, in.APIURL, "/primary")
		if leader == in.Member && code == http.StatusOK {
			res.Notes = append(res.Notes, fmt.Sprintf("%s leads and takes writes (after %s)", in.Member, time.Since(start).Round(10*time.Millisecond)))
			return res, nil
		}
		// Another member leading for a while is a failover since the run read the leader: the
		// run plans again on that leader rather than wait for this one.
		switch {
		case leader == "" || leader == in.Member:
			otherSince = time.Time{}
		case otherSince.IsZero():
			otherSince = time.Now()
		case time.Since(otherSince) >= otherLeaderFor:
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s leads %s, not %s (for %s): was there a failover? nothing was changed; run again to plan on the leader",
				leader, in.DCS.Cluster, in.Member, otherLeaderFor), ErrConflict, nil)
		}
		last = fmt.Sprintf("DCS leader %q, %s/primary answered %d", leader, in.APIURL, code)
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, last)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("while waiting for %s to lead: %w (last seen: %s)", in.Member, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
