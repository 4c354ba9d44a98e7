package pgparams

import "strings"

// owned are the settings pigwf derives itself (the rendered postgresql.conf, the HA agent's
// command line and postgresql.auto.conf, PITRRestore): a value from the inventory's
// pg_parameters or the cluster's dynamic configuration would break what pigwf relies on, so it
// is refused with the reason and what to do instead.
var owned = map[string]string{
	"port":                        "pigwf sets it from pg_port, which the agents, pg_hba.conf and backups use; set pg_port in the inventory instead",
	"cluster_name":                "pigwf sets it to the cluster's name",
	"listen_addresses":            "pigwf sets it to '*': members replicate and the agents connect over the network; restrict access with pg_hba_rules",
	"unix_socket_directories":     "pigwf and the HA agent connect through /var/run/postgresql",
	"archive_mode":                "pigwf turns WAL archiving on: backups and PITR need it",
	"archive_command":             "pigwf archives WAL to this cluster's pgBackRest stanza: backups and PITR need it",
	"archive_library":             "it would replace pigwf's archive_command (pgBackRest): backups and PITR need that",
	"restore_command":             "PITRRestore writes it (pgBackRest), and only while it restores",
	"primary_conninfo":            "the HA agent points each standby at its upstream",
	"primary_slot_name":           "the HA agent gives each standby its replication slot",
	"synchronous_standby_names":   "the HA agent manages it from synchronous_mode; set synchronous_mode (pg_synchronous_mode in the inventory) instead",
	"hba_file":                    "pigwf writes pg_hba.conf in the data directory from pg_hba_rules",
	"ident_file":                  "pigwf keeps pg_ident.conf in the data directory",
	"config_file":                 "pigwf writes postgresql.conf in the data directory",
	"data_directory":              "pigwf sets the data directory from pg_data",
	"hot_standby":                 "the HA agent and PITRRestore query standbys and servers in recovery (the agent also forces it on its command line)",
	"wal_log_hints":               "pg_rewind needs it to rejoin a former primary (the HA agent also forces it on its command line)",
	"wal_retrieve_retry_interval": "the HA agent sets it on its command line so a standby follows a new primary within 100 ms",
	"ssl":                         "pigwf serves TLS with the node's certificate from the deployment CA (off only with pigwf_insecure_plaintext): replication verifies it",
	"ssl_cert_file":               "pigwf serves the node's certificate from the deployment CA (NodeInit issues and renews it)",
	"ssl_key_file":                "pigwf serves the node's certificate from the deployment CA (NodeInit issues and renews it)",
	"ssl_ca_file":                 "pigwf verifies client certificates (auth: cert) against the deployment CA",
	"ssl_min_protocol_version":    "pigwf requires TLSv1.2 at least",
	"include":                     "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
	"include_dir":                 "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
	"include_if_exists":           "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
}

// Owned reports whether pigwf owns the setting name, and why: such a setting is refused from
// the inventory's pg_parameters and from the cluster's dynamic configuration.
func Owned(name string) (why string, ok bool) {
	if why, ok := owned[name]; ok {
		return why, true
	}
	if strings.HasPrefix(name, "recovery_target") {
		return "PITRRestore sets the recovery target, and only while it restores; use pigwf start pitr-restore", true
	}
	return "", false
}
