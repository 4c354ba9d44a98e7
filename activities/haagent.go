package activities

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/activities/sshrun"
	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/agent"
	"github.com/pigwf/pigwf/pki"
)

// AgentInput installs and starts the HA agent on one member.
type AgentInput struct {
	Node       Node     `json:"node"`
	Member     string   `json:"member"`
	Spec       PGSpec   `json:"spec"`
	DCS        DCSInput `json:"dcs"`
	APIPort    int      `json:"api_port"`
	NoFailover bool     `json:"nofailover"` // an offline member: added to Tags' nofailover
	// Tags are the member's pg_tags (absent in runs started before them).
	Tags haagent.ClusterTags `json:"tags,omitzero"`
}

// AgentConfigPath is where the agent's local configuration lives on a node: where the agent
// reads it by default.
const AgentConfigPath = agent.DefaultConfigPath

// AgentBinaryPath is where the agent binary is installed on nodes.
const AgentBinaryPath = "/usr/local/bin/pg-ha-agent"

// AgentConfig is one member's local configuration in the agent's own type: the file is this
// value marshalled, and pg-ha-agent parses it back into the same type, so writer and reader
// cannot disagree on a key. Passwords never go in it (the agent reads ~postgres/.pgpass).
func AgentConfig(in AgentInput) agent.LocalConfig {
	return agent.LocalConfig{
		Cluster: in.DCS.Cluster,
		Name:    in.Member,
		Prefix:  in.DCS.Namespace,
		Etcd:    agent.EtcdConfig{Endpoints: in.DCS.Endpoints},
		API: agent.APIConfig{
			Listen: fmt.Sprintf("%s:%d", in.Node.SSHHost, in.APIPort),
			URL:    AgentAPIURL(in.Node.SSHHost, in.APIPort, in.DCS.Plaintext),
		},
		Postgres: agent.PostgresConfig{
			BinDir:          in.Spec.BinDir,
			DataDir:         in.Spec.DataDir,
			Host:            in.Node.SSHHost,
			Port:            in.Spec.Port,
			SocketDir:       "/var/run/postgresql",
			ReplicationUser: in.Spec.ReplicationUser,
			LogFile:         "/pg/log/postgres/postgresql.log",
		},
		Tags: agent.TagsConfig{NoFailover: in.NoFailover || in.Tags.NoFailover, NoSync: in.Tags.NoSync,
			NoLoadBalance: in.Tags.NoLoadBalance, Custom: in.Tags.Custom},
		LogFile:           "/pg/log/ha-agent/ha-agent.log",
		TLS:               nodeTLS(in.DCS.Plaintext),
		InsecurePlaintext: in.DCS.Plaintext,
	}
}

// nodeTLS: the node's files from NodeInit's certificate step, which its agent, its PostgreSQL
// and the clients pigwf runs on it use; none in a plain-text lab.
func nodeTLS(plaintext bool) pki.Files {
	if plaintext {
		return pki.Files{}
	}
	return pki.NodeFiles()
}

// RenderAgentConfig is the agent's local configuration file: AgentConfig in YAML, which quotes
// whatever values need it.
func RenderAgentConfig(in AgentInput) (string, error) {
	var b strings.Builder
	b.WriteString("# managed by pigwf pg-cluster-create\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(AgentConfig(in)); err != nil {
		return "", fmt.Errorf("while rendering the HA agent config of %s: %w", in.Member, err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("while rendering the HA agent config of %s: %w", in.Member, err)
	}
	return b.String(), nil
}

// HAAgent installs the pg-ha-agent binary and configuration and runs it as a service: a systemd
// unit where systemd runs, otherwise a boot script in /etc/pigwf/boot.d (run at host start) that
// is also started now. A changed binary or configuration restarts the agent.
func (a *Activities) HAAgent(ctx context.Context, in AgentInput) (StepResult, error) {
	if err := a.checkPlaintext(in.DCS.Plaintext); err != nil {
		return StepResult{}, err
	}
	bin, err := os.ReadFile(a.AgentBinary)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the worker has no pg-ha-agent binary at %s: run `make build`", a.AgentBinary), ErrConfig, nil)
	}
	conf, err := RenderAgentConfig(in)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
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
	client, err := a.agentClient(time.Second)
	if err != nil {
		return res, err
	}
	script := withInputs(haAgentScript,
		shellVar{"conf", AgentConfigPath},
		shellVar{"want", strings.TrimSuffix(conf, "\n")},
		shellVar{"restart", flag(res.Changed)},
		shellVar{"bin", AgentBinaryPath},
		shellVar{"leader", flag(isPrimaryNow(ctx, client, AgentAPIURL(in.Node.SSHHost, in.APIPort, in.DCS.Plaintext)))})
	step, err := a.runStep(ctx, in.Node, StepAgent, script, nil)
	step.Changes = append(res.Changes, step.Changes...)
	step.Changed = step.Changed || res.Changed
	return step, err
}

// flag is a boolean as the scripts test it: "1" or "0".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
