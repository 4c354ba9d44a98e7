package starter

import (
	"fmt"
	"slices"

	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
	"github.com/pigwf/pigwf/workflows"
)

// BackupTypes are the backup types pg-backup takes, as --type names them (pgBackRest's).
var BackupTypes = []string{string(pitr.BackupFull), string(pitr.BackupDiff), string(pitr.BackupIncr)}

// DefaultBackupType is --type's default.
const DefaultBackupType = "full"

// CheckBackupType refuses a --type pgBackRest does not take.
func CheckBackupType(typ string) error {
	if !slices.Contains(BackupTypes, typ) {
		return fmt.Errorf("--type %q is not a backup type: give full, diff or incr", typ)
	}
	return nil
}

// PgBackupInput resolves a PgBackup from the inventory: the members' agents (the run asks them
// for the leader) and SSH settings, the cluster's layout and pgBackRest settings (pg_backup_source,
// pgbackrest_retention_full), the type. `pigwf start pg-backup` and `pigwf schedule create`
// both build the run's input here.
func PgBackupInput(inv *inventory.Inventory, cluster *inventory.Cluster, typ, requester string) (workflows.PgBackupInput, error) {
	if err := isPGCluster(cluster); err != nil {
		return workflows.PgBackupInput{}, err
	}
	if err := CheckBackupType(typ); err != nil {
		return workflows.PgBackupInput{}, err
	}
	if len(inv.Etcd) == 0 {
		return workflows.PgBackupInput{}, fmt.Errorf("%s has no etcd group: pg-backup finds the leader through the HA agents, which need etcd", inv.File)
	}
	in := workflows.PgBackupInput{
		Cluster: cluster.Name, Type: typ, Source: cluster.PG.BackupSource, DCS: dcsOf(inv, cluster), Members: MemberAPIs(inv, cluster),
		Spec: pgSpec(inv, cluster, ""), RequestedBy: requester,
	}
	for _, h := range cluster.Hosts {
		in.Nodes = append(in.Nodes, NodeOf(h))
	}
	return in, nil
}

// PgBackupMeta: "pg-backup pg-test: full backup on the leader, requested by alice".
func PgBackupMeta(in workflows.PgBackupInput, req Request) RunMeta {
	where := "the leader"
	if in.Source == inventory.BackupSourceReplica {
		where = "a streaming replica (pg_backup_source: replica)"
	}
	var d details
	d.header(workflows.PgBackupRunbook, in.Cluster, req)
	d.fact("Type", in.Type)
	d.fact("Retention", fmt.Sprintf("%d full backups (pgbackrest_retention_full)", in.Spec.BackupRetention))
	steps := []string{
		"Refused, with nothing changed, while another pigwf run is open on the cluster.",
		"Find the leader through the HA agents; refused when no leader takes writes.",
	}
	if in.Source == inventory.BackupSourceReplica {
		steps = append(steps, "pgBackRest's TLS server on the leader (the backup starts and stops there; most files come from the replica), then the backup on an asynchronous streaming replica (a synchronous one when no other streams; the leader when none streams).")
	} else {
		steps = append(steps, "The backup on the leader.")
	}
	steps = append(steps,
		"`pgbackrest backup --type "+in.Type+"`, annotated with the run (a retried attempt finds its backup and takes no second one); a diff or incr without a full backup to refer to becomes a full one, and the run says so.",
		fmt.Sprintf("Expire the backups past retention (%d full) and the WAL only they needed.", in.Spec.BackupRetention))
	d.plan(steps...)
	return RunMeta{Summary: summaryLine(workflows.PgBackupRunbook, in.Cluster, in.Type+" backup on "+where, req), Details: d.String()}
}
