package pgctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// ReplicationRow is one pg_stat_replication row.
type ReplicationRow struct {
	ApplicationName string
	State           string
	SyncState       string
	FlushLSN        haagent.LSN
	ReplayLSN       haagent.LSN
	// Usename and ClientAddr ("" for a unix socket) say who streams; SyncPriority is its place
	// in synchronous_standby_names (0: not named). The REST API shows them as Patroni does.
	Usename      string
	ClientAddr   string
	SyncPriority int
}

// replicationColumns are the pg_stat_replication columns replicationRow reads, in its order:
// the loop's probe and the API's live read select the same row.
const replicationColumns = `application_name, state, sync_state, flush_lsn, replay_lsn, usename, client_addr, sync_priority`

func replicationRow(row []*string) ReplicationRow {
	prio, _ := strconv.Atoi(str(row[7]))
	return ReplicationRow{ApplicationName: str(row[0]), State: str(row[1]), SyncState: str(row[2]),
		FlushLSN: lsn(row[3]), ReplayLSN: lsn(row[4]), Usename: str(row[5]), ClientAddr: str(row[6]), SyncPriority: prio}
}

// Slot is one replication slot.
type Slot struct {
	Name     string
	Physical bool
	Active   bool
}

// Observation is the local PostgreSQL right now.
type Observation struct {
	State        haagent.PGState
	InRecovery   bool
	DataDirEmpty bool
	// NotADataDir: the directory has files but no PG_VERSION.
	NotADataDir        bool
	Sysid              string
	Timeline           uint32
	CheckpointTimeline uint32
	ReceivedLSN        haagent.LSN
	ReplayedLSN        haagent.LSN
	FlushLSN           haagent.LSN
	WALReceiverRunning bool
	// WALReceiverStatus is pg_stat_wal_receiver.status ("streaming" once connected and
	// receiving; "starting", "waiting", ... before).
	WALReceiverStatus string
	// PrimaryConninfo is the current primary_conninfo; PrimaryHost/Port
	// parsed from it.
	PrimaryConninfo  string
	PrimaryHost      string
	PrimaryPort      int
	SyncStandbyNames string
	Replication      []ReplicationRow
	Slots            []Slot
	// Control is pg_controldata's view, read while PostgreSQL is not running.
	Control *ControlData
	// BackupLabel: backup_label exists, i.e. the data directory is a base
	// backup (pg_basebackup) or was just rewound; its control file says
	// "in production" although it never ran as a primary.
	BackupLabel bool
	// ForeignPostmaster is the pid of a live postmaster this controller
	// did not start (0 = none).
	ForeignPostmaster int
	// Stale: the postmaster is alive but did not answer this probe; the
	// SQL fields are from the last successful probe.
	Stale     bool
	ProbeErr  string
	StartedAt time.Time // when the current postmaster was started (zero if not ours)

	// What the REST API reports as Patroni does (/patroni, /metrics); no HA decision reads them.
	// Known only while PostgreSQL answers (zero otherwise).
	ServerVersion int       // server_version_num, e.g. 150004
	PostmasterAt  time.Time // pg_postmaster_start_time()
	// ReplayedAt is pg_last_xact_replay_timestamp(): the commit time of the last transaction a
	// standby replayed (zero: none since it started).
	ReplayedAt   time.Time
	ReplayPaused bool // pg_is_wal_replay_paused() on a standby
	// RestoreCommand: restore_command is set, so a standby that does not stream recovers from
	// the archive (Patroni's replication_state "in archive recovery").
	RestoreCommand bool
}

const probeSQL = `SELECT pg_is_in_recovery(),
 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END,
 pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),
 current_setting('primary_conninfo'), current_setting('synchronous_standby_names'),
 (SELECT timeline_id FROM pg_control_checkpoint()),
 CASE WHEN pg_is_in_recovery() THEN NULL
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_flush_lsn()), 1, 8))::bit(32)::bigint END,
 (SELECT system_identifier FROM pg_control_system()),
 (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
 current_setting('server_version_num'),
 extract(epoch FROM pg_postmaster_start_time()),
 extract(epoch FROM pg_last_xact_replay_timestamp()),
 CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
 current_setting('restore_command') <> '';
SELECT status, received_tli FROM pg_stat_wal_receiver;
SELECT ` + replicationColumns + ` FROM pg_stat_replication;
SELECT slot_name, slot_type, active FROM pg_replication_slots`

// Observe reports the local PostgreSQL. It never blocks longer than ctx.
func (c *Controller) Observe(ctx context.Context) (Observation, error) {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	var o Observation
	empty, notDataDir, err := inspectDataDir(c.cfg.DataDir)
	if err != nil {
		return o, err
	}
	o.DataDirEmpty, o.NotADataDir = empty, notDataDir
	pm := c.pm.Load()
	if pm.running() {
		o.StartedAt = pm.startedAt
		err := c.probeSQL(ctx, &o)
		if err == nil {
			pm.connected.Store(true)
			o.State = haagent.PGRunning
			c.last = o
			return o, nil
		}
		c.closeProbe()
		if !pm.connected.Load() {
			// Still starting (or in crash recovery): a standby if started so.
			o.State = haagent.PGStarting
			o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal"))
			o.ProbeErr = err.Error()
			if _, ferr := c.fromFiles(&o); ferr != nil {
				o.ProbeErr += "; " + ferr.Error()
			}
			return o, nil
		}
		// It answered before: a failed probe (connection limit, a slow
		// query) does not make a running primary "starting".
		stale := c.last
		stale.Stale, stale.ProbeErr = true, err.Error()
		return stale, nil
	}
	// While a tool of ours runs (see toolsRunning), every process in the
	// data directory is its own: neither a foreign postmaster to stop nor
	// an orphaned backend to kill.
	if c.toolsRunning.Load() > 0 {
		c.closeProbe()
		o.State = haagent.PGStopped
		o.ProbeErr = "a PostgreSQL tool (pg_rewind, pg_basebackup or initdb) is running on the data directory"
		return o, nil
	}
	if pid := c.foreignPostmaster(); pid != 0 {
		// Started by someone else (pg_ctl by hand, a restore workflow while
		// HA is paused): report what it is; the agent decides what to do.
		o.ForeignPostmaster = pid
		o.State = haagent.PGRunning
		if err := c.probeSQL(ctx, &o); err != nil {
			c.closeProbe()
			o.State, o.ProbeErr = haagent.PGStarting, err.Error()
			o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal")) || fileExists(filepath.Join(c.cfg.DataDir, "recovery.signal"))
		}
		return o, nil
	}
	c.closeProbe()
	// No postmaster. Backends of a dead postmaster may still run (they
	// notice its death only at their next wait): kill them before
	// reporting "crashed", which lets others take over.
	if left := processesIn(c.cfg.DataDir); len(left) > 0 {
		c.log.Warn("postmaster is gone; killing its remaining processes", "pids", left)
		if still := killAndWait(left, time.Second); len(still) > 0 {
			o.State = haagent.PGRunning // cannot prove they cannot commit
			o.ProbeErr = fmt.Sprintf("processes %v of a dead postmaster survive SIGKILL", still)
			return o, nil
		}
	}
	if o.DataDirEmpty || o.NotADataDir {
		o.State = haagent.PGStopped
		return o, nil
	}
	cd, err := c.fromFiles(&o)
	if err != nil {
		o.State = haagent.PGUnknown
		return o, err
	}
	o.InRecovery = fileExists(filepath.Join(c.cfg.DataDir, "standby.signal"))
	pidFile := fileExists(filepath.Join(c.cfg.DataDir, "postmaster.pid"))
	if cd.CleanShutdown() && !pidFile {
		o.State = haagent.PGStopped
	} else {
		o.State = haagent.PGCrashed
	}
	return o, nil
}

// fromFiles fills what the control file and postgresql.auto.conf say,
// for a PostgreSQL that answers no query: stopped, crashed, or starting.
// A standby that is starting may never become consistent (rewound against
// a member that is no longer the leader): its position and upstream from
// the files are what the loop judges it by.
func (c *Controller) fromFiles(o *Observation) (*ControlData, error) {
	cd, err := c.controlData()
	if err != nil {
		return nil, err
	}
	o.Control, o.Sysid, o.Timeline = cd, cd.Sysid, max(cd.Timeline, cd.MinRecoveryTL)
	o.BackupLabel = fileExists(filepath.Join(c.cfg.DataDir, "backup_label"))
	o.CheckpointTimeline = cd.Timeline
	o.PrimaryConninfo = readAutoConf(c.cfg.DataDir, "primary_conninfo")
	o.PrimaryHost, o.PrimaryPort = hostPort(o.PrimaryConninfo)
	if !cd.WasPrimary() || o.BackupLabel {
		o.ReplayedLSN = max(cd.MinRecoveryLSN, cd.CheckpointLSN)
	} else {
		o.FlushLSN = cd.CheckpointLSN
	}
	return cd, nil
}

func (c *Controller) controlData() (*ControlData, error) {
	st, err := os.Stat(filepath.Join(c.cfg.DataDir, "global", "pg_control"))
	if err != nil {
		return nil, fmt.Errorf("read control file: %w", err)
	}
	if cd := c.ctlCache; cd != nil && cd.controlFileModTime == st.ModTime().UnixNano() {
		return cd, nil
	}
	cd, err := runControlData(c.cfg.BinDir, c.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cd.controlFileModTime = st.ModTime().UnixNano()
	c.ctlCache = cd
	return cd, nil
}

func (c *Controller) closeProbe() {
	if c.probe != nil {
		c.probe.Close()
		c.probe = nil
	}
}

func (c *Controller) probeSQL(ctx context.Context, o *Observation) error {
	if c.probe == nil {
		conn, err := c.Connect(ctx)
		if err != nil {
			return err
		}
		c.probe = conn
	}
	res, err := c.probe.Query(ctx, probeSQL)
	if err != nil {
		return fmt.Errorf("probe local PostgreSQL: %w", err)
	}
	if len(res) != 4 || len(res[0].Rows) != 1 {
		return fmt.Errorf("probe local PostgreSQL: unexpected result shape (%d results)", len(res))
	}
	r := res[0].Rows[0]
	o.InRecovery = str(r[0]) == "t"
	o.FlushLSN = lsn(r[1])
	o.ReceivedLSN, o.ReplayedLSN = lsn(r[2]), lsn(r[3])
	o.PrimaryConninfo, o.SyncStandbyNames = str(r[4]), str(r[5])
	o.PrimaryHost, o.PrimaryPort = hostPort(o.PrimaryConninfo)
	o.CheckpointTimeline = u32(r[6])
	o.Sysid = str(r[8])
	o.ServerVersion, _ = strconv.Atoi(str(r[10]))
	o.PostmasterAt, o.ReplayedAt = epoch(r[11]), epoch(r[12])
	o.ReplayPaused, o.RestoreCommand = str(r[13]) == "t", str(r[14]) == "t"
	for _, row := range res[1].Rows {
		o.WALReceiverRunning, o.WALReceiverStatus = true, str(row[0])
		c.receivedTLI = max(c.receivedTLI, u32(row[1]))
	}
	if o.InRecovery {
		o.Timeline = max(o.CheckpointTimeline, u32(r[9]), c.receivedTLI)
	} else {
		o.Timeline = u32(r[7])
	}
	for _, row := range res[2].Rows {
		o.Replication = append(o.Replication, replicationRow(row))
	}
	for _, row := range res[3].Rows {
		o.Slots = append(o.Slots, Slot{Name: str(row[0]), Physical: str(row[1]) == "physical", Active: str(row[2]) == "t"})
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func lsn(p *string) haagent.LSN {
	if p == nil {
		return 0
	}
	l, _ := haagent.ParseLSN(*p)
	return l
}

// epoch reads seconds since 1970 as extract(epoch FROM ...) prints them ("1714556400.123456",
// exact to the microsecond, which a float64 would not keep); NULL is the zero time.
func epoch(p *string) time.Time {
	if p == nil {
		return time.Time{}
	}
	whole, frac, _ := strings.Cut(*p, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}
	}
	frac = (frac + "000000000")[:9]
	nsec, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, nsec).UTC()
}

func u32(p *string) uint32 {
	if p == nil {
		return 0
	}
	n, _ := strconv.ParseUint(*p, 10, 32)
	return uint32(n)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// inspectDataDir: empty = absent or no entries; notDataDir = entries but no PG_VERSION.
func inspectDataDir(dir string) (empty, notDataDir bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("inspect data directory: %w", err)
	}
	if len(entries) == 0 {
		return true, false, nil
	}
	return false, !fileExists(filepath.Join(dir, "PG_VERSION")), nil
}
