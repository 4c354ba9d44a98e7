package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pigwf/pigwf/internal/suggest"
)

// ownPrefixes are the variable prefixes pigwf reads: an unknown variable with one of them is
// most likely a typo of one pigwf would have used (pg_paramters), so it is refused rather than
// silently ignored. Variables with other prefixes (ansible_*, patroni_*, pgbouncer_*, infra
// settings, ...) belong to other tools and are left alone.
var ownPrefixes = []string{"pg_", "pgbackrest_", "pigwf_", "node_", "etcd_"}

// pigstyKeys are Pigsty's variables with pigwf's prefixes that pigwf does not read (collected
// from Pigsty's role defaults and example configurations, v1.5 to v3.4). They keep loading, so
// one inventory serves both tools; pigwf ignores them.
var pigstyKeys = strings.Fields(`
etcd_certs etcd_clean etcd_data etcd_data_dir etcd_election_timeout etcd_enabled etcd_exists
etcd_heartbeat_interval etcd_init etcd_safeguard etcd_seq node_admin_enabled
node_admin_pk_current node_admin_pk_list node_admin_ssh_exchange node_admin_uid node_admin_username
node_aliases node_cluster node_conf node_crontab node_crontab_overwrite node_data node_data_dir
node_default_etc_hosts node_default_packages node_disable_firewall node_disable_numa node_disable_selinux
node_disable_swap node_disk_prefetch node_dns_method node_dns_options node_dns_servers node_etc_hosts
node_etc_hosts_default node_exporter_enabled node_exporter_options node_exporter_port node_hugepage_count
node_hugepage_ratio node_id_from_pg node_kernel_modules node_ntp_enabled node_ntp_servers node_ntp_service
node_overcommit_ratio node_packages_default node_packages_meta node_packages_meta_pip node_repo_local_urls
node_repo_method node_repo_modules node_repo_remove node_static_network node_timezone node_tune
node_write_etc_hosts pg_add_repo pg_backup pg_backup_dir pg_cert_exists pg_clean pg_cluster_dir pg_conf
pg_dbsu pg_dbsu_home pg_dbsu_password pg_dbsu_ssh_exchange pg_dbsu_sudo pg_dbsu_uid pg_dcs_type
pg_default_extensions pg_default_hba_rules pg_default_privileges pg_default_roles pg_default_schemas
pg_default_service_dest pg_default_version pg_delay pg_dns_suffix pg_dns_target
pg_dummy_filesize pg_encoding pg_exists pg_exporter_auto_discovery pg_exporter_cache_ttls pg_exporter_config
pg_exporter_connect_timeout pg_exporter_enabled pg_exporter_exclude_database pg_exporter_include_database
pg_exporter_options pg_exporter_params pg_exporter_port pg_exporter_url pg_exporters pg_extensions pg_files
pg_fs_bkup pg_fs_main pg_group pg_hba_rules_extra pg_host pg_hostname pg_init pg_instances pg_lc_collate
pg_lc_ctype pg_libs pg_listen pg_locale pg_localhost pg_log_dir pg_max_conn pg_mode pg_monitor_password
pg_monitor_username pg_offline_query pg_packages pg_preflight_skip pg_primary_db pg_provision pg_pwd_enc
pg_reload pg_safeguard pg_service_provider pg_services_extra pg_shard
pg_shared_buffer_ratio pg_sindex pg_storage_type pg_uninstall pg_upstream pg_version pg_vip_address
pg_vip_enabled pg_vip_interface pg_weight pgbackrest_clean pgbackrest_enabled pgbackrest_log_dir
pgbackrest_method pgbackrest_repo
`)

// otherKeys are other tools' variables one or two edits from one pigwf reads, which the near-miss
// check would otherwise refuse (Pigsty's PgBouncer HBA rules).
var otherKeys = set("pgb_hba_rules pgb_default_hba_rules")

// pigwfKeys are the variables pigwf reads (each has a rule in varRules, or is read by
// parsePgIdentity), plus pgbouncer_* read only to find port clashes.
func pigwfKeys() []string {
	out := []string{"pg_seq", "pg_role"}
	for k := range varRules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ansibleAliases are Ansible's older names for connection variables. pigwf reads only the
// current names, so a host that uses an old one would be reached at another address, port, user
// or key than Ansible reaches it.
var ansibleAliases = map[string]string{
	"ansible_ssh_host":         "ansible_host",
	"ansible_ssh_port":         "ansible_port",
	"ansible_ssh_user":         "ansible_user",
	"ansible_private_key_file": "ansible_ssh_private_key_file",
}

// checkKey reports a variable pigwf would ignore although it was probably meant for pigwf: an
// unknown name with one of pigwf's prefixes, a near miss of a variable pigwf reads, or an old
// Ansible alias. It returns "" for keys that are fine.
func checkKey(key string) (problem, fix string) {
	if _, ok := varRules[key]; ok || key == "pg_seq" || key == "pg_role" {
		return "", ""
	}
	if cur, ok := ansibleAliases[key]; ok {
		return "is an older Ansible name pigwf does not read", "rename it to " + cur
	}
	if otherKeys[key] {
		return "", ""
	}
	for _, k := range pigstyKeys {
		if k == key {
			return "", ""
		}
	}
	own := false
	for _, p := range ownPrefixes {
		own = own || strings.HasPrefix(key, p)
	}
	best, dist := suggest.Closest(key, pigwfKeys())
	if !own {
		// Another tool's variable: refused only when it is one or two edits from a variable
		// pigwf reads (nodname, ansible_prot), which no real variable of those tools is.
		if len(key) >= 6 && dist <= 2 {
			return "is not a variable pigwf reads", fmt.Sprintf("did you mean %s?", best)
		}
		return "", ""
	}
	if pb, pd := suggest.Closest(key, pigstyKeys); pd < dist {
		best, dist = pb, pd
	}
	if dist <= max(2, len(key)/4) {
		return "is not a variable pigwf or Pigsty knows", fmt.Sprintf("did you mean %s?", best)
	}
	return "is not a variable pigwf or Pigsty knows", "check the spelling (README.md, \"Inventory\", lists the variables pigwf reads)"
}
