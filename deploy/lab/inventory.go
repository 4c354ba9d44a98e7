package lab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// inventoryTemplate is the lab's Pigsty-format inventory: each PostgreSQL cluster with its first
// node the primary and the others replicas, then the bare nodes (BareGroup) with their nodenames.
// The etcd group is laid out as Pigsty does it; the global etcd_cluster names that group, whose
// hosts are the DCS endpoints (https://<addr>:2379) for pigwf.
var inventoryTemplate = template.Must(template.New("inventory").Parse(`# pigwf lab inventory, written by ` + "`pigwf lab up`" + ` (lab {{.Name}})
all:
  children:
{{- range .Clusters}}
    {{.Name}}:
      hosts:
{{- range .Hosts}}
        {{.Addr}}: { pg_seq: {{.Seq}}, pg_role: {{.Role}} }
{{- end}}
      vars:
        pg_cluster: {{.Name}}
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, roles: [dbrole_admin], comment: pigsty admin user }
        pg_databases:
          - { name: meta, owner: dbuser_meta, comment: pigsty meta database }
        pg_hba_rules:
          - { user: dbuser_meta, db: all, addr: intra, auth: pwd, title: 'allow meta user from the lab network' }
        # who may approve risky runbooks (switchover, pg-cluster-create --force) on this cluster
        pigwf_approvers: [alice, bob]
{{- end}}
{{- if .Bare}}
    # hosts in no PostgreSQL cluster: ` + "`pigwf start node-init --cluster {{.BareGroup}}`" + ` prepares them
    {{.BareGroup}}:
      hosts:
{{- range .Bare}}
        {{.Addr}}: { nodename: {{.Name}} }
{{- end}}
      vars: { node_cluster: {{.BareGroup}} }
{{- end}}
{{- if .Etcd}}
    etcd:
      hosts:
{{- range .Etcd}}
        {{.Addr}}: { etcd_seq: {{.Seq}} }
{{- end}}
      vars: { etcd_cluster: etcd }
{{- end}}
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: {{.SSHKey}}
    pigwf_known_hosts: {{.KnownHosts}}
    # the lab shares the host kernel: only per-network-namespace kernel settings are tuned here
    node_sysctl_params: { net.core.somaxconn: 4096, net.ipv4.tcp_keepalive_time: 60 }
    # one backup repository every node sees (as MinIO/S3 would be), so backups outlive a failover
    pgbackrest_repo_path: {{.BackupRepo}}
{{- if .Etcd}}
    # the DCS: the hosts of this group, as https://<addr>:2379 (TLS and client certificates
    # from the deployment CA)
    etcd_cluster: etcd
{{- end}}
{{- if .Plaintext}}
    # lab-only: etcd, the agents' API and replication without TLS (a benchmark's baseline)
    pigwf_insecure_plaintext: true
{{- end}}
`))

type inventoryHost struct {
	Addr string
	Seq  int
	Role string
	Name string // a bare node's nodename
}

type inventoryCluster struct {
	Name  string
	Hosts []inventoryHost
}

// renderInventory writes the inventory text for st.
func renderInventory(l layout, st *labState) ([]byte, error) {
	slots, err := st.slots()
	if err != nil {
		return nil, fmt.Errorf("while rendering the inventory of lab %s: %w", st.Name, err)
	}
	data := struct {
		Name, BareGroup, SSHKey, KnownHosts, BackupRepo string
		Clusters                                        []inventoryCluster
		Bare, Etcd                                      []inventoryHost
		Plaintext                                       bool
	}{Name: st.Name, BareGroup: BareGroup, SSHKey: l.sshKey(), KnownHosts: l.knownHosts(), BackupRepo: l.shared("pgbackrest"), Plaintext: st.Plaintext}
	for _, name := range st.clusterNames() {
		data.Clusters = append(data.Clusters, inventoryCluster{Name: name})
	}
	for i, n := range st.Nodes {
		if s := slots[i]; s.bare() {
			data.Bare = append(data.Bare, inventoryHost{Addr: n.Addr, Name: bareNodename(i + 1)})
		} else {
			role := "replica"
			if s.seq == 1 {
				role = "primary"
			}
			c := &data.Clusters[s.cluster]
			c.Hosts = append(c.Hosts, inventoryHost{Addr: n.Addr, Seq: s.seq, Role: role})
		}
		if i < st.Etcd {
			data.Etcd = append(data.Etcd, inventoryHost{Addr: n.Addr, Seq: i + 1})
		}
	}
	var b bytes.Buffer
	if err := inventoryTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("while rendering the inventory: %w", err)
	}
	return b.Bytes(), nil
}

// updateInventory writes the lab's inventory.yml and records its checksum in st, unless the
// file was changed since the lab last wrote it: then it is the user's, and it is kept as it is.
// A DBA adds a new host to their inventory themselves before pg-member-add; the lab does the
// same for its own, untouched file, and otherwise says what to add (the returned note, "" when
// the file was written). A lab whose state has no checksum yet (made before it was recorded)
// writes the file as it always did.
func updateInventory(l layout, st *labState, added []nodeState) (string, error) {
	text, err := renderInventory(l, st)
	if err != nil {
		return "", err
	}
	current, err := os.ReadFile(l.inventory())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("while reading %s: %w", l.inventory(), err)
	}
	if !inventoryIsLabs(current, err == nil, st.InventorySum) {
		if len(added) == 0 {
			return l.inventory() + " was changed since `pigwf lab up` wrote it: kept as it is", nil
		}
		groups, err := groupsOf(st)
		if err != nil {
			return "", err
		}
		var hosts []string
		for _, n := range added {
			hosts = append(hosts, fmt.Sprintf("%s (node %s) under %s", n.Addr, n.Name, groupOfNode(groups, n.Name)))
		}
		return fmt.Sprintf("%s was changed since `pigwf lab up` wrote it: kept as it is; add the new hosts %s yourself",
			l.inventory(), strings.Join(hosts, ", ")), nil
	}
	if err := writeFileAtomic(l.inventory(), text, 0o644); err != nil {
		return "", err
	}
	st.InventorySum = checksum(text)
	return "", nil
}

// groupOfNode names the group of the node named node ("n4").
func groupOfNode(groups []Group, node string) string {
	for _, g := range groups {
		for _, i := range g.Nodes {
			if nodeName(i) == node {
				return g.Name
			}
		}
	}
	return "?"
}

// inventoryIsLabs says whether the inventory file may be rewritten: it is missing, or no
// checksum was recorded yet, or it is what the lab last wrote.
func inventoryIsLabs(current []byte, exists bool, lastSum string) bool {
	return !exists || lastSum == "" || checksum(current) == lastSum
}

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
