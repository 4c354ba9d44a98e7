package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/inventory"
	"github.com/pigwf/pigwf/pitr"
)

// RestorePoint is what `pigwf restore-point` made: a named point in the leader's WAL that a
// point-in-time recovery can stop at (recovery_target_name).
type RestorePoint struct {
	Cluster string    `json:"cluster"`
	Name    string    `json:"name"`
	LSN     string    `json:"lsn"`      // where pg_create_restore_point put it
	Time    time.Time `json:"time"`     // the server's now() when it was made
	Leader  string    `json:"leader"`   // the member it was made on
	WALFile string    `json:"wal_file"` // the WAL segment holding it
	// Archived: the archiver reported WALFile (or a later segment) archived within
	// activities.ArchiveWait after the switch; Note says what to check when it did not.
	Archived bool   `json:"archived"`
	Note     string `json:"note,omitempty"`
}

// ErrNoLeader: the cluster has no leader now, so there is no primary to write the point on.
var ErrNoLeader = errors.New("the cluster has no leader")

// CheckRestorePointName applies pitr.ParseRestorePointName (the one rule for a restore point
// name) to the NAME argument, and names the argument, not the --target-name flag, in the error.
func CheckRestorePointName(arg string) (string, error) {
	name, err := pitr.ParseRestorePointName(arg)
	var fe *pitr.FlagError
	if errors.As(err, &fe) {
		return "", &pitr.FlagError{Flag: "restore point NAME", Value: fe.Value, Err: fe.Err, Fix: fe.Fix}
	}
	return name, err
}

// restorePointSQL makes the point, names its WAL segment, then switches to a new segment so the
// one holding the point is archived now rather than when it fills: only archived WAL can be
// replayed to the point. The name arrives as the psql variable "name" and is quoted by psql
// (:'name'), so it is never pasted into SQL; psql interpolates variables in -f input, not in -c.
const restorePointSQL = `SET log_statement = 'none';
SELECT p.lsn, pg_walfile_name(p.lsn), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  FROM (SELECT pg_create_restore_point(:'name') AS lsn) p;
SELECT pg_switch_wal();
`

// restorePointTimeout bounds the SQL that makes the point (activities.WaitArchived bounds the wait
// for the archiver).
const restorePointTimeout = 30 * time.Second

// ParseRestorePointOutput reads the first line psql -A -t prints for restorePointSQL:
// lsn|walfile|time.
func ParseRestorePointOutput(out string) (lsn pitr.LSN, walFile string, at time.Time, err error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	f := strings.Split(strings.TrimSpace(line), "|")
	if len(f) != 3 {
		return 0, "", time.Time{}, fmt.Errorf("unexpected psql output %q: want lsn|walfile|time", line)
	}
	if lsn, err = pitr.ParseLSN(f[0]); err != nil {
		return 0, "", time.Time{}, fmt.Errorf("the restore point's position: %w", err)
	}
	if _, err = pitr.ParseSegment(f[1]); err != nil {
		return 0, "", time.Time{}, fmt.Errorf("the restore point's WAL file: %w", err)
	}
	if at, err = time.Parse(time.RFC3339Nano, f[2]); err != nil {
		return 0, "", time.Time{}, fmt.Errorf("the restore point's time %q: %w", f[2], err)
	}
	return lsn, f[1], at, nil
}

// CreateRestorePoint makes a restore point on the cluster's current leader (as its agents say,
// or the DCS when none answers; both reached with the CLI's TLS files from the CA in caDir),
// over SSH as postgres on the local socket, and waits for the archiver to push the segment
// holding it. name must have passed CheckRestorePointName.
// A paused cluster still has a primary, so pause does not stop it; only no leader does.
func CreateRestorePoint(ctx context.Context, inv *inventory.Inventory, cl *inventory.Cluster, name, caDir string) (RestorePoint, error) {
	h, err := DialHA(inv, cl, caDir)
	if err != nil {
		return RestorePoint{}, err
	}
	defer h.Close()
	v, err := h.View(ctx)
	if err != nil {
		return RestorePoint{}, err
	}
	if v.Leader == "" {
		return RestorePoint{}, fmt.Errorf("%s: %w: see `pigwf ha list --cluster %s`", cl.Name, ErrNoLeader, cl.Name)
	}
	var host *inventory.Host
	for i := range cl.Hosts {
		if cl.Hosts[i].Node.Nodename == v.Leader || cl.Hosts[i].Addr == v.Leader {
			host = &cl.Hosts[i]
		}
	}
	if host == nil {
		return RestorePoint{}, fmt.Errorf("%s: the leader %s is not a host of the cluster in %s", cl.Name, v.Leader, inv.File)
	}
	node := NodeOf(*host)
	runner := sshrun.New(sshrun.Options{Logger: slog.New(slog.DiscardHandler)})
	defer runner.Close()
	psql := func(sql string) (string, error) {
		script := fmt.Sprintf("exec psql -X -q -A -t -v ON_ERROR_STOP=1 -h /var/run/postgresql -p %d -d postgres -v name=%s -f -",
			cl.PG.Port, sshrun.ShellQuote(name))
		res, err := runner.Run(ctx, node.Target(), sshrun.Command{Script: script, AsUser: "postgres", Stdin: []byte(sql), Timeout: restorePointTimeout})
		if err != nil {
			// sshrun's errors name the fix (known_hosts, credentials) themselves.
			return "", fmt.Errorf("%s: while running psql over SSH: %w", node, err)
		}
		if err := res.Err(); err != nil {
			return "", fmt.Errorf("psql on %s: %w", node, err)
		}
		return res.Stdout, nil
	}
	out, err := psql(restorePointSQL)
	if err != nil {
		return RestorePoint{}, fmt.Errorf("while creating restore point %s: %w", name, err)
	}
	lsn, walFile, at, err := ParseRestorePointOutput(out)
	if err != nil {
		return RestorePoint{}, fmt.Errorf("%s: %w", node, err)
	}
	rp := RestorePoint{Cluster: cl.Name, Name: name, LSN: lsn.String(), Time: at.UTC(), Leader: v.Leader, WALFile: walFile}
	last, err := activities.WaitArchived(ctx, runner, node, cl.PG.Port, walFile)
	if err == nil {
		rp.Archived = true
		return rp, nil
	}
	rp.Note = fmt.Sprintf("%s was not reported archived within %s (last archived: %q): the point cannot be recovered to until it is; check pg_stat_archiver on %s",
		walFile, activities.ArchiveWait, last, node)
	return rp, nil
}

// PrintRestorePoint writes what was made and where.
func PrintRestorePoint(w io.Writer, rp RestorePoint) {
	fmt.Fprintf(w, "Restore point %s on %s (leader of %s)\n", rp.Name, rp.Leader, rp.Cluster)
	fmt.Fprintf(w, "  LSN:      %s\n", rp.LSN)
	fmt.Fprintf(w, "  Time:     %s\n", pitr.FormatTime(rp.Time))
	fmt.Fprintf(w, "  WAL file: %s\n", rp.WALFile)
	if rp.Archived {
		fmt.Fprintln(w, "  Archived: yes (pigwf switched to a new WAL segment so it was archived now)")
	} else {
		fmt.Fprintln(w, "  Archived: NOT YET: "+rp.Note)
	}
	fmt.Fprintf(w, "A point-in-time recovery can stop at it: pigwf start pitr-restore --cluster %s --target-name %s\n", rp.Cluster, rp.Name)
}
