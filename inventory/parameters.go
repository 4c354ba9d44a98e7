package inventory

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// derivedParameters are the settings pigwf derives itself (activities.Parameters, the HA agent,
// PITRRestore): an override in pg_parameters would break what pigwf relies on, so it is refused
// with the reason. Other settings are the user's to tune.
var derivedParameters = map[string]string{
	"port":                      "pigwf sets it from pg_port, which the agents, pg_hba.conf and backups use; set pg_port instead",
	"cluster_name":              "pigwf sets it to pg_cluster",
	"listen_addresses":          "pigwf sets it to '*': members replicate and the agents connect over the network; restrict access with pg_hba_rules",
	"unix_socket_directories":   "pigwf and the HA agent connect through /var/run/postgresql",
	"archive_mode":              "pigwf turns WAL archiving on: backups and PITR need it",
	"archive_command":           "pigwf archives WAL to this cluster's pgBackRest stanza: backups and PITR need it",
	"archive_library":           "it would replace pigwf's archive_command (pgBackRest): backups and PITR need that",
	"restore_command":           "PITRRestore writes it (pgBackRest), and only while it restores",
	"primary_conninfo":          "the HA agent points each standby at its upstream",
	"primary_slot_name":         "the HA agent gives each standby its replication slot",
	"synchronous_standby_names": "the HA agent manages it from pg_synchronous_mode; set pg_synchronous_mode instead",
	"hba_file":                  "pigwf writes pg_hba.conf in the data directory from pg_hba_rules",
	"data_directory":            "pigwf sets the data directory from pg_data",
	"hot_standby":               "the HA agent and PITRRestore query standbys and servers in recovery (the agent also forces it on its command line)",
	"wal_log_hints":             "pg_rewind needs it to rejoin a former primary (the HA agent also forces it on its command line)",
	"ssl":                       "pigwf serves TLS with the node's certificate from the deployment CA (off only with pigwf_insecure_plaintext): replication verifies it",
	"ssl_cert_file":             "pigwf serves the node's certificate from the deployment CA (NodeInit issues and renews it)",
	"ssl_key_file":              "pigwf serves the node's certificate from the deployment CA (NodeInit issues and renews it)",
	"ssl_ca_file":               "pigwf verifies client certificates (auth: cert) against the deployment CA",
	"ssl_min_protocol_version":  "pigwf requires TLSv1.2 at least",
	"include":                   "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
	"include_dir":               "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
	"include_if_exists":         "pigwf writes the whole postgresql.conf; an include would bring in settings it does not check",
}

func parametersRule(v *yaml.Node) []FieldError {
	if v.Kind != yaml.MappingNode {
		return []FieldError{{Line: v.Line, Problem: "must be a mapping of parameter: value", Fix: "write {shared_buffers: 1GB, ...}"}}
	}
	var out []FieldError
	for _, p := range pairs(v, collect(&out, "pg_parameters")) {
		k := p.key.Value
		f := "pg_parameters." + show(k)
		switch {
		case !paramNameRE.MatchString(k):
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: fmt.Sprintf("%s is not a PostgreSQL setting name", show(k)), Fix: "use the setting's lower-case name (letters, digits, '_', '.')"})
		case derivedParameters[k] != "" || strings.HasPrefix(k, "recovery_target"):
			why := derivedParameters[k]
			if why == "" {
				why = "PITRRestore sets the recovery target, and only while it restores; use pigwf start pitr-restore"
			}
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "is set by pigwf: " + why, Fix: "remove it from pg_parameters"})
		case p.val == nil || p.val.Kind != yaml.ScalarNode:
			out = append(out, FieldError{Line: p.key.Line, Field: f, Problem: "must be a single value"})
		default:
			if prob, fix := textProblem(p.val.Value); prob != "" {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: prob, Fix: fix})
			} else if strings.Contains(p.val.Value, `\`) {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: fmt.Sprintf("%q has a backslash, which postgresql.conf reads as an escape", p.val.Value), Fix: "write the value without '\\'"})
			} else if k == "wal_level" && p.val.Value == "minimal" {
				out = append(out, FieldError{Line: p.val.Line, Field: f, Problem: "minimal leaves nothing to replicate or archive", Fix: "use replica (the default) or logical"})
			}
		}
	}
	return out
}
