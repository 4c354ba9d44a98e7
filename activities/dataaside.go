package activities

// Moving a data directory aside: one script (scripts/pg-data-aside.sh) and one naming rule for
// every runbook that does it, so "never deleted, never while PostgreSQL runs, a retry finds its
// own" holds the same everywhere.

// Why a data directory is moved aside: the suffix of its new name, <data_dir>.<why>-<key>.
const (
	AsideReinit  = "reinit"      // pg-reinit: re-created from the leader
	AsideRemoved = "removed"     // pg-member-remove, pg-cluster-remove
	AsidePITR    = "before-pitr" // PITRRestore: the member's data before the restore
	AsideOther   = "pigwf-old"   // PgClusterCreate: another system found where the cluster goes, moved after an approval
)

// AsideKeyLayout is the layout of a run's key (time.Format), the last part of an aside name.
const AsideKeyLayout = "20060102T150405Z"

// AsidePath is where a data directory is moved aside for why by the run with key:
// <data_dir>.<why>-<key>.
func AsidePath(dataDir, why, key string) string { return dataDir + "." + why + "-" + key }

// asideMove is what pg-data-aside.sh does.
type asideMove struct {
	aside  string // AsidePath
	empty  bool   // leave an empty data directory (for a clone or a restore)
	forget bool   // the node leaves the cluster: its pg-cluster marker goes too
	seen   string // when set, the system identifier the approver saw: another one is refused
}

// dataAsideScript is pg-data-aside.sh for m, to follow pgEnv (PGBIN, PGDATA).
func dataAsideScript(m asideMove) string {
	return sysidScript + withInputs(pgDataAsideScript, shellVar{"aside", m.aside}, shellVar{"empty", flag(m.empty)},
		shellVar{"forget", flag(m.forget)}, shellVar{"seen", m.seen}, shellVar{"state", configStateDir})
}
