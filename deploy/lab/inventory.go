package lab

import (
	"bytes"
	"fmt"
	"text/template"
)

// inventoryTemplate is the lab's Pigsty-format inventory: node 1 is the
// primary, the others replicas. The etcd group is laid out as Pigsty does
// it; the global etcd_cluster names that group, whose hosts are the DCS
// endpoints (https://<addr>:2379) for pigwf.
var inventoryTemplate = template.Must(template.New("inventory").Parse(`# pigwf lab inventory, written by ` + "`pigwf lab up`" + ` (lab {{.Name}})
all:
  children:
    {{.Cluster}}:
      hosts:
{{- range .Hosts}}
        {{.Addr}}: { pg_seq: {{.Seq}}, pg_role: {{.Role}} }
{{- end}}
      vars:
        pg_cluster: {{.Cluster}}
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, roles: [dbrole_admin], comment: pigsty admin user }
        pg_databases:
          - { name: meta, owner: dbuser_meta, comment: pigsty meta database }
        pg_hba_rules:
          - { user: dbuser_meta, db: all, addr: intra, auth: pwd, title: 'allow meta user from the lab network' }
        # who may approve risky runbooks (switchover, pg-cluster-create --force) on this cluster
        pigwf_approvers: [alice, bob]
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
}

// renderInventory writes the inventory text for st.
func renderInventory(l layout, st *labState) ([]byte, error) {
	data := struct {
		Name, Cluster, SSHKey, KnownHosts, BackupRepo string
		Hosts, Etcd                                   []inventoryHost
		Plaintext                                     bool
	}{Name: st.Name, Cluster: st.Cluster, SSHKey: l.sshKey(), KnownHosts: l.knownHosts(), BackupRepo: l.shared("pgbackrest"), Plaintext: st.Plaintext}
	for i, n := range st.Nodes {
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		data.Hosts = append(data.Hosts, inventoryHost{Addr: n.Addr, Seq: i + 1, Role: role})
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
