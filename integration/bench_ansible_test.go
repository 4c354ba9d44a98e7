package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pki"
	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The Ansible anchor of TestBenchNodeInitFleet: testdata/ansible/node.yml (NodeInit's steps as
// Pigsty's node.yml does them, the mapping in its header), run by Debian's ansible-core with an
// inventory rendered from NodeInit's own input, so both sides prepare the same nodes with the
// same names, packages, sysctl and limits.

// nodePlaybook is the anchor's playbook, next to this file.
const nodePlaybook = "testdata/ansible/node.yml"

// ansibleInventory is an Ansible YAML inventory as ansible-inventory reads it: every host in
// all.hosts with its variables, the values every host shares in all.vars.
type ansibleInventory struct {
	All struct {
		Hosts map[string]ansibleHost `yaml:"hosts" json:"-"`
		Vars  ansibleVars            `yaml:"vars" json:"-"`
	} `yaml:"all"`
}

// ansibleHost is one host: how to reach it (host key checked against the inventory's
// known_hosts) and its node settings, from workflows.NodeSpec.
type ansibleHost struct {
	Host           string            `yaml:"ansible_host" json:"ansible_host"`
	Port           int               `yaml:"ansible_port" json:"ansible_port"`
	User           string            `yaml:"ansible_user" json:"ansible_user"`
	KeyFile        string            `yaml:"ansible_ssh_private_key_file,omitempty" json:"ansible_ssh_private_key_file,omitempty"`
	SSHCommonArgs  string            `yaml:"ansible_ssh_common_args" json:"ansible_ssh_common_args"`
	Nodename       string            `yaml:"nodename" json:"nodename"`
	Packages       []string          `yaml:"node_packages" json:"node_packages"`
	Sysctl         map[string]string `yaml:"node_sysctl_params" json:"node_sysctl_params"`
	Limits         map[string]string `yaml:"node_limits" json:"node_limits"`
	PythonDiscover string            `yaml:"ansible_python_interpreter" json:"ansible_python_interpreter"`
}

// ansibleVars are the values the playbook reads that every host shares.
type ansibleVars struct {
	Hosts      []ansibleHostEntry `yaml:"pigwf_hosts" json:"pigwf_hosts"`         // /etc/hosts's block: NodeInitInput.Hosts
	Dirs       []ansibleDir       `yaml:"pigwf_node_dirs" json:"pigwf_node_dirs"` // activities.NodeDirs
	CADir      string             `yaml:"pigwf_ca_dir" json:"pigwf_ca_dir"`       // the deployment CA (control side)
	CertDir    string             `yaml:"pigwf_cert_dir" json:"pigwf_cert_dir"`   // where the control side keeps the issued pairs
	NodeCA     string             `yaml:"pigwf_node_ca" json:"pigwf_node_ca"`
	NodeCert   string             `yaml:"pigwf_node_cert" json:"pigwf_node_cert"`
	NodeKey    string             `yaml:"pigwf_node_key" json:"pigwf_node_key"`
	NodeCertIn string             `yaml:"pigwf_node_cert_dir" json:"pigwf_node_cert_dir"`
}

type ansibleHostEntry struct {
	Addr string `yaml:"addr" json:"addr"`
	Name string `yaml:"name" json:"name"`
}

type ansibleDir struct {
	Path  string `yaml:"path" json:"path"`
	Owner string `yaml:"owner" json:"owner"`
	Group string `yaml:"group" json:"group"`
	Mode  string `yaml:"mode" json:"mode"` // octal with its leading 0, as the file module reads a string
}

// newAnsibleInventory is the anchor's inventory for NodeInit input in: the nodes it prepares,
// with the CA in caDir and the issued pairs kept in certDir. Its values passed the inventory's
// rules (starter.NodeInitInput's); the playbook quotes what reaches a shell.
func newAnsibleInventory(in workflows.NodeInitInput, caDir, certDir string) (ansibleInventory, error) {
	var inv ansibleInventory
	inv.All.Hosts = map[string]ansibleHost{}
	for _, spec := range in.Nodes {
		n := spec.Node
		t := n.Target()
		if t.KnownHosts == "" {
			return inv, fmt.Errorf("node %s has no pigwf_known_hosts: the anchor checks host keys against the inventory's file", n)
		}
		_, portText, err := net.SplitHostPort(t.Addr()) // the runner's own port default
		if err != nil {
			return inv, err
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			return inv, err
		}
		inv.All.Hosts[n.Addr] = ansibleHost{
			Host: t.Host, Port: port, User: t.User, KeyFile: t.KeyFile, Nodename: n.Name,
			SSHCommonArgs: "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + sshrun.ShellQuote(t.KnownHosts),
			Packages:      spec.Packages, Sysctl: spec.Sysctl, Limits: spec.Limits,
			PythonDiscover: "auto_silent",
		}
	}
	for _, h := range in.Hosts {
		inv.All.Vars.Hosts = append(inv.All.Vars.Hosts, ansibleHostEntry(h))
	}
	for _, d := range activities.NodeDirs {
		owner, group, ok := strings.Cut(d.Owner, ":")
		if !ok {
			return inv, fmt.Errorf("activities.NodeDirs: owner %q of %s is not user:group", d.Owner, d.Path)
		}
		inv.All.Vars.Dirs = append(inv.All.Vars.Dirs, ansibleDir{Path: d.Path, Owner: owner, Group: group, Mode: "0" + d.Mode})
	}
	inv.All.Vars.CADir, inv.All.Vars.CertDir = caDir, certDir
	inv.All.Vars.NodeCA, inv.All.Vars.NodeCert, inv.All.Vars.NodeKey, inv.All.Vars.NodeCertIn = pki.NodeCAPath, pki.NodeCertPath, pki.NodeKeyPath, pki.NodeCertDir
	return inv, nil
}

// ensureAnsible installs Debian's ansible-core when ansible-playbook is missing (once; a
// machine that has it is left as it is) and returns the playbook runner's path.
func ensureAnsible(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("ansible-playbook"); err == nil {
		return p
	}
	t.Logf("ansible-playbook missing: installing Debian's ansible-core")
	cmd := exec.Command("apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", "ansible-core")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install ansible-core: %v\n%s", err, out)
	}
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Fatalf("ansible-core installed, yet no ansible-playbook on PATH: %v", err)
	}
	return p
}

// ansibleVariant is one way of running the anchor.
type ansibleVariant struct {
	persist bool // ssh_args with ControlMaster=auto, ControlPersist=60s (Ansible's own default and Pigsty's)
	forks   int  // 0: Ansible's default (5)
}

func (v ansibleVariant) String() string {
	s := "ansible, no ControlPersist"
	if v.persist {
		s = "ansible, ControlPersist"
	}
	if v.forks == 0 {
		return s + ", default forks (5)"
	}
	return s + ", forks " + strconv.Itoa(v.forks)
}

// ansibleRun is one playbook run.
type ansibleRun struct {
	wall  time.Duration
	recap map[string]recapCounts // by host
	out   string
}

type recapCounts struct{ ok, changed, unreachable, failed int }

var ansibleRecapRE = regexp.MustCompile(`(?m)^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// runAnsible writes inv to dir and runs the playbook on its hosts as v says, with Pigsty's
// pipelining and host key checking on; a run with ControlPersist has its own control socket
// directory, whose masters are ended afterwards. It fails the test on a failed or unreachable
// host.
func runAnsible(t *testing.T, playbook, dir string, inv ansibleInventory, v ansibleVariant) ansibleRun {
	t.Helper()
	text, err := yaml.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yml")
	cfg := filepath.Join(dir, "ansible.cfg") // empty: nothing from /etc/ansible or the working directory
	cpDir := filepath.Join(dir, "cp")
	for _, f := range []struct {
		path string
		data []byte
	}{{invPath, text}, {cfg, nil}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(inv.All.Vars.CertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sshArgs := "-C -o ControlMaster=no"
	if v.persist {
		sshArgs = "-C -o ControlMaster=auto -o ControlPersist=60s"
		defer endControlMasters(t, cpDir)
	}
	forks := v.forks
	if forks == 0 {
		forks = 5
	}
	abs, err := filepath.Abs(playbook)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ensureAnsible(t), "-i", invPath, abs)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_HOME="+filepath.Join(dir, "home"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_FORKS="+strconv.Itoa(forks), "ANSIBLE_PIPELINING=True", "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_SSH_ARGS="+sshArgs,
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+cpDir, "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=False")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := ansibleRun{wall: time.Since(start), out: string(out), recap: parseAnsibleRecap(string(out))}
	if err != nil {
		t.Fatalf("%s: ansible-playbook: %v\n%s", v, err, tailLines(string(out), 60))
	}
	if len(r.recap) != len(inv.All.Hosts) {
		t.Fatalf("%s: the recap lists %d hosts, the inventory %d:\n%s", v, len(r.recap), len(inv.All.Hosts), tailLines(string(out), 60))
	}
	for h, c := range r.recap {
		if c.failed > 0 || c.unreachable > 0 {
			t.Fatalf("%s: %s failed=%d unreachable=%d\n%s", v, h, c.failed, c.unreachable, tailLines(string(out), 60))
		}
	}
	return r
}

func parseAnsibleRecap(out string) map[string]recapCounts {
	recap := map[string]recapCounts{}
	_, after, _ := strings.Cut(out, "PLAY RECAP")
	for _, m := range ansibleRecapRE.FindAllStringSubmatch(after, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		recap[m[1]] = recapCounts{ok: n(2), changed: n(3), unreachable: n(4), failed: n(5)}
	}
	return recap
}

// endControlMasters ends the ControlPersist masters a run left in dir (ssh -O exit on each socket).
func endControlMasters(t *testing.T, dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, s := range socks {
		if out, err := exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "control-master").CombinedOutput(); err != nil {
			t.Logf("ending the control master %s: %v %s", s, err, bytes.TrimSpace(out))
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// The anchor's inventory reads back through Ansible's own reader as written: every host with its
// connection, names and node settings, the shared values once. No lab is needed; it skips when
// Ansible is not installed (the bench installs it).
func TestAnsibleInventoryRoundTrip(t *testing.T) {
	reader, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Skip("ansible-inventory not installed (make bench installs ansible-core)")
	}
	text := `all:
  children:
    nodes:
      hosts:
        10.213.50.20: { nodename: node-10 }
        10.213.50.21: { nodename: node-11, ansible_port: 2222, node_sysctl_params: { net.core.somaxconn: 1024 } }
      vars: { node_cluster: nodes }
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: /var/lib/lab/ssh/id_ed25519
    pigwf_known_hosts: "/var/lib/lab/ssh/known hosts"
`
	parsed, err := inventory.ParseInventory("lab.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := parsed.Cluster("nodes")
	if err != nil {
		t.Fatal(err)
	}
	in, err := starter.NodeInitInput(cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := newAnsibleInventory(in, "/ca", "/certs")
	if err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, cfg := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "ansible.cfg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(reader, "-i", path, "--list", "--export")
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_HOME="+filepath.Join(dir, "home"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory: %v\n%s%s", err, out, stderr.Bytes())
	}
	var got struct {
		Meta struct {
			Hostvars map[string]ansibleHost `json:"hostvars"`
		} `json:"_meta"`
		All struct {
			Vars ansibleVars `json:"vars"`
		} `json:"all"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ansible-inventory's JSON: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got.Meta.Hostvars, inv.All.Hosts) {
		t.Errorf("hosts as Ansible reads them:\n%+v\nwritten:\n%+v", got.Meta.Hostvars, inv.All.Hosts)
	}
	if !reflect.DeepEqual(got.All.Vars, inv.All.Vars) {
		t.Errorf("shared values as Ansible reads them:\n%+v\nwritten:\n%+v", got.All.Vars, inv.All.Vars)
	}
	// what NodeInit would get, in Ansible's terms
	h := got.Meta.Hostvars["10.213.50.21"]
	if h.Port != 2222 || h.Nodename != "node-11" || h.Sysctl["net.core.somaxconn"] != "1024" || h.Limits["nofile"] != inventory.DefaultLimits["nofile"] ||
		!strings.Contains(h.SSHCommonArgs, `UserKnownHostsFile='/var/lib/lab/ssh/known hosts'`) || len(got.All.Vars.Hosts) != 2 || got.All.Vars.Dirs[1].Mode != "0700" {
		t.Errorf("host 10.213.50.21 as Ansible reads it: %+v (shared %+v)", h, got.All.Vars)
	}
}
