package activities

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pki"
)

// NodeInit's steps, in the order they run on each node. The CA certificate comes last: it is
// the marker later runbooks check, so it must only exist on a node that finished NodeInit.
const (
	StepConnect     = "connect"
	StepIdentity    = "identity"
	StepOSUser      = "postgres-user"
	StepPackages    = "packages"
	StepDirectories = "directories"
	StepKernel      = "kernel"
	StepCACert      = "ca-cert"
)

// NodeInitSteps lists the steps in order. The node certificate comes before the CA marker.
var NodeInitSteps = []string{StepConnect, StepIdentity, StepOSUser, StepPackages, StepDirectories, StepKernel, StepNodeCert, StepCACert}

// CAPath is where nodes keep the deployment's CA certificate: the "managed by pigwf" marker.
const CAPath = pki.NodeCAPath

// CAInfo describes the deployment CA (an activity result: its fingerprint, never its key).
type CAInfo = pki.Info

// HostEntry is one line of the managed block in /etc/hosts.
type HostEntry struct {
	Addr string `json:"addr"`
	Name string `json:"name"`
}

// NodeIdentityInput sets the node's name and the cluster's names in /etc/hosts.
type NodeIdentityInput struct {
	Node  Node        `json:"node"`
	Hosts []HostEntry `json:"hosts"`
}

// NodePackagesInput lists the packages a node needs.
type NodePackagesInput struct {
	Node     Node     `json:"node"`
	Packages []string `json:"packages"`
}

// NodeKernelInput holds sysctl settings and the postgres user's limits.
type NodeKernelInput struct {
	Node   Node              `json:"node"`
	Sysctl map[string]string `json:"sysctl"`
	Limits map[string]string `json:"limits"`
}

// NodeCACertInput installs the CA whose fingerprint EnsureCA returned.
type NodeCACertInput struct {
	Node        Node   `json:"node"`
	Fingerprint string `json:"fingerprint"`
}

// EnsureCA creates the deployment CA on the control side once. Only its fingerprint is returned.
func (a *Activities) EnsureCA(ctx context.Context) (CAInfo, error) {
	info, err := a.CA.Ensure()
	if err != nil {
		return info, temporal.NewNonRetryableApplicationError(fmt.Sprintf("CA store %s: %v", a.CA.Dir, err), ErrConfig, nil)
	}
	a.logger().Info("deployment CA", "dir", a.CA.Dir, "fingerprint", info.Fingerprint, "created", info.Created)
	return info, nil
}

// NodeConnect checks that the node answers over SSH with the expected host key, that we are
// root (or can sudo), and that it is a Debian-family system NodeInit knows how to prepare.
func (a *Activities) NodeConnect(ctx context.Context, node Node) (StepResult, error) {
	script := `. /etc/os-release 2>/dev/null || true
command -v dpkg-query >/dev/null 2>&1 || fail "${PRETTY_NAME:-this system} has no dpkg: pigwf NodeInit prepares Debian and Ubuntu hosts"
note "${PRETTY_NAME:-unknown OS}, kernel $(uname -r), $(nproc) CPU, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
`
	return a.runStep(ctx, node, StepConnect, script, nil)
}

// NodeIdentity sets the hostname (live and /etc/hostname) and the cluster's names in /etc/hosts.
func (a *Activities) NodeIdentity(ctx context.Context, in NodeIdentityInput) (StepResult, error) {
	var block strings.Builder
	block.WriteString("# BEGIN pigwf managed hosts\n")
	for _, h := range in.Hosts {
		fmt.Fprintf(&block, "%s %s\n", h.Addr, h.Name)
	}
	block.WriteString("# END pigwf managed hosts")
	script := fmt.Sprintf(`want=%s
if [ "$(hostname)" != "$want" ]; then hostname "$want"; changed "hostname set to $want"; fi
# Files are rewritten in place, not renamed over: /etc/hosts and /etc/hostname are often bind mounts.
if [ "$(cat /etc/hostname 2>/dev/null)" != "$want" ]; then printf '%%s\n' "$want" > /etc/hostname; changed "/etc/hostname set to $want"; fi
block=%s
current=$(sed -n '/^# BEGIN pigwf managed hosts$/,/^# END pigwf managed hosts$/p' /etc/hosts 2>/dev/null || true)
if [ "$current" != "$block" ]; then
  tmp=$(mktemp)
  sed '/^# BEGIN pigwf managed hosts$/,/^# END pigwf managed hosts$/d' /etc/hosts > "$tmp" 2>/dev/null || true
  printf '%%s\n' "$block" >> "$tmp"
  cat "$tmp" > /etc/hosts
  rm -f "$tmp"
  changed "/etc/hosts lists the %d cluster nodes"
fi
`, sshrun.ShellQuote(in.Node.Name), sshrun.ShellQuote(block.String()), len(in.Hosts))
	if in.Node.Name == "" {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("node %s has no nodename: set pg_seq (name <cluster>-<seq>) or nodename in the inventory", in.Node.Addr), ErrConfig, nil)
	}
	return a.runStep(ctx, in.Node, StepIdentity, script, nil)
}

// NodeOSUser makes sure the postgres OS user and its home exist.
func (a *Activities) NodeOSUser(ctx context.Context, node Node) (StepResult, error) {
	script := `if id -u postgres >/dev/null 2>&1; then
  note "OS user postgres exists (uid $(id -u postgres))"
else
  getent group postgres >/dev/null || groupadd --system postgres
  useradd --system --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash --comment "PostgreSQL administrator" postgres
  changed "created OS user postgres (uid $(id -u postgres))"
fi
home=$(getent passwd postgres | cut -d: -f6)
if [ ! -d "$home" ]; then mkdir -p "$home"; chown postgres:postgres "$home"; chmod 755 "$home"; changed "created $home"; fi
if [ "$(stat -c %U "$home")" != postgres ]; then chown postgres:postgres "$home"; changed "owner of $home set to postgres"; fi
`
	return a.runStep(ctx, node, StepOSUser, script, nil)
}

// NodePackages installs the packages that are missing, and only those.
func (a *Activities) NodePackages(ctx context.Context, in NodePackagesInput) (StepResult, error) {
	quoted := make([]string, len(in.Packages))
	for i, p := range in.Packages {
		quoted[i] = sshrun.ShellQuote(p)
	}
	script := fmt.Sprintf(`missing=""
for p in %s; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then note "present: %s"; exit 0; fi
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this node: install$missing by hand"
export DEBIAN_FRONTEND=noninteractive
# Wait for other package jobs instead of failing on the dpkg lock.
apt="apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold"
if ! $apt install --no-install-recommends $missing >/tmp/pigwf-apt.$$ 2>&1; then
  $apt update >>/tmp/pigwf-apt.$$ 2>&1 || true
  $apt install --no-install-recommends $missing >>/tmp/pigwf-apt.$$ 2>&1 || { tail -n 20 /tmp/pigwf-apt.$$ >&2; rm -f /tmp/pigwf-apt.$$; exit 1; }
fi
rm -f /tmp/pigwf-apt.$$
changed "installed$missing"
`, strings.Join(quoted, " "), strings.Join(in.Packages, " "))
	return a.runStep(ctx, in.Node, StepPackages, script, nil)
}

// DirSpec is one directory NodeInit prepares.
type DirSpec struct{ Path, Owner, Mode string }

// NodeDirs are the directories PostgreSQL work needs on every node.
var NodeDirs = []DirSpec{
	{"/pg", "postgres:postgres", "750"},
	{"/pg/data", "postgres:postgres", "700"},
	{"/pg/conf", "postgres:postgres", "750"},
	{"/pg/bin", "postgres:postgres", "755"},
	{"/pg/tmp", "postgres:postgres", "750"},
	{"/pg/spool", "postgres:postgres", "750"},
	{"/pg/log", "postgres:postgres", "750"},
	{"/pg/log/postgres", "postgres:postgres", "750"},
	{"/pg/log/pgbackrest", "postgres:postgres", "750"},
	{"/pg/log/ha-agent", "postgres:postgres", "750"},
	{"/var/lib/pgbackrest", "postgres:postgres", "750"},
	{"/var/run/postgresql", "postgres:postgres", "2775"},
	{"/var/lib/pigwf", "root:root", "755"},
	{"/etc/pigwf", "root:root", "755"},
}

// NodeDirectories creates the directories with their owners and modes, fixing drifted ones.
func (a *Activities) NodeDirectories(ctx context.Context, node Node) (StepResult, error) {
	var b strings.Builder
	b.WriteString(`ensure_dir() {
  p=$1; o=$2; m=$3
  if [ ! -d "$p" ]; then mkdir -p "$p"; chown "$o" "$p"; chmod "$m" "$p"; changed "created $p ($o, $m)"; return; fi
  [ "$(stat -c %U:%G "$p")" = "$o" ] || { chown "$o" "$p"; changed "owner of $p set to $o"; }
  [ "$(stat -c %a "$p")" = "$m" ] || { chmod "$m" "$p"; changed "mode of $p set to $m"; }
}
`)
	for _, d := range NodeDirs {
		fmt.Fprintf(&b, "ensure_dir %s %s %s\n", d.Path, d.Owner, d.Mode)
	}
	fmt.Fprintf(&b, "note \"%d directories checked\"\n", len(NodeDirs))
	return a.runStep(ctx, node, StepDirectories, b.String(), nil)
}

// NodeKernel sets kernel parameters the node allows (and persists them in sysctl.d) and the
// postgres user's resource limits. A parameter the node refuses (a container, a shared kernel)
// is skipped with a note rather than failing the run.
func (a *Activities) NodeKernel(ctx context.Context, in NodeKernelInput) (StepResult, error) {
	var b strings.Builder
	// Sorted keys: the same input always produces the same script and file content.
	keys := sortedKeys(in.Sysctl)
	b.WriteString("conf=''\n")
	for _, k := range keys {
		v := in.Sysctl[k]
		fmt.Fprintf(&b, `k=%s; v=%s
if cur=$(sysctl -n "$k" 2>/dev/null); then
  if [ "$(echo $cur)" = "$(echo $v)" ]; then :
  elif sysctl -q -w "$k=$v" >/dev/null 2>&1; then changed "$k = $v (was $(echo $cur))"
  else note "$k cannot be set on this node (stays $(echo $cur)), skipped"; fi
  conf="$conf$k = $v
"
else note "$k does not exist on this kernel, skipped"; fi
`, sshrun.ShellQuote(k), sshrun.ShellQuote(v))
	}
	b.WriteString(`want=$(printf '# managed by pigwf node-init\n%s' "$conf")
if [ "$(cat /etc/sysctl.d/90-pigwf.conf 2>/dev/null)" != "$want" ]; then
  mkdir -p /etc/sysctl.d; printf '%s\n' "$want" > /etc/sysctl.d/90-pigwf.conf; changed "wrote /etc/sysctl.d/90-pigwf.conf"
fi
`)
	var limits strings.Builder
	limits.WriteString("# managed by pigwf node-init\n")
	for _, k := range sortedKeys(in.Limits) {
		fmt.Fprintf(&limits, "postgres soft %s %s\npostgres hard %s %s\n", k, in.Limits[k], k, in.Limits[k])
	}
	fmt.Fprintf(&b, `want=%s
if [ "$(cat /etc/security/limits.d/pigwf-postgres.conf 2>/dev/null)" != "$want" ]; then
  mkdir -p /etc/security/limits.d; printf '%%s\n' "$want" > /etc/security/limits.d/pigwf-postgres.conf; changed "wrote /etc/security/limits.d/pigwf-postgres.conf"
fi
`, sshrun.ShellQuote(strings.TrimSuffix(limits.String(), "\n")))
	return a.runStep(ctx, in.Node, StepKernel, b.String(), nil)
}

// NodeCACert writes the deployment CA certificate to /etc/pki/ca.crt. A node that already has a
// different CA belongs to another deployment: pigwf refuses to replace it.
func (a *Activities) NodeCACert(ctx context.Context, in NodeCACertInput) (StepResult, error) {
	pem, err := a.pinnedCA(in.Fingerprint)
	if err != nil {
		return StepResult{}, err
	}
	script := fmt.Sprintf(`want=$(cat)
if [ -f %[1]s ]; then
  if [ "$(cat %[1]s)" = "$want" ]; then note "%[1]s is the deployment CA (sha256 %[2]s)"; exit 0; fi
  fail "%[1]s holds a different CA (another deployment's?): pigwf will not replace it; check it, move it away, then run node-init again"
fi
mkdir -p /etc/pki; chmod 755 /etc/pki
printf '%%s\n' "$want" > %[1]s.pigwf-tmp
chmod 644 %[1]s.pigwf-tmp
mv %[1]s.pigwf-tmp %[1]s
changed "wrote %[1]s (CA sha256 %[2]s)"
`, CAPath, short(in.Fingerprint))
	return a.runStep(ctx, in.Node, StepCACert, script, pem)
}

// pinnedCA is the CA certificate, provided it is still the one the run started with (its
// fingerprint from EnsureCA): node steps never install another deployment's CA or certificates.
func (a *Activities) pinnedCA(fingerprint string) ([]byte, error) {
	pem, info, err := a.CA.CertPEM()
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("CA store %s: %v", a.CA.Dir, err), ErrConfig, nil)
	}
	if info.Fingerprint != fingerprint {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"the CA in %s (sha256 %s) is not the one this run started with (%s): was the CA directory replaced? Restore it or start a new run",
			a.CA.Dir, short(info.Fingerprint), short(fingerprint)), ErrConfig, nil)
	}
	return pem, nil
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
