package pitr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Refusals of a backup set, wrapped in a *FlagError naming --backup-set (or --target-timeline).
var (
	// ErrBackupAfterTarget: the backup set given stops after the target, so replay from it can
	// never reach the target.
	ErrBackupAfterTarget = errors.New("backup set stops after the target")
	// ErrUnknownBackup: no usable backup set of that label on the target's timeline.
	ErrUnknownBackup = errors.New("no such backup set")
	// ErrBackupSetNeeded: the target cannot be placed from pgbackrest info (xid, name).
	ErrBackupSetNeeded = errors.New("backup set needed")
)

// Choice is the backup set a restore will use and the window it was chosen from.
type Choice struct {
	Backup UsableBackup
	Window Window
}

// SelectBackup returns the backup set a restore to t uses: backupSet when given (checked against
// the list), else the newest backup that stopped before the target on the target's timeline.
// pigwf passes the choice to pgBackRest as --set, so pgBackRest's own selection (which reads a
// zone-less time in its host's time zone) never applies.
//
// Rules, by target kind:
//   - time, LSN: the newest backup consistent before the target (for time, at least one second
//     before: pgBackRest records stop times truncated to the second).
//   - xid, name: pgbackrest info cannot tell which backup precedes a transaction or a restore
//     point, so --backup-set is required (ErrBackupSetNeeded).
//   - immediate, latest: the newest backup.
//
// The timeline must pick one window: a given id, "latest", or any choice when only one timeline
// has backups. Otherwise the caller resolves it first (ErrTimelineNotSet), e.g. TimelineForLSN,
// because the same time or position means different data on different timelines.
func SelectBackup(t Target, backupSet string, windows []Window) (Choice, error) {
	if err := Check(t, windows); err != nil {
		return Choice{}, err
	}
	cands := candidates(t, windows)
	if backupSet != "" {
		var found []Choice
		for _, w := range cands {
			for _, b := range w.Backups {
				if b.Label == backupSet {
					found = append(found, Choice{Backup: b, Window: w})
				}
			}
		}
		switch {
		case len(found) == 0:
			return Choice{}, &FlagError{Flag: FlagBackupSet, Value: backupSet, Err: ErrUnknownBackup,
				Fix: "choose one of: " + labels(cands)}
		case len(found) > 1:
			return Choice{}, timelineNeeded(cands)
		}
		c := found[0]
		if !stoppedBefore(c.Backup, t) {
			return Choice{}, &FlagError{Flag: FlagBackupSet, Value: backupSet, Err: ErrBackupAfterTarget,
				Fix: fmt.Sprintf("it stopped at %s (LSN %s), after %s; choose an earlier one of: %s",
					FormatTime(c.Backup.StopTime()), c.Backup.StopLSN, t, labels(cands))}
		}
		if !inside(t, c.Window) {
			return Choice{}, &OutsideWindowError{Target: t, Windows: []Window{c.Window}}
		}
		return c, nil
	}
	if len(cands) != 1 {
		return Choice{}, timelineNeeded(cands)
	}
	w := cands[0]
	if t.Kind == KindXID || t.Kind == KindName {
		return Choice{}, &FlagError{Flag: FlagBackupSet, Err: ErrBackupSetNeeded,
			Fix: fmt.Sprintf("pgBackRest cannot tell which backup precedes a %s target; give one that stopped before it, one of: %s",
				t.Kind, labels(cands))}
	}
	for i := len(w.Backups) - 1; i >= 0; i-- {
		if stoppedBefore(w.Backups[i], t) {
			return Choice{Backup: w.Backups[i], Window: w}, nil
		}
	}
	return Choice{}, &OutsideWindowError{Target: t, Windows: windows}
}

// timelineNeeded is the refusal when backups on several timelines could serve the target.
func timelineNeeded(cands []Window) error {
	tls := make([]string, len(cands))
	for i, w := range cands {
		tls[i] = fmt.Sprint(w.Timeline)
	}
	return &FlagError{Flag: FlagTargetTimeline, Err: ErrTimelineNotSet,
		Fix: "backups for it exist on timelines " + strings.Join(tls, ", ") + "; give the timeline the target lies on"}
}

// labels lists the backups of the windows, "label (timeline N, stop T)", for messages.
func labels(windows []Window) string {
	var out []string
	for _, w := range windows {
		for _, b := range w.Backups {
			out = append(out, fmt.Sprintf("%s (timeline %d, stop %s)", b.Label, w.Timeline, FormatTime(b.StopTime())))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// backupLabel is the shape of a pgBackRest backup label: a full backup's
// "20261130-045654F", a differential or incremental one's "20261130-045654F_20261130-050102D".
// A label reaches a shell (pgbackrest --set), so nothing else is accepted.
var backupLabel = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$`)

// ParseBackupLabel checks a --backup-set value against backupLabel.
func ParseBackupLabel(s string) (string, error) {
	if !backupLabel.MatchString(s) {
		return "", &FlagError{Flag: FlagBackupSet, Value: s, Err: ErrUnknownBackup,
			Fix: "give a label as `pigwf backup list` prints it, e.g. 20261130-045654F"}
	}
	return s, nil
}
