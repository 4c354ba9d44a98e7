package activities

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/pki"
)

// StepNodeCert is NodeInit's certificate step: the node's certificate from the deployment CA
// (pki.NodeRequest), which etcd clients, the agent's API and PostgreSQL present.
const StepNodeCert = "node-cert"

// NodeCertInput names the node the certificate is for; the CA's fingerprint pins the CA the run
// started with. No key material travels in it or in the result.
type NodeCertInput struct {
	Node        Node   `json:"node"`
	Fingerprint string `json:"fingerprint"`
}

// NodeCertRequest is the certificate node n gets: its nodename, its inventory address and the
// address the control side dials when that differs (both are what clients verify).
func NodeCertRequest(n Node) pki.Request {
	r := pki.NodeRequest(n.Name, n.Addr)
	if n.SSHHost != "" && n.SSHHost != n.Addr {
		if net.ParseIP(n.SSHHost) != nil {
			r.IPs = append(r.IPs, n.SSHHost)
		} else {
			r.DNS = append(r.DNS, n.SSHHost)
		}
	}
	return r
}

// NodeCert installs the node's certificate and key, or reports them unchanged while pki's Check
// passes (issued by this CA, every name present, more than pki.RenewBefore left): a rerun renews
// a certificate close to its end. The key is made on the worker and reaches the node only on the
// SSH command's stdin; it is written root:postgres 0640 (PostgreSQL's rule for a root-owned key).
func (a *Activities) NodeCert(ctx context.Context, in NodeCertInput) (StepResult, error) {
	caPEM, err := a.pinnedCA(in.Fingerprint)
	if err != nil {
		return StepResult{}, err
	}
	r := NodeCertRequest(in.Node)
	if err := r.Validate(); err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("node %s: %v", in.Node, err), ErrConfig, nil)
	}
	cur, err := a.Remote.Run(ctx, in.Node.Target(), sshrun.Command{AsUser: "root",
		Script: fmt.Sprintf("[ -s %[2]s ] && cat %[1]s 2>/dev/null || true", pki.NodeCertPath, pki.NodeKeyPath)})
	if err != nil {
		return StepResult{}, a.classify(in.Node, StepNodeCert, err)
	}
	if v := pki.CheckAgainst(caPEM, []byte(cur.Stdout), r, time.Now()); v.Valid {
		// the files stay; their owner and modes are still put right
		return a.runStep(ctx, in.Node, StepNodeCert, nodeCertPerms+fmt.Sprintf("note %s\n", sshrun.ShellQuote(pki.NodeCertPath+": "+v.Reason)), nil)
	} else {
		a.logger().Info("issuing a node certificate", "node", in.Node.String(), "why", v.Reason)
	}
	pair, err := a.CA.Issue(r)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("issuing the certificate of %s: %v", in.Node, err), ErrConfig, nil)
	}
	// stdin: the key, then the certificate; each is a PEM block, split on the certificate's
	// first line. Key first, each file renamed into place: no reader sees a certificate without
	// its key.
	script := fmt.Sprintf(`in=$(cat)
dir=%[1]s
mkdir -p "$dir"; chmod 755 "$dir"
key=$(printf '%%s\n' "$in" | sed '/-----BEGIN CERTIFICATE-----/,$d')
crt=$(printf '%%s\n' "$in" | sed -n '/-----BEGIN CERTIFICATE-----/,$p')
case "$key" in *"PRIVATE KEY-----"*) ;; *) fail "the key did not arrive whole" ;; esac
case "$crt" in *"END CERTIFICATE-----"*) ;; *) fail "the certificate did not arrive whole" ;; esac
umask 077
printf '%%s\n' "$key" > %[3]s.pigwf-tmp
chown root:postgres %[3]s.pigwf-tmp; chmod 640 %[3]s.pigwf-tmp
mv %[3]s.pigwf-tmp %[3]s
printf '%%s\n' "$crt" > %[2]s.pigwf-tmp
chmod 644 %[2]s.pigwf-tmp
mv %[2]s.pigwf-tmp %[2]s
changed %[4]s
`, pki.NodeCertDir, pki.NodeCertPath, pki.NodeKeyPath,
		sshrun.ShellQuote(fmt.Sprintf("wrote %s (%s; names %s) and its key", pki.NodeCertPath, r.CommonName, strings.Join(append(append([]string{}, r.IPs...), r.DNS...), ", "))))
	return a.runStep(ctx, in.Node, StepNodeCert, script, append(append([]byte{}, pair.Key...), pair.Cert...))
}

// nodeCertPerms keeps the key readable by PostgreSQL and the agent (group postgres) and by
// nobody else, whoever touched it since.
var nodeCertPerms = fmt.Sprintf(`if [ "$(stat -c %%U:%%G:%%a %[1]s)" != root:postgres:640 ]; then
  chown root:postgres %[1]s; chmod 640 %[1]s; changed "%[1]s made root:postgres 0640"
fi
`, pki.NodeKeyPath)
