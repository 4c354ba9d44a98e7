package activities

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/inventory"
)

// PgCluster's steps.
const (
	StepPrecheck    = "precheck"
	StepCredentials = "credentials"
	StepInitdb      = "initdb"
	StepConfigure   = "configure"
	StepRegisterDCS = "dcs-register"
	StepAgent       = "ha-agent"
	StepLeader      = "leader"
	StepRoles       = "roles"
	StepClone       = "clone"
	StepStreaming   = "streaming"
	StepUsers       = "users-databases"
	StepBackupConf  = "backup-config"
	StepStanza      = "backup-stanza"
	StepFullBackup  = "full-backup"
	StepVerify      = "verify"
)

// PGSpec is the cluster's PostgreSQL layout, the same on every member. No secrets.
type PGSpec struct {
	Cluster         string            `json:"cluster"`
	Port            int               `json:"port"`
	DataDir         string            `json:"data_dir"`
	BinDir          string            `json:"bin_dir"`
	Checksums       bool              `json:"checksums"`
	Parameters      map[string]string `json:"parameters"` // defaults merged with pg_parameters
	HBA             []string          `json:"hba"`        // rendered pg_hba.conf lines
	ReplicationUser string            `json:"replication_user"`
	AdminUser       string            `json:"admin_user"`
	BackupRepoPath  string            `json:"backup_repo_path"`
	BackupRetention int               `json:"backup_retention"`
	// BackupClients are the members whose pgBackRest may reach this node's pgBackRest TLS server
	// (tls-server-auth, by the nodename their certificate holds): every member, when backups are
	// taken from a standby (pg_backup_source: replica), which needs the leader reachable. Empty:
	// the configuration has no server.
	BackupClients []string `json:"backup_clients,omitempty"`
	InventoryFile string   `json:"inventory_file"` // where the worker reads passwords
	// Plaintext: the inventory's pigwf_insecure_plaintext, a lab whose PostgreSQL runs without
	// TLS (Parameters, RenderHBA) and whose clones connect without it. Otherwise every
	// connection to another member verifies its certificate (sslmode=verify-full).
	Plaintext bool `json:"plaintext,omitempty"`
}

// PgNodeInput is a step on one member.
type PgNodeInput struct {
	Node Node   `json:"node"`
	Spec PGSpec `json:"spec"`
	// Primary is where replicas clone from and where SQL steps run.
	Primary Node `json:"primary"`
	// ClusterSysid is the system identifier this cluster already has ("" before initdb).
	ClusterSysid string `json:"cluster_sysid,omitempty"`
	// Members are every member's name, for steps that act on all of them.
	Members []string `json:"members,omitempty"`
	// Etcd endpoints, for checks from the node.
	Etcd []string `json:"etcd,omitempty"`
}

func (in PgNodeInput) pgEnv() string {
	return fmt.Sprintf("PGBIN=%s; PGDATA=%s; PGPORT=%d; PIGWF_CLUSTER=%s\n", sshrun.ShellQuote(in.Spec.BinDir), sshrun.ShellQuote(in.Spec.DataDir), in.Spec.Port, sshrun.ShellQuote(in.Spec.Cluster))
}

// ClusterMarker is what initdb and clone leave in /var/lib/pigwf/pg-cluster: "<cluster> <sysid>",
// so a later run knows the data directory is this cluster's even before the DCS does.
func ClusterMarker(cluster, sysid string) string { return cluster + " " + sysid }

// sysidScript prints the data directory's system identifier (empty when there is no cluster).
const sysidScript = `pg_sysid() {
  [ -f "$PGDATA/PG_VERSION" ] || return 0
  "$PGBIN/pg_controldata" -D "$PGDATA" 2>/dev/null | awk -F: '/Database system identifier/ {gsub(/ /, "", $2); print $2}'
}
`

// PgPrecheck checks a node before anything is changed. Problems come back in the result (not
// as an error) so the workflow can report every node's problems together.
func (a *Activities) PgPrecheck(ctx context.Context, in PgNodeInput) (StepResult, error) {
	if err := a.checkPlaintext(in.Spec.Plaintext); err != nil {
		return StepResult{}, err
	}
	var probes strings.Builder
	for _, e := range in.Etcd {
		hostport := strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")
		host, port, _ := strings.Cut(hostport, ":")
		fmt.Fprintf(&probes, "%s|%s|%s\n", host, port, hostport)
	}
	script := in.pgEnv() + sysidScript + withInputs(pgPrecheckScript,
		shellVar{"ca", CAPath},
		shellVar{"unmanaged", UnmanagedMessage(in.Node.String(), in.Spec.Cluster)},
		shellVar{"node_cert", nodeTLS(in.Spec.Plaintext).Cert},
		shellVar{"node_key", nodeTLS(in.Spec.Plaintext).Key},
		shellVar{"etcd_count", fmt.Sprint(len(in.Etcd))},
		shellVar{"etcd_probes", probes.String()})
	return a.runStep(ctx, in.Node, StepPrecheck, script, nil)
}

// UnmanagedMessage is the precheck's answer for a node without the CA marker: node-init comes first.
func UnmanagedMessage(node, cluster string) string {
	return fmt.Sprintf("node %s is not managed by pigwf: run `pigwf start node-init --cluster %s` first", node, cluster)
}

// PgCredentials writes the replication password into postgres's ~/.pgpass (mode 0600): libpq
// reads it for cloning, streaming and rewinding, so no password is ever on a command line.
func (a *Activities) PgCredentials(ctx context.Context, in PgNodeInput) (StepResult, error) {
	repl, _, _, err := a.clusterSecrets(in.Spec.InventoryFile, in.Spec.Cluster)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
	}
	line, err := PgpassLine(in.Spec.ReplicationUser, repl)
	if err != nil {
		return StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
	}
	script := `want=$(cat)
home=$(getent passwd postgres | cut -d: -f6)
f="$home/.pgpass"
if [ -f "$f" ] && [ "$(cat "$f")" = "$want" ] && [ "$(stat -c '%U %a' "$f")" = "postgres 600" ]; then note "$f holds the replication credentials"; exit 0; fi
umask 077
printf '%s\n' "$want" > "$f.pigwf-tmp"
chown postgres:postgres "$f.pigwf-tmp"
mv "$f.pigwf-tmp" "$f"
changed "wrote $f (replication credentials, mode 0600)"
`
	return a.runStep(ctx, in.Node, StepCredentials, script, []byte(line))
}

// PgpassLine is the ~/.pgpass line giving user's password for every host, port and database.
// libpq reads ':' as the field separator and '\' as an escape, so both are escaped in the values
// (an inventory password such as "a:b\c" would otherwise be cut, or read as another user's); a
// line break cannot be written at all.
func PgpassLine(user, password string) (string, error) {
	if strings.ContainsAny(user+password, "\r\n") {
		return "", fmt.Errorf("a .pgpass entry cannot hold a line break (user %q)", user)
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	return "*:*:*:" + esc.Replace(user) + ":" + esc.Replace(password), nil
}

// PgInitdb creates the primary's data directory with data checksums, once.
func (a *Activities) PgInitdb(ctx context.Context, in PgNodeInput) (StepResult, error) {
	checksums := ""
	if in.Spec.Checksums {
		checksums = "--data-checksums"
	}
	script := in.pgEnv() + sysidScript + fmt.Sprintf(`sysid=$(pg_sysid)
if [ -n "$sysid" ]; then fact sysid "$sysid"; note "$PGDATA already holds system $sysid"; exit 0; fi
mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
out=$(runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 %s --auth-local=peer --auth-host=scram-sha-256 2>&1) || { echo "$out" >&2; exit 1; }
sysid=$(pg_sysid)
echo "$PIGWF_CLUSTER $sysid" > /var/lib/pigwf/pg-cluster
fact sysid "$sysid"
changed "initdb $PGDATA (system $sysid%s)"
`, checksums, map[bool]string{true: ", data checksums", false: ""}[in.Spec.Checksums])
	return a.runStep(ctx, in.Node, StepInitdb, script, nil)
}

// defaultParameters are pigwf's PostgreSQL settings for an HA member; pg_parameters override.
var defaultParameters = map[string]string{
	"max_connections":              "200",
	"shared_buffers":               "128MB",
	"wal_level":                    "replica",
	"wal_log_hints":                "on", // pg_rewind needs it (checksums also do)
	"max_wal_senders":              "16",
	"max_replication_slots":        "16",
	"wal_keep_size":                "256MB",
	"hot_standby":                  "on",
	"hot_standby_feedback":         "on",
	"wal_receiver_status_interval": "1s",
	"password_encryption":          "scram-sha-256",
	"logging_collector":            "on",
	"log_directory":                "/pg/log/postgres",
	"log_filename":                 "postgresql-%a.log",
	"log_truncate_on_rotation":     "on",
	"log_min_duration_statement":   "1000",
	"log_checkpoints":              "on",
	"log_lock_waits":               "on",
	"log_replication_commands":     "on",
	"archive_mode":                 "on",
	"archive_timeout":              "60s",
}

// Parameters merges pigwf's defaults, the inventory's pg_parameters and the settings pigwf
// derives, which win (port, socket directory, archiving into this cluster's pgBackRest stanza,
// TLS with the node's certificate unless the inventory is a plain-text lab): the inventory
// refuses them in pg_parameters, and a workflow input that slipped one in still cannot
// override them.
func Parameters(cluster string, port int, plaintext bool, overrides map[string]string) map[string]string {
	p := map[string]string{}
	for k, v := range defaultParameters {
		p[k] = v
	}
	for k, v := range overrides {
		p[k] = v
	}
	p["listen_addresses"] = "*"
	p["port"] = fmt.Sprint(port)
	p["unix_socket_directories"] = "/var/run/postgresql"
	p["cluster_name"] = cluster
	p["archive_command"] = "pgbackrest --stanza=" + cluster + " archive-push %p"
	for k, v := range libpq.ServerSettings(nodeTLS(plaintext)) {
		p[k] = v
	}
	return p
}

// RenderPostgresqlConf is the whole postgresql.conf pigwf manages (sorted, so stable). It ends
// by including the cluster's dynamic parameters (`pigwf config`), which the HA agents write.
func RenderPostgresqlConf(params map[string]string) string {
	return pgparams.Render([]string{
		"managed by pigwf pg-cluster-create: change the cluster's parameters with pigwf config set|edit, not this file.",
		"The HA agent writes the cluster's dynamic parameters (pigwf config) to " + pgparams.DynamicFile + ", included last,",
		"and keeps its own settings (synchronous_standby_names, recovery) in postgresql.auto.conf.",
	}, params) + "\n# the cluster's dynamic parameters (pigwf config show); they win over the values above\n" + pgparams.IncludeLine + "\n"
}

// PgConfigure writes postgresql.conf and pg_hba.conf on a member that has a data directory, and
// reloads a running PostgreSQL when they changed (pg-config-files.sh, the one writer of both).
func (a *Activities) PgConfigure(ctx context.Context, in PgNodeInput) (StepResult, error) {
	if err := a.checkPlaintext(in.Spec.Plaintext); err != nil {
		return StepResult{}, err
	}
	conf := RenderPostgresqlConf(in.Spec.Parameters)
	return a.runStep(ctx, in.Node, StepConfigure, configFilesScript(in, conf, false), nil)
}

// StepHBA is PgHBA's step.
const StepHBA = "pg_hba"

// FactDiffers is the fact a dry run of PgHBA sets ("1") when the member's file differs from the
// rendered one.
const FactDiffers = "differs"

// PgHBAInput writes one member's pg_hba.conf from Spec.HBA (RenderHBA's lines).
type PgHBAInput struct {
	PgNodeInput
	// DryRun: report the lines that would be added and removed; change nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// PgHBA writes the member's pg_hba.conf when it differs from the rendered rules and reloads its
// running PostgreSQL, through the same script as PgConfigure (PostgreSQL checks the file before
// the reload; a file it refuses is put back). Unchanged when the file is as rendered.
func (a *Activities) PgHBA(ctx context.Context, in PgHBAInput) (StepResult, error) {
	if err := a.checkPlaintext(in.Spec.Plaintext); err != nil {
		return StepResult{}, err
	}
	return a.runStep(ctx, in.Node, StepHBA, configFilesScript(in.PgNodeInput, "", in.DryRun), nil)
}

// HBAFile is the whole pg_hba.conf pigwf writes from rendered lines (RenderHBA).
func HBAFile(lines []string) string {
	return "# managed by pigwf (pg-cluster-create, pg-hba): change pg_hba_rules in the inventory and run `pigwf start pg-hba`, not this file.\n" +
		strings.Join(lines, "\n") + "\n"
}

// configStateDir is pigwf's state directory on a node: where pg-config-files.sh keeps a reload it
// owes and the files in force until then, and where pg-data-aside.sh finds the node's markers of
// a cluster's data (a variable only so that the scripts' tests run them in a directory of their
// own).
var configStateDir = "/var/lib/pigwf"

// configFilesScript is pg-config-files.sh for member in's data directory: postgresql.conf as conf
// ("" leaves it alone) and pg_hba.conf from in.Spec.HBA.
func configFilesScript(in PgNodeInput, conf string, dryRun bool) string {
	dry := "0"
	if dryRun {
		dry = "1"
	}
	return in.pgEnv() + withInputs(pgConfigFilesScript,
		shellVar{"conf", strings.TrimSuffix(conf, "\n")},
		shellVar{"hba", strings.TrimSuffix(HBAFile(in.Spec.HBA), "\n")},
		shellVar{"dry", dry},
		shellVar{"state", configStateDir})
}

// RenderHBA turns pg_hba_rules (Pigsty's alias form) and the members' addresses into lines.
// Replication between members (and pg_rewind's connection to the postgres database) must come
// over TLS (hostssl) unless the inventory is a plain-text lab; the members verify each other's
// certificates from their side (sslmode=verify-full).
func RenderHBA(replicationUser, adminUser string, memberAddrs []string, rules []inventory.HBARule, plaintext bool) []string {
	lines := []string{
		"local   all          postgres                       peer",
		"local   replication  postgres                       peer",
	}
	members := "hostssl"
	if plaintext {
		members = "host"
	}
	addrs := append([]string(nil), memberAddrs...)
	sort.Strings(addrs)
	for _, m := range addrs {
		cidr := hostCIDR(m)
		lines = append(lines,
			fmt.Sprintf("%-7s replication  %-14s %-18s scram-sha-256", members, replicationUser, cidr),
			fmt.Sprintf("%-7s postgres     %-14s %-18s scram-sha-256", members, replicationUser, cidr))
	}
	lines = append(lines, fmt.Sprintf("host    all          %-14s %-18s scram-sha-256", adminUser, "127.0.0.1/32"))
	for _, r := range rules {
		typ, method := hbaMethod(r.Auth)
		for _, cidr := range addrAlias(r.Addr, addrs) {
			if cidr == "local" {
				lines = append(lines, fmt.Sprintf("local   %-12s %-14s %-18s %s", r.DB, r.User, "", method))
				continue
			}
			lines = append(lines, fmt.Sprintf("%-7s %-12s %-14s %-18s %s", typ, r.DB, r.User, cidr, method))
		}
	}
	return lines
}

// hbaMethod is what a rule's auth means, in Pigsty's terms: pwd (and scram, sha) a SCRAM
// password on any connection; ssl a SCRAM password over TLS only; cert a client certificate over
// TLS, verified against the deployment CA (ssl_ca_file) with its common name matched to the user
// (PostgreSQL implies clientcert=verify-full for cert). Anything else is PostgreSQL's own method
// (the inventory admits only those pigwf renders correctly). The local socket has no TLS: the
// inventory refuses ssl and cert there.
func hbaMethod(auth string) (typ, method string) {
	switch auth {
	case "pwd", "scram", "sha":
		return "host", "scram-sha-256"
	case "ssl":
		return "hostssl", "scram-sha-256"
	case "cert":
		return "hostssl", "cert"
	}
	return "host", auth
}

// hbaEntry reads a line RenderHBA wrote back into the inventory's form of a rule (user, db, addr,
// auth), so the worker can hold a rendered line it receives to pg_hba_rules' rules
// (PGSpec.Validate): "local DB USER METHOD" or "host|hostssl DB USER CIDR METHOD" in printable
// ASCII, nothing else (a line break or other control character would add a line of its own).
func hbaEntry(line string) (map[string]string, bool) {
	for i := 0; i < len(line); i++ {
		if line[i] < 0x20 || line[i] > 0x7e {
			return nil, false
		}
	}
	f := strings.Fields(line)
	switch {
	case len(f) == 4 && f[0] == "local":
		return map[string]string{"db": f[1], "user": f[2], "addr": "local", "auth": f[3]}, true
	case len(f) == 5 && (f[0] == "host" || f[0] == "hostssl"):
		return map[string]string{"db": f[1], "user": f[2], "addr": f[3], "auth": f[4]}, true
	}
	return nil, false
}

func addrAlias(addr string, members []string) []string {
	switch addr {
	case "local":
		return []string{"local"}
	case "localhost":
		return []string{"127.0.0.1/32"}
	case "intra":
		return []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	case "world":
		return []string{"0.0.0.0/0"}
	case "cluster":
		out := []string{}
		for _, m := range members {
			out = append(out, hostCIDR(m))
		}
		return out
	}
	return []string{addr}
}

// hostCIDR is how pg_hba.conf names one member: an address as a one-host CIDR, a host name as it
// is (PostgreSQL matches names itself; "db1.example.com/32" is no address and fails the file).
func hostCIDR(addr string) string {
	ip := net.ParseIP(addr)
	switch {
	case strings.Contains(addr, "/") || ip == nil:
		return addr
	case ip.To4() == nil:
		return addr + "/128"
	}
	return addr + "/32"
}

// PgMoveAside moves a data directory that belongs to another system out of the way, after a
// human approved it: it is renamed, never deleted, and only if it still holds the system the
// approver saw and no PostgreSQL runs on it.
func (a *Activities) PgMoveAside(ctx context.Context, in PgNodeInput) (StepResult, error) {
	// The run has no key here: the time names it, and a retry after the move finds no system left.
	aside := AsidePath(in.Spec.DataDir, AsideOther, time.Now().UTC().Format(AsideKeyLayout))
	script := in.pgEnv() + dataAsideScript(asideMove{aside: aside, empty: true, seen: in.ClusterSysid})
	return a.runStep(ctx, in.Node, "move-aside", script, nil)
}
