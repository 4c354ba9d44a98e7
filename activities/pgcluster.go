package activities

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// DCSInput names a cluster's keys in etcd.
type DCSInput struct {
	Endpoints []string `json:"endpoints"`
	Namespace string   `json:"namespace"`
	Cluster   string   `json:"cluster"`
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
	cli, err := clientv3.New(clientv3.Config{Endpoints: in.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
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
		res.Changes = append(res.Changes, fmt.Sprintf("wrote the dynamic config (synchronous_mode %v, strict %v)", in.SyncMode, in.SyncStrict))
	}
	return res, nil
}

// AgentInput installs and starts the HA agent on one member.
type AgentInput struct {
	Node       Node     `json:"node"`
	Member     string   `json:"member"`
	Spec       PGSpec   `json:"spec"`
	DCS        DCSInput `json:"dcs"`
	APIPort    int      `json:"api_port"`
	NoFailover bool     `json:"nofailover"`
}

// AgentConfigPath is where the agent's local configuration lives on a node.
const AgentConfigPath = "/etc/pigwf/ha-agent.yml"

// AgentBinaryPath is where the agent binary is installed on nodes.
const AgentBinaryPath = "/usr/local/bin/pg-ha-agent"

// RenderAgentConfig is the agent's local configuration file (see ha-agent's package doc).
func RenderAgentConfig(in AgentInput) string {
	quoted := make([]string, len(in.DCS.Endpoints))
	for i, e := range in.DCS.Endpoints {
		quoted[i] = e
	}
	return fmt.Sprintf(`# managed by pigwf pg-cluster-create
cluster: %s
name: %s
prefix: %s
etcd:
  endpoints: [%s]
api:
  listen: %s:%d
  url: http://%s:%d
postgres:
  bin_dir: %s
  data_dir: %s
  host: %s
  port: %d
  socket_dir: /var/run/postgresql
  replication_user: %s
  log_file: /pg/log/postgres/postgresql.log
tags: { nofailover: %v, nosync: false }
log_file: /pg/log/ha-agent/ha-agent.log
`, in.DCS.Cluster, in.Member, in.DCS.Namespace, strings.Join(quoted, ", "), in.Node.SSHHost, in.APIPort, in.Node.SSHHost, in.APIPort,
		in.Spec.BinDir, in.Spec.DataDir, in.Node.SSHHost, in.Spec.Port, in.Spec.ReplicationUser, in.NoFailover)
}

// HAAgent installs the pg-ha-agent binary and configuration and runs it as a service: a systemd
// unit where systemd runs, otherwise a boot script in /etc/pigwf/boot.d (run at host start) that
// is also started now. A changed binary or configuration restarts the agent.
func (a *Activities) HAAgent(ctx context.Context, in AgentInput) (StepResult, error) {
	bin, err := os.ReadFile(a.AgentBinary)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the worker has no pg-ha-agent binary at %s: run `make build`", a.AgentBinary), ErrConfig, nil)
	}
	sum := sha256.Sum256(bin)
	want := hex.EncodeToString(sum[:])
	res := StepResult{Node: in.Node.Addr, Step: StepAgent}

	// The binary travels on stdin, only when the node's copy differs.
	out, err := a.Remote.Run(ctx, in.Node.Target(), sshrun.Command{AsUser: "root", Script: "sha256sum " + AgentBinaryPath + " 2>/dev/null | cut -d' ' -f1"})
	if err != nil {
		return res, a.classify(in.Node, StepAgent, err)
	}
	if strings.TrimSpace(out.Stdout) != want {
		tmp := fmt.Sprintf("%s.pigwf-%s", AgentBinaryPath, randomSuffix())
		up, err := a.Remote.Run(ctx, in.Node.Target(), sshrun.Command{AsUser: "root", Stdin: bin,
			Script: fmt.Sprintf("cat > %[1]s && chmod 755 %[1]s && [ \"$(sha256sum %[1]s | cut -d' ' -f1)\" = %[2]s ] && mv %[1]s %[3]s", tmp, want, AgentBinaryPath)})
		if err != nil {
			return res, a.classify(in.Node, StepAgent, err)
		}
		if err := up.Err(); err != nil {
			return res, fmt.Errorf("while uploading pg-ha-agent to %s: %w", in.Node, err)
		}
		res.Changed = true
		res.Changes = append(res.Changes, "installed "+AgentBinaryPath+" (sha256 "+want[:12]+")")
	}
	script := fmt.Sprintf(`conf=%[1]s
want=%[2]s
restart=%[3]d
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  mkdir -p /etc/pigwf; printf '%%s\n' "$want" > "$conf.pigwf-tmp"; chmod 644 "$conf.pigwf-tmp"; mv "$conf.pigwf-tmp" "$conf"
  changed "wrote $conf"; restart=1
fi
mkdir -p /pg/log/ha-agent; chown postgres:postgres /pg/log/ha-agent
if [ -d /run/systemd/system ]; then
  unit=/etc/systemd/system/pg-ha-agent.service
  uwant='[Unit]
Description=pigwf HA agent (owns PostgreSQL on this node)
After=network-online.target
[Service]
User=postgres
ExecStart=%[4]s supervise --config %[1]s
Restart=always
RestartSec=100ms
KillMode=mixed
[Install]
WantedBy=multi-user.target'
  if [ "$(cat $unit 2>/dev/null)" != "$uwant" ]; then printf '%%s\n' "$uwant" > $unit; systemctl daemon-reload; changed "wrote $unit"; restart=1; fi
  systemctl is-enabled -q pg-ha-agent || { systemctl enable -q pg-ha-agent; changed "enabled pg-ha-agent"; }
  if ! systemctl is-active -q pg-ha-agent; then systemctl start pg-ha-agent; changed "started pg-ha-agent"
  elif [ "$restart" = 1 ]; then systemctl restart pg-ha-agent; changed "restarted pg-ha-agent"; fi
  exit 0
fi
boot=/etc/pigwf/boot.d/50-pg-ha-agent
bwant='#!/bin/sh
# managed by pigwf: runs the HA agent at host start (this host has no systemd)
exec runuser -u postgres -- %[4]s supervise --config %[1]s >> /pg/log/ha-agent/supervise.log 2>&1'
if [ "$(cat $boot 2>/dev/null)" != "$bwant" ]; then mkdir -p /etc/pigwf/boot.d; printf '%%s\n' "$bwant" > $boot; chmod 755 $boot; changed "wrote $boot"; fi
running=$(pgrep -f "^%[4]s supervise --config %[1]s" || true)
# A running agent whose binary was replaced since it started (its /proc exe is "(deleted)") runs
# old code: restart it too.
for p in $running $(pgrep -f "^%[4]s run --config %[1]s" || true); do
  case "$(readlink /proc/$p/exe 2>/dev/null)" in *"(deleted)") stale=1;; esac
done
[ "${stale:-0}" = 1 ] && { restart=1; note "the running agent predates the installed binary"; }
if [ -n "$running" ] && [ "$restart" = 1 ] && [ %[5]d = 1 ]; then
  # Restarting the leader's agent restarts its PostgreSQL (it dies with its agent): a failover.
  note "pg-ha-agent on the current leader runs an older binary or configuration: not restarted now; move the leader away first (pigwf start switchover), then run again"
  restart=0
fi
if [ -n "$running" ] && [ "$restart" = 1 ]; then
  kill $running; for i in $(seq 1 100); do pgrep -f "^%[4]s supervise" >/dev/null || break; sleep 0.1; done
  running=""; note "stopped the agent to restart it"
fi
if [ -z "$running" ]; then
  setsid $boot < /dev/null > /dev/null 2>&1 &
  for i in $(seq 1 50); do pgrep -f "^%[4]s supervise" >/dev/null && break; sleep 0.1; done
  pgrep -f "^%[4]s supervise" >/dev/null || fail "pg-ha-agent did not start: see /pg/log/ha-agent/supervise.log"
  changed "started pg-ha-agent"
else
  note "pg-ha-agent is running"
fi
`, AgentConfigPath, sshrun.ShellQuote(strings.TrimSuffix(RenderAgentConfig(in), "\n")), map[bool]int{true: 1, false: 0}[res.Changed], AgentBinaryPath,
		map[bool]int{true: 1, false: 0}[isPrimaryNow(fmt.Sprintf("http://%s:%d", in.Node.SSHHost, in.APIPort))])
	step, err := a.runStep(ctx, in.Node, StepAgent, script, nil)
	step.Changes = append(res.Changes, step.Changes...)
	step.Changed = step.Changed || res.Changed
	return step, err
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WaitLeaderInput waits until a member leads and takes writes.
type WaitLeaderInput struct {
	DCS    DCSInput `json:"dcs"`
	Member string   `json:"member"`
	APIURL string   `json:"api_url"` // the member's agent API
}

// WaitLeader polls the member's agent until /primary answers 200 and the DCS leader is the
// member, heartbeating meanwhile. It changes nothing.
func (a *Activities) WaitLeader(ctx context.Context, in WaitLeaderInput) (StepResult, error) {
	res := StepResult{Node: "control", Step: StepLeader}
	st, closeFn, err := a.dcsStore(in.DCS)
	if err != nil {
		return res, err
	}
	defer closeFn()
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	last := ""
	for {
		leader := ""
		if snap, err := st.Load(ctx); err == nil && snap.Leader != nil {
			leader = snap.Leader.Value.Holder
		}
		code := 0
		if resp, err := client.Get(in.APIURL + "/primary"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if leader == in.Member && code == http.StatusOK {
			res.Notes = append(res.Notes, fmt.Sprintf("%s leads and takes writes (after %s)", in.Member, time.Since(start).Round(10*time.Millisecond)))
			return res, nil
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
