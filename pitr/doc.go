// Package pitr holds the pure building blocks of a point-in-time restore: the recovery target a
// user asks for, what pgBackRest says is in the repository, and whether the one can be reached
// from the other. Nothing here runs a command, opens a connection or changes anything; every
// function decides from its arguments alone, so a run can refuse a bad request before it touches a
// cluster.
//
// Where things live:
//   - target.go: Target, Kind, Flags and Parse (exactly one of time, LSN, xid, restore point
//     name, immediate, latest; --exclusive; --target-timeline), FlagError and the sentinel errors,
//     the xid and restore point name rules, Timeline.
//   - targettime.go: the accepted target time text (RFC 3339 or PostgreSQL timestamptz text, a
//     zone required) and FormatTime, the one printed form (UTC with "+00").
//   - render.go: a Target as pgBackRest restore options and as PostgreSQL recovery settings.
//   - wal.go: LSN and WAL segment names (timeline and position); ArchivedPast, whether the
//     archiver's last archived file shows a segment archived.
//   - history.go: timeline history files (NNNNNNNN.history).
//   - info.go: the types of `pgbackrest info --output=json` (2.45) and ParseInfo.
//   - window.go: the recoverable window per timeline, TimelineForLSN, Check and
//     OutsideWindowError.
//   - backupset.go: SelectBackup, the backup set a target uses, and --backup-set validation
//     (ParseBackupLabel).
//   - proof.go: PostgreSQL's "recovery stopping ..." log line parsed (ParseStop) and checked
//     against the target (Target.Reached): the only proof a restore reached its target.
//   - testdata: real `pgbackrest info --output=json` documents and the timeline history file they
//     were made with (make-fixture.sh), and verify-rendering.sh, which restores a throwaway
//     cluster with exactly what render.go produces; README.md says how and what came out.
//
// What pgbackrest info cannot tell, and how this package treats it: the end of the archive is a
// WAL position, never a time, so a time target after the last archived commit is not refused
// here (PostgreSQL's "recovery stopping" line is the only proof); backup stop times are whole
// seconds, truncated, so a backup serves a time target only from one second after its recorded
// stop; the archive is not split by timeline, so an older timeline's end is known only as far as
// its backups' WAL or its branch point in the newest timeline's history reaches; an xid or a
// restore point cannot be placed at all, so SelectBackup needs an explicit backup set for them
// (PITRRestore passes the earliest of the target's timeline, the one sure to precede it).
//
// The target timeline is never left to pgBackRest's default ("latest", which silently follows the
// newest timeline): when the user does not give one, the caller chooses the timeline on which the
// target lies from the cluster's timeline history (TimelineForLSN for a position) and sets it with
// Target.WithTimeline before rendering; rendering refuses an unchosen timeline.
package pitr
